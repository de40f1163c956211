"""Twilio's webhooks: the signature check, and which requests are webhooks at all.

Every webhook view is wrapped in ``twilio_webhook``, which refuses (403) a request
not signed by Twilio for our public URL and marks the view, so that
``is_twilio_webhook`` is the one answer to "is this request a Twilio webhook?" for
the error handlers and the request log alike.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from flask import abort, current_app, g, request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

F = TypeVar("F", bound=Callable[..., Any])

# The attribute ``twilio_webhook`` sets on the views it wraps.
_WEBHOOK_MARK = "is_twilio_webhook"


def webhook_url() -> str:
    """The URL Twilio signed: our public origin, the path and the query string."""
    base = current_app.config["PUBLIC_BASE_URL"]
    query = request.query_string.decode("latin-1")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


class _SignedParams:
    """A form as RequestValidator reads it: the names, and all values of each.

    The validator asks for ``getall`` first and, on a Flask form, reaches
    ``getlist`` only through two AttributeErrors per parameter; this spares them.
    """

    def __init__(self, form: MultiDict[str, str]) -> None:
        self._form = form

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def getall(self, name: str) -> list[str]:
        return self._form.getlist(name)


def is_signed_by_twilio() -> bool:
    """Whether ``X-Twilio-Signature`` matches this request under our auth token.

    Twilio signs the URL exactly as we handed it out, so one signature over that
    URL settles nearly every request. Only when it does not match does the
    validator's full check run, which also tries the URL with and without an
    explicit port: the same requests are accepted either way.
    """
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    validator = RequestValidator(token)
    url, params = webhook_url(), _SignedParams(request.form)
    expected = validator.compute_signature(url, params)
    if hmac.compare_digest(expected.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, params, signature))


# What a webhook from Twilio can be. Its signature is base64 of an HMAC-SHA1. Its body is a
# few KB: a 1600-character text in a non-Latin script with ten media URLs comes to about
# 17 KB, with a few dozen fields.
SIGNATURE_SHAPE = re.compile(r"[A-Za-z0-9+/]{27}=")
WEBHOOK_MAX_BYTES = 24 * 1024
WEBHOOK_MAX_FIELDS = 200


def twilio_webhook(view: F) -> F:
    """Refuse (403) any request not signed by Twilio for our public URL.

    What cannot be Twilio's is refused before its form is parsed, so that a forged
    request costs next to nothing: no well-formed signature header, 403; a body larger
    than any webhook, or with more fields, 413.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not SIGNATURE_SHAPE.fullmatch(request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        if (request.content_length or 0) > WEBHOOK_MAX_BYTES:
            abort(413)
        # Bounds a chunked body too, whose length nobody announced. Werkzeug stops reading
        # such a body at the limit without a word, so one byte more tells it was longer.
        request.max_content_length = WEBHOOK_MAX_BYTES + 1
        body = request.get_data(cache=True)
        if len(body) > WEBHOOK_MAX_BYTES or body.count(b"&") >= WEBHOOK_MAX_FIELDS:
            abort(413)
        if not is_signed_by_twilio():
            abort(403)
        return view(*args, **kwargs)

    setattr(wrapper, _WEBHOOK_MARK, True)
    return cast(F, wrapper)


def is_twilio_webhook() -> bool:
    """Whether this request was routed to a Twilio webhook (a view under ``twilio_webhook``).

    A request that matched no route (404, 405) is not one: it is answered as any other.
    """
    endpoint = request.endpoint
    if endpoint is None:
        return False
    return getattr(current_app.view_functions.get(endpoint), _WEBHOOK_MARK, False) is True


def speak_to_caller_in(language: str) -> None:
    """Note the caller's language (the practice's), for any apology this webhook ends in."""
    g.caller_language = language


def caller_language() -> str:
    """The language this webhook's caller hears: the one noted, else English."""
    return str(g.get("caller_language", "en"))
