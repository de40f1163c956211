"""Typed access to the clients the factory hangs on the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import redis
from flask import current_app

if TYPE_CHECKING:
    from core.carrier import Carrier
    from store.directory import Directory
    from store.ratelimit import RateLimiter


def directory() -> Directory:
    return cast("Directory", current_app.extensions["directory"])


def redis_client() -> redis.Redis:
    return cast(redis.Redis, current_app.extensions["redis"])


def carrier() -> Carrier:
    return cast("Carrier", current_app.extensions["carrier"])


def limiter() -> RateLimiter:
    return cast("RateLimiter", current_app.extensions["limiter"])
