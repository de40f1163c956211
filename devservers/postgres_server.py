"""A throwaway PostgreSQL cluster on a free loopback port, which a test can stop and restart."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from devservers.processes import HOST, ServerProcess


def _postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program from PATH or Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def postgres_available() -> bool:
    """Whether a PostgreSQL server can be started here."""
    return bool(_postgres_bin("initdb") and _postgres_bin("postgres"))


def _pg_ready(port: int) -> bool:
    """True once the server takes a connection and answers a query."""
    import psycopg

    try:
        with psycopg.connect(
            host=HOST, port=port, user="postgres", dbname="postgres", connect_timeout=1
        ):
            return True
    except psycopg.OperationalError:
        return False


class PostgresProcess(ServerProcess):
    """A throwaway PostgreSQL cluster; can stop and restart on the same port.

    PostgreSQL refuses to run as root; as root it runs as the ``postgres`` user
    (through setpriv, which execs in place, so signals reach the server itself).
    """

    name = "postgres"
    # A fast shutdown: open connections are cut.
    stop_signal = signal.SIGINT
    start_timeout = 20.0

    def __init__(self, port: int | None = None) -> None:
        initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
        if not initdb or not postgres:
            raise RuntimeError("PostgreSQL is not installed; run scripts/bootstrap --dev")
        super().__init__(port)
        self.postgres = postgres
        self.url = f"postgresql://postgres@{HOST}:{self.port}/postgres"
        self.data = Path(self._dir.name) / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
            shutil.chown(self._dir.name, "postgres")
        subprocess.run(
            [*self._as_user, initdb, "-D", str(self.data), "-U", "postgres",
             "-A", "trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def _command(self) -> list[str]:
        return [
            *self._as_user,
            self.postgres,
            "-D", str(self.data),
            "-p", str(self.port),
            "-k", self._dir.name,
            "-c", f"listen_addresses={HOST}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip

    def _ready(self) -> bool:
        return _pg_ready(self.port)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Run a throwaway PostgreSQL cluster on a free port; yield its SQLAlchemy URL."""
    with PostgresProcess() as server:
        yield server.url
