"""A verification call's state in Redis, and the Lua scripts that move it on.

One hash per call session (``keys.call_session``) holds everything a webhook
needs, so answering the call reads no SQL. Every webhook step is one script,
one round trip: it checks that the request belongs to this call (CallSid, To),
that the session is still open, and records what happened, atomically.

A practice's live call is ``keys.live_call``: ``<session id>|<expires at>``.
It is released by the call's final status callback, and counts as released
once its expiry has passed even if Redis still holds the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import redis

from store import keys
from store.scripts import LuaScript

# What a call is for: reading the codeword (support asks), or proving the office
# number (an admin asks). The session's ``purpose`` field; absent means the codeword.
CODEWORD = "codeword"
OFFICE = "office"

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

# The call-step scripts (store/lua/call_*.lua) share the helpers of call_prelude.lua.
CALL_STEP = ("call_prelude",)
_RESERVE = LuaScript("call_reserve")
_MARK_PLACED = LuaScript("call_mark_placed", after=CALL_STEP)
_ROLLBACK = LuaScript("call_rollback", after=CALL_STEP)
_ANSWER = LuaScript("call_answer", after=CALL_STEP)
_REPEAT = LuaScript("call_repeat", after=CALL_STEP)
_STATUS = LuaScript("call_status", after=CALL_STEP)
_UNDO_DISCLOSURE = LuaScript("call_undo_disclosure")
_RESEAL = LuaScript("call_reseal_code")


@dataclass(frozen=True)
class CallSession:
    """A verification call as Redis holds it."""

    id: str
    practice_id: str
    practice_name: str
    language: str
    to: str
    actor: str
    requested_by: str
    status: str
    created_at: float
    expires_at: float
    call_sid: str | None
    code_sealed: str | None
    placed: bool
    purpose: str = CODEWORD

    @classmethod
    def from_hash(cls, session_id: str, fields: dict[str, str]) -> CallSession:
        return cls(
            id=session_id,
            practice_id=fields["practice_id"],
            practice_name=fields.get("practice_name", ""),
            language=fields.get("language", "en"),
            to=fields["to"],
            actor=fields.get("actor", ""),
            requested_by=fields.get("requested_by", ""),
            status=fields.get("status", "queued"),
            created_at=float(fields["created_at"]),
            expires_at=float(fields["expires_at"]),
            call_sid=fields.get("call_sid") or None,
            code_sealed=fields.get("code_sealed") or None,
            placed=fields.get("placed") == "1",
            purpose=fields.get("purpose") or CODEWORD,
        )

    def status_at(self, now: float) -> str:
        """The status as callers see it: an unfinished call past its expiry is ``expired``."""
        if self.status not in FINAL and now >= self.expires_at:
            return EXPIRED
        return self.status


# Creating a session (the support API) -------------------------------------------


def reserve(
    client: redis.Redis,
    *,
    session_id: str,
    practice_id: str,
    idempotency_redis_key: str | None,
    now: float,
    lifetime: int,
    fields: dict[str, str],
) -> tuple[str, str]:
    """Create the session and claim the practice's live call, unless one is live.

    Returns (verdict, session id): ``created``, ``live`` (naming the live call)
    or ``idempotent`` (naming the call this idempotency key already made).
    """
    keys_ = [keys.call_session(session_id), keys.live_call(practice_id)]
    if idempotency_redis_key:
        keys_.append(idempotency_redis_key)
    expires_at = now + lifetime
    pairs = [item for pair in fields.items() for item in pair]
    reply = _RESERVE.pairs(
        client,
        keys_,
        [now, session_id, expires_at, lifetime, RETENTION, IDEMPOTENCY_TTL, *pairs],
    )
    return reply["verdict"], reply["id"]


def mark_placed(
    client: redis.Redis, session_id: str, practice_id: str, call_sid: str, status: str
) -> bool:
    """Record the carrier's CallSid; False if a webhook already bound another call."""
    reply = _MARK_PLACED.pairs(
        client,
        [keys.call_session(session_id), keys.live_call(practice_id)],
        [session_id, call_sid, status],
    )
    return reply["verdict"] != "mismatch"


def rollback(
    client: redis.Redis, session_id: str, practice_id: str, idempotency_redis_key: str | None
) -> None:
    """Forget a session whose call could not be placed, freeing the practice and the key."""
    keys_ = [keys.call_session(session_id), keys.live_call(practice_id)]
    if idempotency_redis_key:
        keys_.append(idempotency_redis_key)
    _ROLLBACK.pairs(client, keys_, [session_id])


def load(client: redis.Redis, session_id: str) -> CallSession | None:
    """The session, or None once it is gone."""
    fields = cast(dict[str, str], client.hgetall(keys.call_session(session_id)))
    if not fields or "practice_id" not in fields:
        return None
    return CallSession.from_hash(session_id, fields)


def idempotent_session_id(client: redis.Redis, idempotency_redis_key: str) -> str | None:
    """The session an idempotency key already made, if any."""
    return cast(str | None, client.get(idempotency_redis_key))


# Webhook steps ------------------------------------------------------------------


@dataclass(frozen=True)
class CallerCheck:
    """What a webhook says about the call it belongs to."""

    session_id: str
    call_sid: str
    to: str


def answer(client: redis.Redis, call: CallerCheck, *, machine: bool, now: float) -> dict[str, str]:
    """The call was answered: by a person (``answered``), a machine (``voicemail``), or too late."""
    return _ANSWER.pairs(
        client,
        [keys.call_session(call.session_id)],
        [now, call.call_sid, call.to, "1" if machine else "0"],
    )


def repeat(
    client: redis.Redis, call: CallerCheck, *, pressed: str, max_repeats: int, now: float
) -> dict[str, str]:
    """After the codeword was read: may it be read again (``repeat``) or is it ``goodbye``?"""
    return _REPEAT.pairs(
        client,
        [keys.call_session(call.session_id)],
        [now, call.call_sid, call.to, pressed, max_repeats],
    )


def record_status(
    client: redis.Redis, call: CallerCheck, *, practice_id: str, status: str
) -> dict[str, str]:
    """Apply a status callback; a final status ends the call and frees the practice."""
    return _STATUS.pairs(
        client,
        [keys.call_session(call.session_id), keys.live_call(practice_id)],
        [call.session_id, call.call_sid, call.to, status],
    )


def reseal_codes(client: redis.Redis, reseal: Callable[[bytes], bytes]) -> int:
    """Re-encrypt every call's sealed challenge code with ``reseal``; returns how many.

    Codes are sealed (CODEWORD_KEYS) only for idempotent repeats of a support request.
    """
    swap = _RESEAL.on(client)
    count = 0
    for key in client.scan_iter(match=keys.call_session("*"), count=500):
        sealed = cast(str | None, client.hget(key, "code_sealed"))
        if sealed:
            resealed = reseal(sealed.encode()).decode()
            count += int(cast(int, swap(keys=[key], args=[sealed, resealed])))
    return count


def undo_disclosure(client: redis.Redis, session_id: str) -> bool:
    """Mark a call ``failed`` whose right code led nowhere (codeword unread, number unmarked)."""
    undo = _UNDO_DISCLOSURE.on(client)
    return bool(undo(keys=[keys.call_session(session_id)]))
