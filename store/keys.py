"""The one place Redis key names are built.

Every short-lived key has a TTL set where it is written; the prefix keeps this
service's keys apart from anything else sharing the Redis database.

On Redis Cluster a script or transaction may only touch keys of one hash slot,
and a key's slot is the hash of its ``{hash tag}``. A verification call's keys
(its session, its practice's live-call claim, the request's idempotency key)
are one script's, so they share their practice's tag: a short digest of the
practice id. The call's id carries that tag too (``VC`` + tag + random), so the
session is found from the id alone. Practices spread over every slot; nothing
uses one tag for all.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import quote

PREFIX = "cw"

CALL_ID_PREFIX = "VC"
# Hex digits of the practice's tag: 2**32 values spread well over 16384 slots.
TAG_LENGTH = 8


def key(*parts: str) -> str:
    """Join parts into a namespaced Redis key, e.g. ``cw:sms-choice:<number>``."""
    return ":".join((PREFIX, *parts))


def practice_tag(practice_id: str) -> str:
    """The hash tag that puts a practice's call keys in one slot."""
    return hashlib.blake2s(practice_id.encode(), digest_size=TAG_LENGTH // 2).hexdigest()


def new_call_session_id(practice_id: str) -> str:
    """A fresh verification call id: ``VC``, the practice's tag, 96 random bits (34 characters)."""
    return CALL_ID_PREFIX + practice_tag(practice_id) + secrets.token_hex(12)


def _call_tag(session_id: str) -> str:
    # Any string maps to some key: a made-up id simply names a session that is not there.
    return session_id[len(CALL_ID_PREFIX) : len(CALL_ID_PREFIX) + TAG_LENGTH]


def call_session(session_id: str) -> str:
    """The hash of one verification call, in its practice's slot."""
    return key(f"{{{_call_tag(session_id)}}}", "call", session_id)


def live_call(practice_id: str) -> str:
    """``<session id>|<expires at>`` of the practice's one live call."""
    return key(f"{{{practice_tag(practice_id)}}}", "live-call", practice_id)


def idempotency(practice_id: str, actor: str, idempotency_key: str) -> str:
    """The call an ``Idempotency-Key`` made, in the practice's slot (the same script's keys).

    The token's name is percent-encoded, ``:`` included, so that no two (name, key) pairs
    meet: ``a:b`` with ``c`` and ``a`` with ``b:c`` would both read ``a:b:c``.
    """
    return key(f"{{{practice_tag(practice_id)}}}", "idem", quote(actor, safe=""), idempotency_key)


def idempotency_owner(actor: str, idempotency_key: str) -> str:
    """The practice an ``Idempotency-Key`` was first used for (reused for another: 422)."""
    return key("idem-owner", quote(actor, safe=""), idempotency_key)


def every_idempotency_key() -> str:
    """A SCAN pattern matching the idempotency keys of every token and practice."""
    return key("{*}", "idem", "*")


# Patterns matching every key of a kind (SCAN MATCH), for maintenance and tests.
ALL_CALL_SESSIONS = key("{*}", "call", "*")
ALL_LIVE_CALLS = key("{*}", "live-call", "*")


# The prefix of every key ``limits`` keeps (one key per rule and subject, one script each).
RATE_LIMITS = key("limits")


def sms_choice(number: str) -> str:
    return key("sms-choice", number)


def verification(kind: str, verification_id: str) -> str:
    return key("verify", kind, verification_id)


def console_session(session_hash: str) -> str:
    """A support console session, named by the hash of its cookie (never the cookie itself).

    Tagged with that hash, as its notice is: signing out deletes both in one command.
    """
    return key("console-session", f"{{{session_hash}}}")


def console_notice(session_hash: str) -> str:
    """What a console session's last action came to, kept for its next page."""
    return key("console-notice", f"{{{session_hash}}}")


def simulated(kind: str) -> str:
    return key("sim", kind)
