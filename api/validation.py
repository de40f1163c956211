"""Reading JSON request bodies strictly, with 422s that say what is wrong."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, request

from core.errors import InvalidInput
from store.numbers import InvalidNumber, normalise

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_MISSING = object()


def json_body() -> dict[str, Any]:
    """The request's JSON object; 422 for anything else."""
    if not request.is_json:
        raise InvalidInput("send the body as JSON, with the header Content-Type: application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def identifier(value: str, what: str) -> str:
    if not IDENTIFIER.match(value):
        raise InvalidInput(f"{what} must be 1-64 letters, digits or _.:-", field=what)
    return value


def text(body: dict[str, Any], field: str, max_length: int = 200, required: bool = True) -> Any:
    value = body.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    value = value.strip()
    if len(value) > max_length or not value.isprintable():
        raise InvalidInput(
            f"{field} must be printable and at most {max_length} characters", field=field
        )
    return value


def flag(body: dict[str, Any], field: str) -> bool | None:
    value = body.get(field)
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false", field=field)
    return value


def choice(body: dict[str, Any], field: str, options: tuple[str, ...], required: bool) -> Any:
    value = body.get(field)
    if value is None and not required:
        return None
    if value not in options:
        raise InvalidInput(f"{field} must be one of {', '.join(options)}", field=field)
    return value


def phone_number(value: Any, field: str) -> str:
    """An E.164 number in an allowed country."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a phone number", field=field)
    try:
        return normalise(value, current_app.config["ALLOWED_COUNTRIES"])
    except InvalidNumber as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from None
