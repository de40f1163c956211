"""What every console request passes through: the session, CSRF, security headers, errors.

Only console routes run these hooks (they belong to the blueprint): webhooks and
the JSON APIs stay cookie-free and pay nothing for the console.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import traceback
from importlib import resources
from typing import Any

import redis
from flask import current_app, g, redirect, render_template, request, url_for
from redis.exceptions import RedisClusterException
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from console import bp, sessions, words
from core.errors import RateLimited, ServiceError, error_response
from store.errors import LimitExceeded

log = logging.getLogger(__name__)

# Every console page: scripts, styles and everything else from this origin only; no
# inline script, no framing, forms posting only here.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
# Reached without a session: signing in, and the page's own files.
OPEN_ENDPOINTS = {"console.sign_in", "console.static"}
# Answered in JSON: fetched by the page's script, never shown as a page.
JSON_ENDPOINTS = {"console.call_status"}


@bp.before_request
def require_session() -> Response | None:
    """Find the agent's session, or send them to sign in; check every form's CSRF token."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    found = sessions.load(sessions.client_cookie())
    actor = sessions.actor_for(found) if found else None
    if found is None or actor is None:
        if request.endpoint in JSON_ENDPOINTS:
            return _json_refusal(401, "signed_out", "Your session has ended. Sign in again.")
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("console.sign_in", next=target), 303)
    g.console_session, g.actor = found, actor
    if request.method == "POST" and not sessions.csrf_token_is_valid(
        found, request.form.get("csrf_token")
    ):
        log.warning("console form refused: CSRF token missing or not this session's")
        return message_page(
            "This form has expired",
            "The form did not carry this session’s security token, so nothing was done. "
            "Go back, reload the page and try again.",
            403,
        )
    return None


@bp.after_request
def security_headers(response: Response) -> Response:
    """Every console response: the CSP, no framing, no sniffing; pages are never cached."""
    headers = response.headers
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        # A page can hold a challenge code: no cache may keep it.
        headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_global()
def csrf_token() -> str:
    """The hidden field value every console form carries."""
    return sessions.csrf_token(g.console_session)


@bp.app_template_global()
def asset_url(filename: str) -> str:
    """A console file's URL, versioned by its content so browsers may keep it for a year."""
    return url_for("console.static", filename=filename, v=_asset_version(filename))


@functools.cache
def _asset_version(filename: str) -> str:
    content = resources.files("console").joinpath("static", filename).read_bytes()
    return hashlib.sha256(content).hexdigest()[:12]


def message_page(title: str, text: str, status: int) -> Response:
    """A page that says one thing: an expired form, a missing practice, a failure."""
    response = current_app.make_response(
        render_template("console/message.html", title=title, text=text)
    )
    response.status_code = status
    return response


def _json_refusal(status: int, code: str, message: str) -> Response:
    error = ServiceError(message, code=code)
    error.status = status
    return error_response(error)


# Errors: a sentence on a page (or JSON for the page's script), never a stack trace.


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    if request.endpoint in JSON_ENDPOINTS:
        return error_response(error)
    title = "Not found" if error.status == 404 else "That did not work"
    response = message_page(title, words.general_refusal(error), error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


@bp.errorhandler(LimitExceeded)
def _limit_exceeded(error: LimitExceeded) -> Response:
    return _service_error(RateLimited.from_exceeded(error))


@bp.errorhandler(redis.RedisError)
@bp.errorhandler(RedisClusterException)
@bp.errorhandler(SQLAlchemyError)
def _dependency_error(error: Exception) -> Response:
    log.warning("console: dependency unavailable: %s", type(error).__name__)
    if request.endpoint in JSON_ENDPOINTS:
        return _json_refusal(503, "unavailable", words.UNAVAILABLE)
    response = message_page("Temporarily unavailable", words.UNAVAILABLE, 503)
    response.headers["Retry-After"] = "5"
    return response


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if request.endpoint in JSON_ENDPOINTS:
        return _json_refusal(status, "error", error.description or error.name)
    return message_page(error.name, error.description or error.name, status)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    # The type and place only: a message could carry a secret.
    log.error(
        "unhandled %s in %s\n%s",
        type(error).__name__,
        request.endpoint,
        "".join(traceback.format_tb(error.__traceback__)),
    )
    if request.endpoint in JSON_ENDPOINTS:
        return _json_refusal(500, "internal_error", "Something went wrong.")
    return message_page(
        "Something went wrong",
        "The console hit an error it did not expect, and said nothing more for safety. "
        "Nothing further was done; try again.",
        500,
    )
