"""The support console: HTML pages where support agents find a practice, call its office
and watch the call, or text the codeword to an admin; signed in with a support token.

It sits beside ``api/`` and uses the same flows (``ivr``, ``sms``) and directory;
only the app factory imports it.
"""

from __future__ import annotations

from flask import Blueprint, request

# Files whose URL names their version (``?v=``, see ``guard.asset_url``) never change.
YEAR = 365 * 24 * 3600


class _ConsoleBlueprint(Blueprint):
    """The console's blueprint: its versioned files may be cached for a year."""

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        return YEAR if request.args.get("v") else None


bp = _ConsoleBlueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)

# The modules below attach their routes and hooks to ``bp``.
from console import calls, guard, practices, sign_in  # noqa: E402

__all__ = ["bp", "calls", "guard", "practices", "sign_in"]
