"""Counting Redis round trips: each command or pipeline is one write to the socket."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from redis.connection import AbstractConnection


@contextlib.contextmanager
def count_round_trips() -> Iterator[list[int]]:
    """Yield a one-item list that holds, on exit, how many round trips were made."""
    counted = [0]
    original = AbstractConnection.send_packed_command

    def counting(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        counted[0] += 1
        original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AbstractConnection, "send_packed_command", counting)
        yield counted
