"""Console sessions: kept in Redis, named by a random cookie, revoked on the server.

The cookie carries only a random id; Redis keeps the session under the id's SHA-256,
so a copy of Redis holds no cookie that works. A session lasts 8 hours from sign-in
(never extended) and ends at once when it is signed out or its support token is
removed from ``SUPPORT_TOKENS``. Every form carries a CSRF token bound to the session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import cast

from flask import current_app, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from core.extensions import redis_client
from store import clock, keys

COOKIE = "cw_console"
COOKIE_PATH = "/console"
LIFETIME = 8 * 3600
# The sign-in form's own CSRF nonce, before there is a session to bind a token to.
SIGN_IN_COOKIE = "cw_console_sign_in"
SIGN_IN_LIFETIME = 3600


# A notice waits this long for the page it was kept for (the next one, normally at once).
NOTICE_LIFETIME = 300


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in support agent: which support token, and since when."""

    id_hash: str
    token_fingerprint: str
    created_at: float


@dataclass(frozen=True)
class Notice:
    """What the last action came to, shown once on the next page: ``done`` or ``refused``."""

    kind: str
    text: str


def digest(value: str) -> str:
    """SHA-256 in hex: what Redis keeps in place of a cookie or nonce."""
    return hashlib.sha256(value.encode()).hexdigest()


def token_fingerprint(token: str) -> str:
    """What a session remembers of the support token it was opened with."""
    return digest("support-token:" + token)


def actor_for(session: ConsoleSession) -> str | None:
    """The name of the session's support token, or None once that token is gone."""
    name = None
    for token, token_name in current_app.config["SUPPORT_TOKENS"].items():
        if hmac.compare_digest(token_fingerprint(token), session.token_fingerprint):
            name = token_name
    return name


def start(token: str) -> str:
    """Open a session for a valid support token; returns the new cookie value."""
    session_id = secrets.token_urlsafe(32)
    pipe = redis_client().pipeline(transaction=True)
    key = keys.console_session(digest(session_id))
    pipe.hset(
        key,
        mapping={"token": token_fingerprint(token), "created_at": repr(clock.now())},
    )
    pipe.expire(key, LIFETIME)
    pipe.execute()
    return session_id


def load(session_id: str | None) -> ConsoleSession | None:
    """The session a cookie names, if it is still open."""
    if not session_id or len(session_id) > 128:
        return None
    id_hash = digest(session_id)
    fields = cast(dict[str, str], redis_client().hgetall(keys.console_session(id_hash)))
    if not fields.get("token"):
        return None
    return ConsoleSession(
        id_hash=id_hash,
        token_fingerprint=fields["token"],
        created_at=float(fields.get("created_at") or 0),
    )


def end(session: ConsoleSession) -> None:
    """Revoke the session on the server: its cookie no longer works anywhere."""
    redis_client().delete(
        keys.console_session(session.id_hash), keys.console_notice(session.id_hash)
    )


def keep_notice(session: ConsoleSession, notice: Notice) -> None:
    """Keep a notice for the next page this session sees (after a redirect)."""
    value = json.dumps({"kind": notice.kind, "text": notice.text})
    redis_client().set(keys.console_notice(session.id_hash), value, ex=NOTICE_LIFETIME)


def take_notice(session: ConsoleSession) -> Notice | None:
    """The notice kept for this page, forgotten as it is shown."""
    value = cast(str | None, redis_client().getdel(keys.console_notice(session.id_hash)))
    if not value:
        return None
    kept = json.loads(value)
    return Notice(kind=str(kept["kind"]), text=str(kept["text"]))


def set_cookie(response: Response, session_id: str) -> None:
    _set(response, COOKIE, session_id, LIFETIME)


def clear_cookie(response: Response) -> None:
    _clear(response, COOKIE)


def _set(response: Response, name: str, value: str, max_age: int) -> None:
    # Every console cookie carries the same flags: one place sets them.
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=_secure(),
        httponly=True,
        samesite="Strict",
    )


def _clear(response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, secure=_secure(), httponly=True, samesite="Strict"
    )


def _secure() -> bool:
    return bool(current_app.config["PUBLIC_BASE_URL"].startswith("https://"))


# CSRF -------------------------------------------------------------------------------


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"console-{purpose}")


def csrf_token(session: ConsoleSession) -> str:
    """The token every form of this session carries."""
    return _serializer("csrf").dumps(session.id_hash)


def csrf_token_is_valid(session: ConsoleSession, token: str | None) -> bool:
    """Whether ``token`` was made for this very session (and within its lifetime)."""
    return _bound_token_is_valid("csrf", token, session.id_hash, LIFETIME)


def new_sign_in_nonce() -> str:
    """A random value for the sign-in form's cookie, which its CSRF token is bound to."""
    return secrets.token_urlsafe(24)


def sign_in_token(nonce: str) -> str:
    return _serializer("sign-in").dumps(digest(nonce))


def sign_in_token_is_valid(nonce: str | None, token: str | None) -> bool:
    """Whether the sign-in form's token matches the nonce cookie sent with it."""
    if not nonce:
        return False
    return _bound_token_is_valid("sign-in", token, digest(nonce), SIGN_IN_LIFETIME)


def set_sign_in_cookie(response: Response, nonce: str) -> None:
    _set(response, SIGN_IN_COOKIE, nonce, SIGN_IN_LIFETIME)


def clear_sign_in_cookie(response: Response) -> None:
    _clear(response, SIGN_IN_COOKIE)


def _bound_token_is_valid(purpose: str, token: str | None, bound_to: str, max_age: int) -> bool:
    if not token or len(token) > 512:
        return False
    try:
        value = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        return False
    except BadSignature:
        return False
    return isinstance(value, str) and hmac.compare_digest(value, bound_to)


def client_cookie() -> str | None:
    return request.cookies.get(COOKIE)
