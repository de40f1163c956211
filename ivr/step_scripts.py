"""The scripts the call's webhook steps run: one each, one Redis round trip, its reply read.

Each step's script (store/lua/call_*.lua) checks that the request belongs to this
call (CallSid, To) and that the session is still open, and records what happened,
atomically. The code keyed in is checked by ivr/challenge.py the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ivr.session import CALL_STEP, Purpose, Verdict
from store import keys
from store.scripts import LuaScript

_ANSWER = LuaScript("call_answer", after=CALL_STEP)
_REPEAT = LuaScript("call_repeat", after=CALL_STEP)
_STATUS = LuaScript("call_status", after=CALL_STEP)


@dataclass(frozen=True)
class CallerIdentity:
    """Who a webhook says it is: the session its token names, its CallSid and the number called."""

    session_id: str
    call_sid: str
    to: str


@dataclass(frozen=True)
class CallAudit:
    """What an audit event of the call records, read from the session by the step's script."""

    practice_id: str
    practice_name: str
    actor: str
    requested_by: str
    to: str
    call_sid: str
    purpose: Purpose


@dataclass(frozen=True)
class StepReply:
    """A call step's script reply, read."""

    verdict: Verdict
    practice_name: str = ""
    language: str = ""
    purpose: Purpose = Purpose.CODEWORD
    status: str = ""  # a status callback's status, as it now stands
    remaining: int = 0  # tries or repeats left
    code_hash: str = ""  # the accepted code's hash, for Python to compare once more
    audit: CallAudit | None = None  # when the step ended something worth an audit event

    @classmethod
    def parse(cls, reply: dict[str, str]) -> StepReply:
        purpose = Purpose(reply.get("purpose") or Purpose.CODEWORD)
        audit = None
        if reply.get("practice_id"):
            audit = CallAudit(
                practice_id=reply["practice_id"],
                practice_name=reply.get("practice_name", ""),
                actor=reply.get("actor", ""),
                requested_by=reply.get("requested_by", ""),
                to=reply.get("to", ""),
                call_sid=reply.get("call_sid", ""),
                purpose=purpose,
            )
        return cls(
            verdict=Verdict(reply["verdict"]),
            practice_name=reply.get("practice_name", ""),
            language=reply.get("language", ""),
            purpose=purpose,
            status=reply.get("status", ""),
            remaining=int(reply.get("remaining") or 0),
            code_hash=reply.get("code_hash", ""),
            audit=audit,
        )


def answer(client: redis.Redis, caller: CallerIdentity, *, machine: bool, now: float) -> StepReply:
    """The call was answered: by a person (ANSWERED), a machine (VOICEMAIL), or too late."""
    reply = _ANSWER.pairs(
        client,
        [keys.call_session(caller.session_id)],
        [now, caller.call_sid, caller.to, "1" if machine else "0"],
    )
    return StepReply.parse(reply)


def repeat(
    client: redis.Redis, caller: CallerIdentity, *, pressed: str, max_repeats: int, now: float
) -> StepReply:
    """After the codeword was read: may it be read again (REPEAT) or is it GOODBYE?"""
    reply = _REPEAT.pairs(
        client,
        [keys.call_session(caller.session_id)],
        [now, caller.call_sid, caller.to, pressed, max_repeats],
    )
    return StepReply.parse(reply)


def record_status(
    client: redis.Redis, caller: CallerIdentity, *, practice_id: str, status: str
) -> StepReply:
    """Apply a status callback; a final status ends the call and frees the practice."""
    reply = _STATUS.pairs(
        client,
        [keys.call_session(caller.session_id), keys.live_call(practice_id)],
        [caller.session_id, caller.call_sid, caller.to, status],
    )
    return StepReply.parse(reply)
