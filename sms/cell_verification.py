"""Proving a user's cell number: a six-digit code texted to it, keyed back in the main app.

The code is a one-time code (store/onetime.py) bound to the practice, the user and
the number texted: if the user's cell changes meanwhile, the code does not verify
the new one. Each check is one Lua script that compares in constant time and counts
wrong codes; the third wrong code burns the code.

Redis: ``keys.verification("cell", "<practice id>/<user id>")``, a hash of
``code_hash``, ``number``, ``expires_at`` and ``wrong_codes``, with a TTL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import redis
from flask import current_app

from core import rate_limits
from core.carrier import RecipientOptedOut
from core.errors import Conflict, InvalidInput, NotFound
from core.extensions import carrier, directory, redis_client
from sms.messages import Texts
from store import clock, keys, onetime, replication
from store.directory import TWILIO_ACTOR, UserRecord
from store.numbers import mask
from store.scripts import LuaScript

log = logging.getLogger(__name__)

# The pending code outlives its expiry a little, so a late check reads "expired".
KEY_TTL = onetime.CODE_LIFETIME + 300

_CHECK = LuaScript("cell_check_code", after=("same_hash",))
_FORGET = LuaScript("cell_forget_code")


class CheckVerdict(StrEnum):
    """What checking a cell code decided (store/lua/cell_check_code.lua)."""

    CORRECT = "correct"
    WRONG = "wrong"
    BURNED = "burned"  # the last wrong code burned it
    EXPIRED = "expired"
    NUMBER_CHANGED = "number-changed"  # the user's cell is no longer the number texted
    NONE = "none"  # no code is pending


class NoPendingCode(Conflict):
    code = "no_pending_code"


@dataclass(frozen=True)
class SentCode:
    """A code texted to a cell: where (masked) and until when."""

    to: str
    expires_at: float

    def to_json(self) -> dict[str, str]:
        return {"status": "sent", "to": self.to, "expires_at": clock.iso(self.expires_at)}


def pending_key(practice_id: str, user_id: str) -> str:
    # "/" appears in no identifier, so no two users share a key.
    return keys.verification("cell", f"{practice_id}/{user_id}")


def code_hash(practice_id: str, user_id: str, number: str, code: str) -> str:
    """The code's HMAC, bound to this practice, user and number."""
    binding = f"cell/{practice_id}/{user_id}/{number}"
    return onetime.code_hash(current_app.config["SECRET_KEY"], binding, code)


def _user(practice_id: str, user_id: str) -> UserRecord:
    if directory().get_practice(practice_id) is None:
        raise NotFound("no such practice")
    user = directory().get_user(practice_id, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


def send_code(practice_id: str, user_id: str) -> SentCode:
    """Text a fresh code to the user's cell; it replaces any code sent before."""
    user = _user(practice_id, user_id)
    number = user.cell_number
    if not number:
        raise Conflict("the user has no cell number", code="no_cell_number")
    if directory().is_opted_out(number):
        raise RecipientOptedOut("the recipient has opted out of texts from this number")
    reservation = rate_limits.reserve_cell_verification_text(practice_id, user_id)
    with rate_limits.given_back_on_failure(reservation):
        return _text_code(practice_id, user_id, number)


def _text_code(practice_id: str, user_id: str, number: str) -> SentCode:
    """Store a fresh code for the user, then text it; if it cannot go, forget it."""
    code = onetime.new_code()
    digest = code_hash(practice_id, user_id, number, code)
    expires_at = clock.now() + onetime.CODE_LIFETIME
    key = pending_key(practice_id, user_id)
    # Stored before it is sent, so the code works the moment it arrives.
    pipe = redis_client().pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(
        key,
        mapping={
            "code_hash": digest,
            "number": number,
            "expires_at": repr(expires_at),
            "wrong_codes": "0",
        },
    )
    pipe.expire(key, KEY_TTL)
    pipe.execute()

    body = Texts.from_config(current_app.config).cell_verification_code(
        code, onetime.CODE_LIFETIME // 60
    )
    try:
        carrier().send_sms(to=number, body=body, validity_period=onetime.CODE_LIFETIME)
    except RecipientOptedOut:
        # Twilio's 21610: kept as our opt-out too, as for codeword texts.
        _forget_quietly(key, digest)
        directory().opt_out(number, actor=TWILIO_ACTOR)
        raise
    except BaseException:
        _forget_quietly(key, digest)
        raise
    log.info("cell verification code texted to %s for %s/%s", mask(number), practice_id, user_id)
    return SentCode(to=mask(number) or "", expires_at=expires_at)


def check_code(practice_id: str, user_id: str, code: str, *, actor: str) -> None:
    """Verify the user's cell if ``code`` is the one texted to it; else say why not."""
    user = _user(practice_id, user_id)
    number = user.cell_number or ""
    submitted = code_hash(practice_id, user_id, number, code)
    client, key = redis_client(), pending_key(practice_id, user_id)
    with replication.one_connection(client, key) as connection:
        reply = connection.pairs(
            _CHECK, [key], [clock.now(), number, submitted, onetime.MAX_WRONG_CODES]
        )
        verdict = CheckVerdict(reply["verdict"])
        # A used code or a spent try that a failover could undo counts for nothing: 503.
        acknowledged = verdict in (CheckVerdict.EXPIRED, CheckVerdict.NONE) or (
            connection.replicated(current_app.config["REDIS_REPLICA_ACKS"])
        )
    if not acknowledged:
        raise replication.NotReplicated(f"no replica acknowledged a {verdict} code in time")
    # Belt and braces: verify only if Python's own comparison agrees with the script's.
    if verdict is CheckVerdict.CORRECT and not onetime.same_code(
        reply.get("code_hash", ""), submitted
    ):
        verdict = CheckVerdict.NONE
    if verdict is CheckVerdict.WRONG:
        remaining = int(reply.get("remaining") or 0)
        raise InvalidInput(
            "that code is not correct",
            code="wrong_code",
            field="code",
            remaining_attempts=remaining,
        )
    if verdict is CheckVerdict.BURNED:
        raise Conflict("three wrong codes: ask for a new code", code="code_burned")
    if verdict is CheckVerdict.EXPIRED:
        raise Conflict("the code has expired: ask for a new code", code="code_expired")
    if verdict is CheckVerdict.NUMBER_CHANGED:
        raise Conflict(
            "the code went to another number than the user's cell now: ask for a new code",
            code="cell_number_changed",
        )
    if verdict is not CheckVerdict.CORRECT:
        raise NoPendingCode("no code is waiting for this user: ask for one first")
    if not directory().set_cell_number_verified(practice_id, user_id, reply["number"]):
        raise Conflict(
            "the user's cell number changed meanwhile: ask for a new code",
            code="cell_number_changed",
        )
    directory().record_event(
        practice_id,
        channel="sms",
        outcome="cell_number_verified",
        actor=actor,
        to_number=number,
        reference=user_id,
    )
    log.info("cell %s of %s/%s verified", mask(number), practice_id, user_id)


def _forget_quietly(key: str, digest: str) -> None:
    """Forget a code that could not be sent; a Redis failure here leaves it to its TTL."""
    try:
        _FORGET.run(redis_client(), [key], [digest])
    except redis.RedisError as exc:
        log.warning("unsent cell verification code not forgotten: %s", type(exc).__name__)
