"""Writes that a failover must not undo: a script, then WAIT on the same connection.

Redis replicates asynchronously; a master that fails over before its replica
received a write loses it. For one-time state (a call's "disclosed" mark, its
wrong-code count) that would hand out a second disclosure or a fourth try. So
such a step runs its script on one connection and, when the script wrote one of
those, ``WAIT <replicas> <timeout>`` on that same connection (WAIT counts the
writes of its own connection, and cannot run inside Lua); the caller acts on the
outcome only once enough replicas hold it, and fails closed otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, cast

import redis
from redis.commands.core import Script

from store.redis_client import SOCKET_TIMEOUT, is_cluster
from store.scripts import LuaScript, pairs_of

# A healthy replica acknowledges within a millisecond or two; a quarter second leaves room
# for a busy machine, and with the script's own quarter second stays well inside a second.
WAIT_MILLISECONDS = 250


class NotReplicated(redis.RedisError):
    """The write reached the master but too few replicas acknowledged it in time.

    A RedisError: it is answered as Redis being unavailable (an apology, a 503).
    """


class OneConnection:
    """A connection taken from the pool for one step: its script, then perhaps WAIT."""

    def __init__(self, client: redis.Redis, connection: Any) -> None:
        self._client = client
        self._connection = connection

    def pairs(self, lua: LuaScript, keys: Sequence[str], args: Sequence[Any]) -> dict[str, str]:
        """Run a script whose reply is flat key/value pairs (``LuaScript.pairs``), here."""
        return pairs_of(self.run(lua.on(self._client), keys, args))

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA ``script``; a master that has not got it yet (restarted, promoted) loads it."""
        try:
            return self._command("EVALSHA", script.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self._command("SCRIPT", "LOAD", script.script)
            return self._command("EVALSHA", script.sha, len(keys), *keys, *args)

    def replicated(self, replicas: int) -> bool:
        """Whether ``replicas`` replicas hold every write this connection made."""
        if replicas <= 0:
            return True
        self._connection.send_command("WAIT", replicas, WAIT_MILLISECONDS)
        # WAIT answers when enough replicas acknowledged or its timeout passed.
        acknowledged = self._connection.read_response(
            timeout=SOCKET_TIMEOUT + WAIT_MILLISECONDS / 1000
        )
        return int(acknowledged) >= replicas

    def _command(self, *args: Any) -> Any:
        self._connection.send_command(*args)
        return self._connection.read_response()


@contextlib.contextmanager
def one_connection(client: redis.Redis, key: str) -> Iterator[OneConnection]:
    """A connection to the master holding ``key``, held for the whole step."""
    target: Any = client
    if is_cluster(client):
        cluster: Any = client
        target = cluster.get_redis_connection(cluster.get_node_from_key(key))
    pool = cast(redis.ConnectionPool, target.connection_pool)
    connection: Any = pool.get_connection()
    try:
        yield OneConnection(client, connection)
    except BaseException:
        # Half a conversation may be left on it: never hand it to someone else.
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
