"""Reading JSON request bodies strictly, with 422s that say what is wrong."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from core.errors import InvalidInput
from store.identifiers import is_identifier
from store.numbers import InvalidNumber, normalise

_MISSING = object()


def json_body() -> dict[str, Any]:
    """The request's JSON object; 422 for anything else."""
    if not request.is_json:
        raise InvalidInput("send the body as JSON, with the header Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        # The parser gives up on deep nesting ("[" x 1000) with this, not a ValueError.
        raise InvalidInput("the body nests too deeply") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def optional_json_body() -> dict[str, Any]:
    """The request's JSON object, or ``{}`` for an empty body.

    The body is read, not guessed from Content-Length: a chunked body has none.
    """
    if not request.get_data(cache=True):
        return {}
    return json_body()


def identifier(value: str, what: str) -> str:
    """``value`` if it is an identifier (1-64 of ``A-Z a-z 0-9 . _ : -``), else 422."""
    if not is_identifier(value):
        raise InvalidInput(f"{what} must be 1-64 letters, digits or ._:-", field=what)
    return value


def body_identifier(body: dict[str, Any], field: str) -> str:
    """The identifier in ``body[field]``, exactly as given: no space trimmed off."""
    value = body.get(field)
    if value is None:
        raise InvalidInput(f"{field} is required", field=field)
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    return identifier(value, field)


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


def query_int(name: str, *, default: Any, low: int, high: int | None = None) -> Any:
    """The whole number in query parameter ``name`` (``default`` when absent), within bounds."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidInput(f"{name} must be a whole number", field=name)
    value = int(raw)
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InvalidInput(f"{name} must be {bounds}", field=name)
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
