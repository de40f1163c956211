"""Redis connection with short timeouts, so a dead Redis is reported at once."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# A webhook must answer Twilio well within its 15 s; a Redis that does not
# answer in a quarter second is treated as down rather than retried.
SOCKET_TIMEOUT = 0.25


def connect(url: str) -> redis.Redis:
    """A client whose every command fails fast instead of retrying."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        decode_responses=True,
    )
