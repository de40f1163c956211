"""The call's challenge: the code keyed in checked, misses and silences counted, three misses lock.

Support relays the code to the requester (or the main application shows it to an
admin, for an office-number call); whoever answers the office phone keys it in.
The code is a one-time code (store/onetime.py), bound to its call session.
"""

from __future__ import annotations

import dataclasses

import redis

from ivr.session import CALL_STEP, Verdict
from ivr.step_scripts import CallerIdentity, StepReply
from store import keys
from store.onetime import MAX_WRONG_CODES, code_hash, same_code
from store.scripts import LuaScript

# Silence on the line is met with a new prompt at most this many times.
MAX_REPROMPTS = 2

# The Gather step, atomically: one round trip decides and counts.
_SUBMIT_CODE = LuaScript("call_submit_code", after=(*CALL_STEP, "same_hash"))


def check_code(
    client: redis.Redis, caller: CallerIdentity, *, digits: str, secret_key: str, now: float
) -> StepReply:
    """Check the digits keyed in on this call; count misses and silences; lock at three misses.

    CORRECT and LOCKED replies carry the audit fields; WRONG the tries left.
    """
    submitted = code_hash(secret_key, caller.session_id, digits) if digits else ""
    reply = StepReply.parse(
        _SUBMIT_CODE.pairs(
            client,
            [keys.call_session(caller.session_id)],
            [now, caller.call_sid, caller.to, submitted, MAX_WRONG_CODES, MAX_REPROMPTS],
        )
    )
    # Belt and braces: disclose only if Python's own comparison agrees with the script's.
    if reply.verdict is Verdict.CORRECT and not same_code(reply.code_hash, submitted):
        return dataclasses.replace(reply, verdict=Verdict.ENDED, audit=None)
    return reply
