"""A throwaway redis-server on a free loopback port, which a test can stop and restart."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator

from devservers.processes import HOST, ServerProcess


def _redis_ping(port: int) -> bool:
    """True when a Redis server on port answers PING with PONG."""
    with socket.create_connection((HOST, port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


class RedisProcess(ServerProcess):
    """A throwaway redis-server; can stop and restart on the same port."""

    name = "redis"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.url = f"redis://{HOST}:{self.port}/0"

    def _command(self) -> list[str]:
        redis = shutil.which("redis-server")
        if redis is None:
            raise RuntimeError("redis-server not found on PATH; run scripts/bootstrap")
        return [redis, "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", self._dir.name]  # fmt: skip

    def _ready(self) -> bool:
        return _redis_ping(self.port)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Run a throwaway redis-server; yield its URL (RedisProcess can restart)."""
    with RedisProcess() as server:
        yield server.url
