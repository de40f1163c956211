"""A verification call's state in Redis: the call session, made, placed, rolled back, read.

One hash per call session (``keys.call_session``) holds everything a webhook
needs, so answering the call reads no SQL. ``CallSession`` is the one type that
builds and reads it; the Lua scripts (store/lua/call_*.lua) name the same fields.
What each webhook step's script does with it: ivr/step_scripts.py.

A practice's live call is ``keys.live_call``: ``<session id>|<expires at>``.
It is released by the call's final status callback, and counts as released
once its expiry has passed even if Redis still holds the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import redis

from store import keys
from store.scripts import LuaScript


class Purpose(StrEnum):
    """What a call is for; the session's ``purpose`` field (absent means the codeword)."""

    CODEWORD = "codeword"  # support asks for the codeword to be read
    OFFICE = "office"  # an admin proves the office number


# Our statuses (the contract's), in the order a call moves through them.
IN_PROGRESS = ("queued", "ringing", "in-progress")
FINAL = (
    "disclosed",
    "verified",
    "locked",
    "voicemail",
    "completed",
    "no-answer",
    "busy",
    "failed",
    "canceled",
)
EXPIRED = "expired"

# Twilio's CallStatus values as our statuses.
TWILIO_STATUSES = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "ringing",
    "in-progress": "in-progress",
    "answered": "in-progress",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}

# Sessions stay readable (GET, idempotent repeats) this long after they are made.
RETENTION = 24 * 3600
IDEMPOTENCY_TTL = 24 * 3600

# The call-step scripts share the helpers of store/lua/call_prelude.lua.
CALL_STEP = ("call_prelude",)
_RESERVE = LuaScript("call_reserve")
_MARK_PLACED = LuaScript("call_mark_placed", after=CALL_STEP)
_ROLLBACK = LuaScript("call_rollback", after=CALL_STEP)
_UNDO_DISCLOSURE = LuaScript("call_undo_disclosure")
_RESEAL = LuaScript("call_reseal_code")


@dataclass(frozen=True)
class CallSession:
    """A verification call as its Redis hash holds it; the hash's fields are these."""

    id: str  # not a field: the hash's key names it
    practice_id: str
    practice_name: str
    language: str
    to: str
    actor: str
    requested_by: str
    created_at: float
    expires_at: float
    purpose: Purpose = Purpose.CODEWORD
    status: str = "queued"
    # HMAC of the challenge code (store/onetime.py); gone once used, locked or ended.
    code_hash: str | None = None
    # The code encrypted (CODEWORD_KEYS), kept only so an idempotent repeat can show it.
    code_sealed: str | None = None
    call_sid: str | None = None
    placed: bool = False
    ended: bool = False
    wrong_codes: int = 0
    silences: int = 0
    repeats: int = 0

    def to_hash(self) -> dict[str, str]:
        """The session as the fields of its Redis hash."""
        fields = {
            "practice_id": self.practice_id,
            "practice_name": self.practice_name,
            "language": self.language,
            "to": self.to,
            "actor": self.actor,
            "requested_by": self.requested_by,
            "status": self.status,
            "purpose": self.purpose.value,
            "created_at": repr(self.created_at),
            "expires_at": repr(self.expires_at),
            "code_hash": self.code_hash,
            "code_sealed": self.code_sealed,
            "call_sid": self.call_sid,
            "placed": "1" if self.placed else None,
            "ended": "1" if self.ended else None,
            "wrong_codes": str(self.wrong_codes),
            "silences": str(self.silences),
            "repeats": str(self.repeats),
        }
        return {name: value for name, value in fields.items() if value is not None}

    @classmethod
    def from_hash(cls, session_id: str, fields: dict[str, str]) -> CallSession:
        """The session a Redis hash holds."""
        return cls(
            id=session_id,
            practice_id=fields["practice_id"],
            practice_name=fields.get("practice_name", ""),
            language=fields.get("language", "en"),
            to=fields["to"],
            actor=fields.get("actor", ""),
            requested_by=fields.get("requested_by", ""),
            created_at=float(fields["created_at"]),
            expires_at=float(fields["expires_at"]),
            purpose=Purpose(fields.get("purpose") or Purpose.CODEWORD),
            status=fields.get("status", "queued"),
            code_hash=fields.get("code_hash") or None,
            code_sealed=fields.get("code_sealed") or None,
            call_sid=fields.get("call_sid") or None,
            placed=fields.get("placed") == "1",
            ended=fields.get("ended") == "1",
            wrong_codes=int(fields.get("wrong_codes") or 0),
            silences=int(fields.get("silences") or 0),
            repeats=int(fields.get("repeats") or 0),
        )

    def status_at(self, now: float) -> str:
        """The status as callers see it: an unfinished call past its expiry is ``expired``."""
        if self.status not in FINAL and now >= self.expires_at:
            return EXPIRED
        return self.status

    def placed_as(self, call_sid: str, status: str) -> CallSession:
        """The session once the carrier placed its call."""
        return dataclasses.replace(self, call_sid=call_sid, status=status, placed=True)


class Verdict(StrEnum):
    """What a call session's script decided: its reply's ``verdict``."""

    # Making a session.
    CREATED = "created"
    LIVE = "live"  # another call to the practice is live
    IDEMPOTENT = "idempotent"  # this idempotency key already made a call
    PLACED = "placed"
    ROLLED_BACK = "rolled-back"
    # Any webhook step: not this call, or no longer a call to go on with.
    MISMATCH = "mismatch"
    GONE = "gone"
    ENDED = "ended"
    EXPIRED = "expired"
    # Answered.
    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    # A code keyed in, or silence.
    CORRECT = "correct"
    WRONG = "wrong"
    LOCKED = "locked"
    REPROMPT = "reprompt"
    SILENT = "silent"
    # After the codeword was read.
    REPEAT = "repeat"
    GOODBYE = "goodbye"
    # A status callback.
    CHANGED = "changed"
    KEPT = "kept"


# Making a session (the support and admin APIs) -----------------------------------


def reserve(
    client: redis.Redis, call: CallSession, idempotency_redis_key: str | None = None
) -> tuple[Verdict, str]:
    """Store a new session and claim the practice's live call, unless one is live.

    Returns (verdict, session id): CREATED, LIVE (naming the live call) or
    IDEMPOTENT (naming the call this idempotency key already made).
    """
    keys_ = [keys.call_session(call.id), keys.live_call(call.practice_id)]
    if idempotency_redis_key:
        keys_.append(idempotency_redis_key)
    lifetime = round(call.expires_at - call.created_at)
    pairs = [item for pair in call.to_hash().items() for item in pair]
    reply = _RESERVE.pairs(
        client,
        keys_,
        [call.created_at, call.id, call.expires_at, lifetime, RETENTION, IDEMPOTENCY_TTL, *pairs],
    )
    return Verdict(reply["verdict"]), reply["id"]


def mark_placed(client: redis.Redis, call: CallSession, call_sid: str, status: str) -> bool:
    """Record the carrier's CallSid; False if a webhook already bound another call."""
    reply = _MARK_PLACED.pairs(
        client,
        [keys.call_session(call.id), keys.live_call(call.practice_id)],
        [call.id, call_sid, status],
    )
    return Verdict(reply["verdict"]) is not Verdict.MISMATCH


def rollback(
    client: redis.Redis, call: CallSession, idempotency_redis_key: str | None = None
) -> None:
    """Forget a session whose call could not be placed, freeing the practice and the key."""
    keys_ = [keys.call_session(call.id), keys.live_call(call.practice_id)]
    if idempotency_redis_key:
        keys_.append(idempotency_redis_key)
    _ROLLBACK.pairs(client, keys_, [call.id])


def load(client: redis.Redis, session_id: str) -> CallSession | None:
    """The session, or None once it is gone."""
    fields = cast(dict[str, str], client.hgetall(keys.call_session(session_id)))
    if not fields or "practice_id" not in fields:
        return None
    return CallSession.from_hash(session_id, fields)


def live_session_id(client: redis.Redis, practice_id: str, now: float) -> str | None:
    """The session of the practice's live call, if one is live at ``now``."""
    live = cast(str | None, client.get(keys.live_call(practice_id)))
    session_id, _, expires_at = (live or "").partition("|")
    if not session_id or not expires_at or now >= float(expires_at):
        return None
    return session_id


def idempotent_session_id(client: redis.Redis, idempotency_redis_key: str) -> str | None:
    """The session an idempotency key already made, if any."""
    return cast(str | None, client.get(idempotency_redis_key))


def idempotency_key_owner(
    client: redis.Redis, actor: str, idempotency_key: str, practice_id: str
) -> str:
    """The practice an ``Idempotency-Key`` belongs to: ``practice_id`` if it is new.

    The key's calls live in their practice's hash slot; this one record (SET NX
    GET, atomic) remembers which practice the key was first used for.
    """
    owner = client.set(
        keys.idempotency_owner(actor, idempotency_key),
        practice_id,
        nx=True,
        get=True,
        ex=IDEMPOTENCY_TTL,
    )
    return cast(str | None, owner) or practice_id


def undo_disclosure(client: redis.Redis, session_id: str) -> bool:
    """Mark a call ``failed`` whose right code led nowhere (codeword unread, number unmarked)."""
    return bool(_UNDO_DISCLOSURE.run(client, [keys.call_session(session_id)]))


def reseal_codes(client: redis.Redis, reseal: Callable[[bytes], bytes]) -> int:
    """Re-encrypt every call's sealed challenge code with ``reseal``; returns how many.

    Codes are sealed (CODEWORD_KEYS) only for idempotent repeats of a support request.
    """
    count = 0
    for key in client.scan_iter(match=keys.ALL_CALL_SESSIONS, count=500):
        sealed = cast(str | None, client.hget(key, "code_sealed"))
        if sealed:
            resealed = reseal(sealed.encode()).decode()
            count += int(_RESEAL.run(client, [key], [sealed, resealed]))
    return count
