"""What the store raises. Its errors know nothing of HTTP: the app maps them to answers."""

from __future__ import annotations


class StoreError(Exception):
    """Something the store refused or could not find."""


class NotInDirectory(StoreError, LookupError):
    """The practice or user named is not in the directory."""
