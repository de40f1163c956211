"""Redis as production runs it, for tests: a 3-master Redis Cluster, and a Sentinel setup.

Every process is Debian's ``redis-server`` on a free loopback port in its own folder
(Sentinel is ``redis-server --sentinel``); the cluster is formed with
``redis-cli --cluster create``. Each yields the ``REDIS_URL`` the service is given:

    with RedisClusterProcesses() as cluster:   # redis+cluster://127.0.0.1:p1,...
        ...
    with SentinelProcesses() as sentinel:      # redis+sentinel://127.0.0.1:s1,.../codeword
        sentinel.failover()                    # the replica becomes the primary
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Self

import redis
from redis.cluster import RedisCluster

from devservers.processes import HOST, free_port
from devservers.redis_server import RedisProcess

SERVICE_NAME = "codeword"


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it is true; raise naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not within {timeout:.0f} s")


def _admin(port: int) -> redis.Redis:
    """A plain client to one process, for setting up and watching the topology."""
    return redis.Redis(host=HOST, port=port, socket_timeout=5, decode_responses=True)


class RedisNode(RedisProcess):
    """A redis-server started with extra arguments (cluster mode, a primary to follow)."""

    def __init__(self, *extra: str) -> None:
        super().__init__()
        self.extra = list(extra)

    def _command(self) -> list[str]:
        return [*super()._command(), *self.extra]


class SentinelNode(RedisProcess):
    """``redis-server --sentinel`` watching one primary; it rewrites its own config file."""

    name = "sentinel"

    def __init__(self, primary_port: int) -> None:
        super().__init__()
        self.config = self.log_path.parent / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\n"
            f"bind {HOST}\n"
            f"dir {self.log_path.parent}\n"
            f"sentinel monitor {SERVICE_NAME} {HOST} {primary_port} 2\n"
            # A dead primary is noticed within a second, and replaced soon after.
            f"sentinel down-after-milliseconds {SERVICE_NAME} 1000\n"
            f"sentinel failover-timeout {SERVICE_NAME} 5000\n"
            f"sentinel parallel-syncs {SERVICE_NAME} 1\n"
        )

    def _command(self) -> list[str]:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server not found on PATH; run scripts/bootstrap")
        return [server, str(self.config), "--sentinel"]


class _Topology:
    """Processes started together and stopped together."""

    def __init__(self) -> None:
        self._started: list[RedisProcess] = []

    def _start(self, process: RedisProcess) -> RedisProcess:
        self._started.append(process)
        process.start()
        return process

    def close(self) -> None:
        for process in reversed(self._started):
            process.close()
        self._started.clear()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        raise NotImplementedError


class RedisClusterProcesses(_Topology):
    """Three masters, no replicas, all 16384 slots covered."""

    def __init__(self, masters: int = 3) -> None:
        super().__init__()
        self.masters = masters
        self.nodes: list[RedisNode] = []
        self._client: RedisCluster | None = None

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{node.port}" for node in self.nodes)

    def start(self) -> None:
        for _ in range(self.masters):
            node = RedisNode(
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                # The bus port defaults to port + 10000, which may be taken or past 65535.
                "--cluster-port", str(free_port()),
            )  # fmt: skip
            self.nodes.append(node)
            self._start(node)
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found on PATH; run scripts/bootstrap")
        subprocess.run(
            [cli, "--cluster", "create", *(f"{HOST}:{node.port}" for node in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        for node in self.nodes:
            admin = _admin(node.port)
            _wait_for(
                lambda admin=admin: admin.cluster("info")["cluster_state"] == "ok",
                20,
                f"cluster node {node.port} seeing the cluster ok",
            )

    def client(self) -> RedisCluster:
        """A cluster client for the test's own checks (made once: it maps the slots)."""
        if self._client is None:
            self._client = RedisCluster(host=HOST, port=self.nodes[0].port, decode_responses=True)
        return self._client


class SentinelProcesses(_Topology):
    """A primary, one replica, and three sentinels (quorum 2) watching them."""

    def __init__(self) -> None:
        super().__init__()
        self.primary = RedisNode()
        self.replica: RedisNode | None = None
        self.sentinels: list[SentinelNode] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE_NAME}"

    @property
    def data_nodes(self) -> list[RedisNode]:
        return [self.primary, *([self.replica] if self.replica else [])]

    def start(self) -> None:
        self._start(self.primary)
        self.replica = RedisNode("--replicaof", HOST, str(self.primary.port))
        self._start(self.replica)
        _wait_for(
            lambda: (
                _admin(self.replica.port).info("replication")["master_link_status"] == "up"
                if self.replica
                else False
            ),
            20,
            "the replica in sync",
        )
        for _ in range(3):
            self.sentinels.append(SentinelNode(self.primary.port))
        for sentinel in self.sentinels:
            self._start(sentinel)
        self.wait_until_settled()

    def primary_port(self) -> int:
        """The port of the primary as the sentinels name it now."""
        _host, port = _admin(self.sentinels[0].port).sentinel_get_master_addr_by_name(SERVICE_NAME)
        return int(port)

    def wait_until_settled(self, timeout: float = 30) -> None:
        """Every sentinel agrees on one primary, knows the replica and the other sentinels."""

        def settled() -> bool:
            primaries = set()
            for sentinel in self.sentinels:
                admin = _admin(sentinel.port)
                state = admin.sentinel_master(SERVICE_NAME)
                if int(state["num-other-sentinels"]) != len(self.sentinels) - 1:
                    return False
                if int(state["num-slaves"]) < 1 or state["flags"] != "master":
                    return False
                replicas = admin.sentinel_slaves(SERVICE_NAME)
                if not any(r["flags"] == "slave" and r["master-link-status"] == "ok"
                           for r in replicas):  # fmt: skip
                    return False
                primaries.add((state["ip"], int(state["port"])))
            if len(primaries) != 1:
                return False
            ((_, port),) = primaries
            role = _admin(port).role()
            # The primary itself sees its replica online and caught up.
            return role[0] == "master" and len(role[2]) >= 1

        _wait_for(settled, timeout, "the sentinels agreeing on a primary with a replica")

    def failover(self, timeout: float = 30) -> tuple[int, int]:
        """Have the sentinels promote the replica; return (old, new) primary ports once done."""
        before = self.primary_port()
        _admin(self.sentinels[0].port).execute_command("SENTINEL", "FAILOVER", SERVICE_NAME)
        _wait_for(
            lambda: self.primary_port() != before, timeout, "the sentinels naming a new primary"
        )
        after = self.primary_port()
        # Done once the old primary follows the new one, and the new one takes writes.
        _wait_for(
            lambda: (
                _admin(before).info("replication").get("master_port") == after
                and _admin(after).role()[0] == "master"
            ),
            timeout,
            "the old primary following the new one",
        )
        self.wait_until_settled(timeout)
        return before, after

    def client(self) -> redis.Redis:
        """A client to the current primary, for the test's own checks."""
        return _admin(self.primary_port())


def flush(clients: Iterable[redis.Redis | RedisCluster]) -> None:
    """Empty every database the clients reach (a cluster client reaches every master)."""
    for client in clients:
        client.flushdb()


def all_keys(client: redis.Redis | RedisCluster, pattern: str) -> list[str]:
    """Every key matching ``pattern``, on every master (KEYS asks only one of a cluster's)."""
    return sorted(str(k) for k in client.scan_iter(match=pattern, count=1000))
