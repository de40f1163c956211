"""Redis Lua scripts: one a file in store/lua/, each run by EVALSHA in one round trip.

Each file starts with a header naming its KEYS, ARGV and reply. Helpers several
scripts share live in files of their own (``call_prelude.lua``, ``same_hash.lua``);
a script names the ones it needs where it is declared (``after=``), and they are
put before its own text when it is loaded. The files are package data, read with
``importlib.resources`` as the ``limits`` library reads its scripts.

Each script is registered once per Redis client: redis-py's ``Script`` sends
EVALSHA and, should Redis have forgotten the script (a restart, SCRIPT FLUSH),
loads it again by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any, cast
from weakref import WeakKeyDictionary

import redis
from redis.commands.core import Script


def lua_source(name: str) -> str:
    """The text of ``store/lua/<name>.lua``."""
    return resources.files("store").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


class LuaScript:
    """A script of ``store/lua/``, after the shared helpers it names."""

    def __init__(self, name: str, *, after: Sequence[str] = ()) -> None:
        self.name = name
        # The files it is made of, helpers first.
        self.parts = (*after, name)
        self.source = "\n".join(lua_source(part) for part in self.parts)
        self._registered: WeakKeyDictionary[redis.Redis, Script] = WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"LuaScript({self.name!r})"

    def on(self, client: redis.Redis) -> Script:
        """The script registered on ``client``, made once (registering hashes the source)."""
        found = self._registered.get(client)
        if found is None:
            found = self._registered.setdefault(client, client.register_script(self.source))
        return found

    def run(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Run the script (EVALSHA, one round trip); its reply as Redis gives it."""
        return self.on(client)(keys=list(keys), args=list(args))

    def pairs(
        self, client: redis.Redis, keys: Sequence[str], args: Sequence[Any] = ()
    ) -> dict[str, str]:
        """Run a script whose reply is flat key/value pairs; the pairs as a dict."""
        return pairs_of(self.run(client, keys, args))


def pairs_of(reply: Any) -> dict[str, str]:
    """A flat key/value script reply as a dict."""
    items = cast(list[Any], reply)
    return {
        str(k): ("" if v is None else str(v)) for k, v in zip(items[::2], items[1::2], strict=True)
    }
