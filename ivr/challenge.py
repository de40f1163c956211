"""The call's challenge: the code keyed in checked, misses and silences counted, three misses lock.

Support relays the code to the requester (or the main application shows it to an
admin, for an office-number call); whoever answers the office phone keys it in.
The code is a one-time code (store/onetime.py), bound to its call session.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ivr import session
from store import keys
from store.onetime import MAX_WRONG_CODES, code_hash, same_code
from store.scripts import LuaScript

# Silence on the line is met with a new prompt at most this many times.
MAX_REPROMPTS = 2


# The Gather step, atomically: one round trip decides and counts.
_SUBMIT_CODE = LuaScript("call_submit_code", after=(*session.CALL_STEP, "same_hash"))


@dataclass(frozen=True)
class CodeCheck:
    """What keying in (or not keying in) a code led to."""

    verdict: str  # correct | wrong | locked | reprompt | silent | expired | ended | gone | mismatch
    remaining: int = 0
    audit: dict[str, str] | None = None


def check_code(
    client: redis.Redis, call: session.CallerCheck, *, digits: str, secret_key: str, now: float
) -> CodeCheck:
    """Check the digits keyed in on this call; count misses and silences; lock at three misses."""
    submitted = code_hash(secret_key, call.session_id, digits) if digits else ""
    reply = _SUBMIT_CODE.pairs(
        client,
        [keys.call_session(call.session_id)],
        [now, call.call_sid, call.to, submitted, MAX_WRONG_CODES, MAX_REPROMPTS],
    )
    verdict = reply["verdict"]
    # Belt and braces: disclose only if Python's own comparison agrees with the script's.
    if verdict == "correct" and not same_code(reply.get("code_hash", ""), submitted):
        verdict = "ended"
    audit = reply if verdict in ("correct", "locked") else None
    return CodeCheck(verdict=verdict, remaining=int(reply.get("remaining") or 0), audit=audit)
