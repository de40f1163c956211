"""The time the call flow runs on: wall-clock seconds, replaceable through ``CLOCK``.

Expiry of challenge codes, call sessions and callback tokens is judged against this
clock, so tests move it forward instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from flask import current_app


def now() -> float:
    """Seconds since the epoch, from ``app.config["CLOCK"]`` when a test set one."""
    clock = cast(Callable[[], float], current_app.config.get("CLOCK") or time.time)
    return float(clock())
