"""Identifiers the main application and our own records use: practice, user, call ids."""

from __future__ import annotations

import re

# 1-64 of these characters and nothing else, checked with fullmatch: ``$`` in a
# ``match`` would let a trailing newline through, and into a Location header.
IDENTIFIER = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def is_identifier(value: object) -> bool:
    """Whether ``value`` is an identifier: 1-64 of ``A-Z a-z 0-9 . _ : -``."""
    return isinstance(value, str) and IDENTIFIER.fullmatch(value) is not None
