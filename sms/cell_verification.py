"""Proving a user's cell number: a six-digit code texted to it, keyed back in the main app.

The code comes from ``secrets``, lives 10 minutes, works once and is kept only as
an HMAC (keyed by SECRET_KEY) bound to the practice, the user and the number
texted: if the user's cell changes meanwhile, the code does not verify the new
one. Each check is one Lua script that compares in constant time and counts
wrong codes; the third wrong code burns the code.

Redis: ``keys.verification("cell", "<practice id>/<user id>")``, a hash of
``code_hash``, ``number``, ``expires_at`` and ``wrong_codes``, with a TTL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from flask import current_app

from core import rate_limits
from core.carrier import RecipientOptedOut
from core.errors import Conflict, InvalidInput, NotFound
from core.extensions import carrier, directory, redis_client
from ivr import challenge, clock, session
from sms.messages import Texts
from store import keys, replication
from store.directory import UserRecord
from store.numbers import mask

log = logging.getLogger(__name__)

CODE_LIFETIME = challenge.CODE_LIFETIME
MAX_WRONG_CODES = 3
# The pending code outlives its expiry a little, so a late check reads "expired".
KEY_TTL = CODE_LIFETIME + 300

# KEYS[1] the user's pending cell code; ARGV[1] now, ARGV[2] the user's cell as it
# is now, ARGV[3] HMAC of the code submitted (bound to that cell), ARGV[4] wrong
# codes that burn the code.
_CHECK = (
    challenge.SAME_HASH_LUA
    + """
local s = redis.call('HMGET', KEYS[1], 'code_hash', 'number', 'expires_at', 'wrong_codes')
if not s[2] then return {'verdict', 'none'} end
if not s[1] then return {'verdict', 'burned'} end
if tonumber(ARGV[1]) >= tonumber(s[3]) then return {'verdict', 'expired'} end
if s[2] ~= ARGV[2] then
  -- Sent to another number than the user's cell now: it proves nothing.
  redis.call('DEL', KEYS[1])
  return {'verdict', 'number-changed'}
end
if same_hash(s[1], ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return {'verdict', 'correct', 'code_hash', s[1], 'number', s[2]}
end
local wrong = redis.call('HINCRBY', KEYS[1], 'wrong_codes', 1)
if wrong >= tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[1], 'code_hash')
  return {'verdict', 'burned'}
end
return {'verdict', 'wrong', 'remaining', tostring(tonumber(ARGV[4]) - wrong)}
"""
)

# KEYS[1] the user's pending cell code; ARGV[1] the code hash this request stored.
# Forget the code only if it is still ours (a later request may have replaced it).
_FORGET = """
if redis.call('HGET', KEYS[1], 'code_hash') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class NoPendingCode(Conflict):
    code = "no_pending_code"


@dataclass(frozen=True)
class SentCode:
    """A code texted to a cell: where (masked) and until when."""

    to: str
    expires_at: float

    def to_json(self) -> dict[str, str]:
        return {"status": "sent", "to": self.to, "expires_at": session.iso(self.expires_at)}


def pending_key(practice_id: str, user_id: str) -> str:
    # "/" appears in no identifier, so no two users share a key.
    return keys.verification("cell", f"{practice_id}/{user_id}")


def code_hash(practice_id: str, user_id: str, number: str, code: str) -> str:
    """The code's HMAC, bound to this practice, user and number."""
    binding = f"cell/{practice_id}/{user_id}/{number}"
    return challenge.code_hash(current_app.config["SECRET_KEY"], binding, code)


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
    code = challenge.new_code()
    digest = code_hash(practice_id, user_id, number, code)
    expires_at = clock.now() + CODE_LIFETIME
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

    body = Texts.from_config(current_app.config).cell_verification_code(code, CODE_LIFETIME // 60)
    try:
        carrier().send_sms(to=number, body=body, validity_period=CODE_LIFETIME)
    except RecipientOptedOut:
        # Twilio's 21610: kept as our opt-out too, as for codeword texts.
        _forget_quietly(key, digest)
        directory().opt_out(number)
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
        reply = session.flat_reply(
            connection.run(
                session.script(client, _CHECK),
                [key],
                [clock.now(), number, submitted, MAX_WRONG_CODES],
            )
        )
        verdict = reply["verdict"]
        # A used code or a spent try that a failover could undo counts for nothing: 503.
        acknowledged = verdict not in ("correct", "wrong", "burned", "number-changed") or (
            connection.replicated(current_app.config["REDIS_REPLICA_ACKS"])
        )
    if not acknowledged:
        raise replication.NotReplicated(f"no replica acknowledged a {verdict} code in time")
    # Belt and braces: verify only if Python's own comparison agrees with the script's.
    if verdict == "correct" and not challenge.same_code(reply.get("code_hash", ""), submitted):
        verdict = "none"
    if verdict == "wrong":
        remaining = int(reply.get("remaining") or 0)
        raise InvalidInput(
            "that code is not correct",
            code="wrong_code",
            field="code",
            remaining_attempts=remaining,
        )
    if verdict == "burned":
        raise Conflict("three wrong codes: ask for a new code", code="code_burned")
    if verdict == "expired":
        raise Conflict("the code has expired: ask for a new code", code="code_expired")
    if verdict == "number-changed":
        raise Conflict(
            "the code went to another number than the user's cell now: ask for a new code",
            code="cell_number_changed",
        )
    if verdict != "correct":
        raise NoPendingCode("no code is waiting for this user: ask for one first")
    if not directory().set_cell_number_verified(practice_id, user_id, reply["number"]):
        raise Conflict(
            "the user's cell number changed meanwhile: ask for a new code",
            code="cell_number_changed",
        )
    directory().record_event(
        practice_id, channel="sms", outcome="cell_verified", actor=actor, to_number=number
    )
    log.info("cell %s of %s/%s verified", mask(number), practice_id, user_id)


def _forget_quietly(key: str, digest: str) -> None:
    """Forget a code that could not be sent; a Redis failure here leaves it to its TTL."""
    try:
        session.script(redis_client(), _FORGET)(keys=[key], args=[digest])
    except redis.RedisError as exc:
        log.warning("unsent cell verification code not forgotten: %s", type(exc).__name__)
