"""Writes that a failover must not undo: a script, then WAIT on the same connection.

Redis replicates asynchronously; a master that fails over before its replica
received a write loses it. For one-time state (a call's "disclosed" mark, its
wrong-code count) that would hand out a second disclosure or a fourth try. So
such a step runs its script and ``WAIT <replicas> <timeout>`` on one connection,
in one round trip, and the caller acts on the result only once enough replicas
hold it. WAIT cannot run inside Lua; it counts the writes made on its own
connection, hence the pipeline on a single connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script

from store.redis_client import SOCKET_TIMEOUT, is_cluster

# Well inside the socket timeout, so a missing acknowledgement is an answer (0), not a timeout.
WAIT_MILLISECONDS = int(SOCKET_TIMEOUT * 1000 * 0.6)


class NotReplicated(redis.RedisError):
    """The write reached the master but too few replicas acknowledged it in time.

    A RedisError: it is answered as Redis being unavailable (an apology, a 503).
    """


def run_acknowledged(
    client: redis.Redis,
    script: Script,
    keys: Sequence[str],
    args: Sequence[Any],
    replicas: int,
) -> tuple[Any, bool]:
    """Run ``script``; return its reply and whether ``replicas`` replicas hold what it wrote.

    With ``replicas`` 0 it is an ordinary script call, acknowledged by definition.
    """
    if replicas <= 0:
        return script(keys=list(keys), args=list(args)), True
    target = client
    if is_cluster(client):
        # A cluster pipeline would send WAIT to some node of its choosing; this
        # key's master is the one whose replicas must have the write.
        cluster: Any = client
        target = cluster.get_redis_connection(cluster.get_node_from_key(keys[0]))
    reply, acknowledged = _script_then_wait(target, script, keys, args, replicas)
    if isinstance(reply, redis.exceptions.NoScriptError):
        # A restarted or newly promoted master has no scripts yet: load it, once.
        target.script_load(script.script)
        reply, acknowledged = _script_then_wait(target, script, keys, args, replicas)
    if isinstance(reply, Exception):
        raise reply
    return reply, acknowledged


def _script_then_wait(
    target: redis.Redis, script: Script, keys: Sequence[str], args: Sequence[Any], replicas: int
) -> tuple[Any, bool]:
    pipe = target.pipeline(transaction=False)
    pipe.evalsha(script.sha, len(keys), *keys, *args)
    pipe.wait(replicas, WAIT_MILLISECONDS)
    reply, acked = pipe.execute(raise_on_error=False)
    if isinstance(acked, Exception) and not isinstance(reply, Exception):
        raise acked
    return reply, isinstance(acked, int) and acked >= replicas
