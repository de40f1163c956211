"""Redis connections with short timeouts, so a dead Redis is reported at once.

``REDIS_URL`` names one server (``redis://``, ``rediss://``, ``unix://``), a Redis
Cluster (``redis+cluster://host:port,host:port``, any seed nodes) or a Sentinel
setup (``redis+sentinel://host:port,host:port/service_name``), as the ``limits``
library spells them; the rate limits are kept on the same URL through ``limits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from limits.storage import RedisStorage, storage_from_string
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

# A webhook must answer Twilio well within its 15 s; a Redis that does not
# answer in a quarter second is treated as down rather than retried.
SOCKET_TIMEOUT = 0.25

CLUSTER = "redis+cluster"
SENTINEL = "redis+sentinel"
SINGLE = ("redis", "rediss", "unix")

# What a Redis that cannot answer raises: redis-py's own errors, and the cluster
# client's, which do not derive from them (no node for a slot, no node reachable).
UNAVAILABLE: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)


@dataclass(frozen=True)
class RedisLocation:
    """Where a REDIS_URL points: its scheme, its hosts and, for Sentinel, the service."""

    scheme: str
    hosts: list[tuple[str, int]]
    service_name: str = ""
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisLocation:
        """Read a URL; ValueError if it names no Redis we can use."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in SINGLE:
            return cls(scheme, [])
        if scheme not in (CLUSTER, SENTINEL):
            raise ValueError(f"unknown Redis URL scheme {scheme!r}")
        credentials, _, netloc = parts.netloc.rpartition("@")
        username, _, password = credentials.partition(":")
        hosts = [_host_port(item) for item in netloc.split(",") if item.strip()]
        if not hosts:
            raise ValueError(f"a {scheme}:// URL names at least one host:port")
        service_name = parts.path.strip("/")
        if scheme == SENTINEL and not service_name:
            raise ValueError("a redis+sentinel:// URL ends with /service_name")
        return cls(
            scheme,
            hosts,
            service_name,
            unquote(username) or None,
            unquote(password) or None,
        )


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{item!r} is not host:port")
    return host.strip("[]"), int(port)


def _options(socket_timeout: float, decode_responses: bool) -> dict[str, Any]:
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": decode_responses,
    }


def connect(
    url: str, *, socket_timeout: float = SOCKET_TIMEOUT, decode_responses: bool = True
) -> redis.Redis:
    """A client whose every command fails fast instead of retrying.

    A cluster URL gives a ``RedisCluster`` (it routes each key to its master and
    follows MOVED); a Sentinel URL gives the service's master, rediscovered
    through the sentinels whenever a connection is made again (after a
    failover, the old master's READONLY answer closes the connection). Code
    uses any of them through the same commands, hence the one return type.
    ``socket_timeout`` is longer for blocking reads (a queue worker waiting for work).
    """
    location = RedisLocation.parse(url)
    options = _options(socket_timeout, decode_responses)
    if location.scheme == CLUSTER:
        nodes = [ClusterNode(host, port) for host, port in location.hosts]  # type: ignore[no-untyped-call]
        cluster = RedisCluster(
            startup_nodes=nodes,
            username=location.username,
            password=location.password,
            **options,
        )
        return cast(redis.Redis, cluster)
    if location.scheme == SENTINEL:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            location.hosts,
            sentinel_kwargs={
                "socket_timeout": SOCKET_TIMEOUT,
                "socket_connect_timeout": SOCKET_TIMEOUT,
                "retry": Retry(NoBackoff(), 0),
            },
            username=location.username,
            password=location.password,
            **options,
        )
        master: redis.Redis = sentinel.master_for(location.service_name)  # type: ignore[no-untyped-call]
        return master
    return redis.Redis.from_url(url, health_check_interval=0, **options)


def limits_storage(url: str, key_prefix: str) -> RedisStorage:
    """The ``limits`` storage for the same URL, with the same timeouts.

    Through Sentinel, limits reads from the master too (``use_replicas=False``):
    a replica's count lags, and a limit of N must allow at most N.
    """
    location = RedisLocation.parse(url)
    options = _options(SOCKET_TIMEOUT, decode_responses=False)
    if location.scheme == SENTINEL:
        options["use_replicas"] = False
        options["sentinel_kwargs"] = {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
        }
    storage = storage_from_string(url, key_prefix=key_prefix, **options)
    return cast(RedisStorage, storage)


def is_cluster(client: redis.Redis) -> bool:
    """Whether ``client`` speaks to a Redis Cluster."""
    return isinstance(client, RedisCluster)
