"""The one place Redis key names are built.

Every short-lived key has a TTL set where it is written; the prefix keeps this
service's keys apart from anything else sharing the Redis database.
"""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "cw"


def key(*parts: str) -> str:
    """Join parts into a namespaced Redis key, e.g. ``cw:call:<id>``."""
    return ":".join((PREFIX, *parts))


def call_session(session_id: str) -> str:
    return key("call", session_id)


def live_call(practice_id: str) -> str:
    return key("live-call", practice_id)


def idempotency(actor: str, idempotency_key: str) -> str:
    """The key of one support token's Idempotency-Key.

    The token's name is percent-encoded, ``:`` included, so that no two (name, key) pairs
    meet: ``a:b`` with ``c`` and ``a`` with ``b:c`` would both read ``a:b:c``. Plain names
    read as before.
    """
    return key("idem", quote(actor, safe=""), idempotency_key)


def every_idempotency_key() -> str:
    """A SCAN pattern matching the idempotency keys of every token."""
    return key("idem", "*")


def sms_choice(number: str) -> str:
    return key("sms-choice", number)


def verification(kind: str, verification_id: str) -> str:
    return key("verify", kind, verification_id)


def console_session(session_hash: str) -> str:
    """A support console session, named by the hash of its cookie (never the cookie itself)."""
    return key("console-session", session_hash)


def console_notice(session_hash: str) -> str:
    """What a console session's last action came to, kept for its next page."""
    return key("console-notice", session_hash)


def simulated(kind: str) -> str:
    return key("sim", kind)
