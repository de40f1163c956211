"""The errors the state layer raises; core maps them to HTTP answers."""

from __future__ import annotations


class StoreError(Exception):
    """Something the state layer refuses, cannot do, or cannot find."""


class NotInDirectory(StoreError, LookupError):
    """The practice or user named is not in the directory."""


class LimitExceeded(StoreError):
    """A rate limit has no slot left: which limit, what it allows, and when a slot frees."""

    def __init__(self, limit: str, allowed: str, retry_after: int) -> None:
        super().__init__(f"rate limit {limit} ({allowed}) reached; a slot frees in {retry_after} s")
        self.limit = limit
        self.allowed = allowed
        self.retry_after = max(1, retry_after)
