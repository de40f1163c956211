"""Signed, expiring tokens in the call's callback URLs, naming its session.

Twilio's signature proves a request came from Twilio; this token proves the URL
is one we handed out for this call session, and not long ago.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from core.public_urls import public_url
from store import clock

log = logging.getLogger(__name__)

SALT = "ivr.verification-call"
# Longer than any call lasts (ring timeout plus time limit), so the final status
# callback is still accepted; the session's own expiry guards the code.
MAX_AGE = 3600


class _ClockedSigner(TimestampSigner):
    """Timestamps from the call flow's clock, so tests can age a token."""

    def get_timestamp(self) -> int:
        return int(clock.now())


@dataclass(frozen=True)
class CallRef:
    """What a callback URL names: the call session, its practice and language."""

    session_id: str
    practice_id: str
    language: str
    # The token this reference was read from, if any (see ``token_for``).
    token: str = field(default="", compare=False, repr=False)


def _serializer() -> URLSafeTimedSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"])


@functools.lru_cache(maxsize=8)
def _serializer_for(secret_key: str) -> URLSafeTimedSerializer:
    # Building one costs more than using it; it holds nothing but the key.
    return URLSafeTimedSerializer(secret_key, salt=SALT, signer=_ClockedSigner)


def sign(ref: CallRef) -> str:
    """A token naming ``ref``, for the call's callback URLs."""
    token: str = _serializer().dumps({"s": ref.session_id, "p": ref.practice_id, "l": ref.language})
    return token


def load(token: str) -> CallRef | None:
    """The session a token names, or None if it is forged, altered or too old."""
    try:
        data: Any = _serializer().loads(token, max_age=MAX_AGE)
    except SignatureExpired:
        log.info("call callback with an expired token")
        return None
    except BadSignature:
        log.warning("call callback with a token that is not ours")
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "spl"):
        return None
    return CallRef(session_id=data["s"], practice_id=data["p"], language=data["l"], token=token)


def token_for(ref: CallRef) -> str:
    """The token for a callback URL of ``ref``'s call: the one its webhook came with, if any.

    Every callback of a call names the same session, so the token made when the
    call was placed serves each of them, as it already does the status callback
    (MAX_AGE outlasts any call); signing a new one at every step costs time and
    proves nothing more.
    """
    return ref.token or sign(ref)


def callback_url(endpoint: str, token: str) -> str:
    """The absolute public URL of ``endpoint`` carrying ``token``, as Twilio will sign it.

    The endpoint's URL comes from ``PUBLIC_BASE_URL`` and the route alone, whatever
    the current request says; each call only appends its token.
    """
    return f"{public_url(endpoint)}?t={quote(token, safe='')}"
