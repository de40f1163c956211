"""The service's exceptions and how each kind of route answers them.

JSON routes answer ``{"error": {"code", "message"}}``; Twilio webhooks answer
TwiML that apologises and reveals nothing. Nothing answers an HTML page or a
stack trace.
"""

from __future__ import annotations

import logging
import traceback

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from core.twiml import apology
from core.webhooks import caller_language, is_twilio_webhook
from store.errors import LimitExceeded, NotInDirectory
from store.redis_client import UNAVAILABLE as REDIS_UNAVAILABLE

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    status = 500
    code = "internal_error"
    retry_after: int | None = None

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class RateLimited(ServiceError):
    """429: the body names the limit and the seconds to wait, as ``Retry-After`` does."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int, **details: object) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.details = {"retry_after": self.retry_after, **details}

    @classmethod
    def from_exceeded(cls, exceeded: LimitExceeded) -> RateLimited:
        message = (
            f"too many requests: {exceeded.limit} allows {exceeded.allowed};"
            f" try again in {exceeded.retry_after} seconds"
        )
        return cls(message, exceeded.retry_after, limit=exceeded.limit)


class CarrierUnavailable(ServiceError):
    status, code, retry_after = 502, "carrier_unavailable", 30


class DependencyUnavailable(ServiceError):
    status, code, retry_after = 503, "unavailable", 5


def error_response(error: ServiceError) -> Response:
    body: dict[str, object] = {"code": error.code, "message": error.message}
    body.update(error.details)
    response = jsonify({"error": body})
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        # The scheme the caller must use (RFC 6750).
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer every error in the shape its route promises."""

    @app.errorhandler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        if is_twilio_webhook():
            log.warning("webhook %s: %s", request.endpoint, type(error).__name__)
            return apology(caller_language())
        return error_response(error)

    # The store's errors, answered as the service's own.
    @app.errorhandler(NotInDirectory)
    def _not_in_directory(error: NotInDirectory) -> Response:
        return _service_error(NotFound(str(error)))

    @app.errorhandler(LimitExceeded)
    def _limit_exceeded(error: LimitExceeded) -> Response:
        return _service_error(RateLimited.from_exceeded(error))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        if is_twilio_webhook() and (error.code or 500) >= 500:
            return apology(caller_language())
        status = error.code or 500
        codes = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            415: "unsupported_media_type",
        }
        message = error.description or error.name
        allowed = sorted(getattr(error, "valid_methods", None) or [])
        if status == 405 and allowed:
            message = f"this endpoint takes only {', '.join(allowed)}"
        wrapped = ServiceError(message, code=codes.get(status, "error"))
        wrapped.status = status
        response = error_response(wrapped)
        if is_twilio_webhook():
            # A 403 to a forged webhook still says nothing beyond "forbidden".
            response = Response("", status=status)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    def _redis_error(error: Exception) -> Response:
        # Also a failover's READONLY answer or a Sentinel naming no master yet.
        log.warning("redis unavailable: %s", type(error).__name__)
        if is_twilio_webhook():
            return apology(caller_language())
        return error_response(DependencyUnavailable("temporarily unavailable, try again"))

    for redis_unavailable in REDIS_UNAVAILABLE:
        app.register_error_handler(redis_unavailable, _redis_error)

    @app.errorhandler(SQLAlchemyError)
    def _database_error(error: SQLAlchemyError) -> Response:
        log.warning("database unavailable: %s", type(error).__name__)
        if is_twilio_webhook():
            return apology(caller_language())
        return error_response(DependencyUnavailable("temporarily unavailable, try again"))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # Log the type and place, never the message: it could carry a secret.
        log.error(
            "unhandled %s in %s\n%s",
            type(error).__name__,
            request.endpoint,
            "".join(traceback.format_tb(error.__traceback__)),
        )
        if is_twilio_webhook():
            return apology(caller_language())
        return error_response(ServiceError("internal error"))
