"""The service's time: wall-clock seconds, replaceable through the app's ``CLOCK`` setting.

Expiry of one-time codes, call sessions and callback tokens is judged against this
clock, so tests move it forward instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

from flask import current_app, has_app_context


def now() -> float:
    """Seconds since the epoch, from ``app.config["CLOCK"]`` when a test set one."""
    clock = current_app.config.get("CLOCK") if has_app_context() else None
    return float(cast(Callable[[], float], clock or time.time)())


def iso(timestamp: float) -> str:
    """An epoch time as ISO 8601 in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
