"""Bearer tokens for the JSON APIs: admin (the main application) and support."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g, request

from core.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])

SCOPES = {"admin": "ADMIN_TOKENS", "support": "SUPPORT_TOKENS"}


def find_token(presented: str) -> tuple[str, str] | None:
    """The (scope, name) a presented token belongs to, compared in constant time."""
    found = None
    for scope, setting in SCOPES.items():
        for token, name in current_app.config[setting].items():
            # Keep comparing after a match so timing does not tell which matched.
            if hmac.compare_digest(token.encode(), presented.encode()):
                found = (scope, name)
    return found


def require_token(*scopes: str) -> Callable[[F], F]:
    """Allow the request only with a bearer token of one of ``scopes``.

    Sets ``g.actor`` to the token's name and ``g.scope`` to its scope.
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            kind, _, presented = header.partition(" ")
            if kind.lower() != "bearer" or not presented.strip():
                raise Unauthorized("a bearer token is required")
            found = find_token(presented.strip())
            if found is None:
                raise Unauthorized("the bearer token is not valid")
            scope, name = found
            if scope not in scopes:
                raise Forbidden(f"this endpoint needs a {' or '.join(scopes)} token")
            g.actor, g.scope = name, scope
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator
