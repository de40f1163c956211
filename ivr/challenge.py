"""The call's challenge: the code keyed in checked, misses and silences counted, three misses lock.

Support relays the code to the requester (or the main application shows it to an
admin, for an office-number call); whoever answers the office phone keys it in.
The code is a one-time code (store/onetime.py), bound to its call session.
"""

from __future__ import annotations

import contextlib
import dataclasses

import redis

from ivr.session import CALL_STEP, Verdict, undo_disclosure
from ivr.step_scripts import CallerIdentity, StepReply
from store import keys, replication
from store.onetime import MAX_WRONG_CODES, code_hash, same_code
from store.scripts import LuaScript

# Silence on the line is met with a new prompt at most this many times.
MAX_REPROMPTS = 2

# The Gather step, atomically: one round trip decides and counts.
_SUBMIT_CODE = LuaScript("call_submit_code", after=(*CALL_STEP, "same_hash"))

# Verdicts whose write a failover must not undo: the disclosed (or verified) mark, a miss.
ONE_TIME_WRITES = (Verdict.CORRECT, Verdict.WRONG, Verdict.LOCKED)


def check_code(
    client: redis.Redis,
    caller: CallerIdentity,
    *,
    digits: str,
    secret_key: str,
    now: float,
    replicas: int = 0,
) -> StepReply:
    """Check the digits keyed in on this call; count misses and silences; lock at three misses.

    CORRECT and LOCKED replies carry the audit fields; WRONG the tries left. A right
    code or a miss counts only once ``replicas`` replicas hold it (WAIT, on the
    script's own connection): otherwise NotReplicated is raised, the caller hears an
    apology and the call ends, so a failover cannot bring back a used code or a spent try.
    """
    submitted = code_hash(secret_key, caller.session_id, digits) if digits else ""
    session_key = keys.call_session(caller.session_id)
    with replication.one_connection(client, session_key) as connection:
        reply = StepReply.parse(
            connection.pairs(
                _SUBMIT_CODE,
                [session_key],
                [now, caller.call_sid, caller.to, submitted, MAX_WRONG_CODES, MAX_REPROMPTS],
            )
        )
        acknowledged = reply.verdict not in ONE_TIME_WRITES or connection.replicated(replicas)
    if not acknowledged:
        if reply.verdict is Verdict.CORRECT:
            # Nothing will be read out: the call ends as failed, not disclosed.
            with contextlib.suppress(redis.RedisError):
                undo_disclosure(client, caller.session_id)
        raise replication.NotReplicated(f"no replica acknowledged a {reply.verdict} code in time")
    # Belt and braces: disclose only if Python's own comparison agrees with the script's.
    if reply.verdict is Verdict.CORRECT and not same_code(reply.code_hash, submitted):
        return dataclasses.replace(reply, verdict=Verdict.ENDED, audit=None)
    return reply
