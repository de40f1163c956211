"""Redis Lua scripts: registered once per client, run by EVALSHA in one round trip.

redis-py's ``Script`` sends EVALSHA and, should Redis have forgotten the script
(a restart, SCRIPT FLUSH), loads it again by itself.
"""

from __future__ import annotations

from typing import Any, cast
from weakref import WeakKeyDictionary

import redis
from redis.commands.core import Script

_SCRIPTS: WeakKeyDictionary[redis.Redis, dict[str, Script]] = WeakKeyDictionary()


def script(client: redis.Redis, source: str) -> Script:
    """``client``'s script object for ``source``, made once (it hashes the source)."""
    scripts = _SCRIPTS.get(client)
    if scripts is None:
        scripts = _SCRIPTS.setdefault(client, {})
    found = scripts.get(source)
    if found is None:
        found = scripts.setdefault(source, client.register_script(source))
    return found


def run_script(
    client: redis.Redis, source: str, keys_: list[str], args: list[Any]
) -> dict[str, str]:
    """Run a Lua script (EVALSHA, one round trip) whose reply is flat key/value pairs."""
    reply = cast(list[Any], script(client, source)(keys=keys_, args=args))
    return {
        str(k): ("" if v is None else str(v)) for k, v in zip(reply[::2], reply[1::2], strict=True)
    }
