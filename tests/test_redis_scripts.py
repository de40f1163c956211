"""The Lua scripts: one a file in store/lua/, each with its header, each in use."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import redis

import ivr.challenge
import ivr.session
import ivr.step_scripts
import sms.cell_verification
import store.ratelimit
from store.scripts import LuaScript

LUA_FILES = {
    path.name.removesuffix(".lua")
    for path in resources.files("store").joinpath("lua").iterdir()
    if path.name.endswith(".lua")
}
# Helper files put before the scripts that name them; they have no KEYS of their own.
HELPERS = {"call_prelude", "same_hash"}


def declared_scripts() -> list[LuaScript]:
    modules = (ivr.session, ivr.step_scripts, ivr.challenge, sms.cell_verification)
    return [v for m in modules for v in vars(m).values() if isinstance(v, LuaScript)]


def header(name: str) -> str:
    text = resources.files("store").joinpath("lua", f"{name}.lua").read_text()
    lines = text.splitlines()
    end = next(i for i, line in enumerate(lines) if not line.startswith("--"))
    return "\n".join(lines[:end])


def test_every_script_file_opens_with_a_header_naming_its_keys_arguments_and_reply() -> None:
    for name in LUA_FILES - HELPERS:
        text = header(name)
        assert "KEYS[1]" in text and ("Reply:" in text or "Returns" in text), name
        assert "ARGV[1]" in text or name == "call_undo_disclosure", name
    for name in HELPERS:
        assert "defines no keys or argv" in header(name).lower(), name


def test_every_script_file_is_in_use_and_every_script_has_its_file() -> None:
    used = {part for script in declared_scripts() for part in script.parts}
    # The rate limiter reads its own script beside the limits library's (store/ratelimit.py).
    limiter_source = Path(store.ratelimit.__file__).read_text()
    used |= {name for name in LUA_FILES if f"{name}.lua" in limiter_source}
    assert used == LUA_FILES


def test_a_script_redis_forgot_is_loaded_again_by_itself(redis_client: redis.Redis) -> None:
    undo = LuaScript("call_undo_disclosure")
    assert undo.run(redis_client, ["cw:call:none"]) == 0
    redis_client.script_flush()
    assert undo.run(redis_client, ["cw:call:none"]) == 0
