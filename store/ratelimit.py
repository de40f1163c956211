"""Rate limits on Redis, through the ``limits`` library.

Callers ``check`` every rule before acting and ``hit`` them only once the
action succeeded, so a request that fails (Twilio down, say) spends no slot.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from core.errors import RateLimited
from store.keys import PREFIX


@dataclass(frozen=True)
class Rule:
    """``limit`` applied to one subject, e.g. 3/hour for practice p-1."""

    limit: RateLimitItem
    scope: str
    subject: str

    @classmethod
    def of(cls, limit: str, scope: str, subject: str) -> Rule:
        return cls(parse(limit), scope, subject)


class RateLimiter:
    """Moving-window limits kept in Redis, shared by every worker."""

    def __init__(self, redis_client: redis.Redis) -> None:
        storage = RedisStorage(
            "redis://",
            connection_pool=redis_client.connection_pool,
            key_prefix=f"{PREFIX}:limits",
        )
        self._limiter = MovingWindowRateLimiter(storage)

    def check(self, *rules: Rule, message: str = "too many requests, try again later") -> None:
        """Raise RateLimited if any rule has no slot left."""
        for rule in rules:
            if not self._limiter.test(rule.limit, rule.scope, rule.subject):
                reset_at, _remaining = self._limiter.get_window_stats(
                    rule.limit, rule.scope, rule.subject
                )
                raise RateLimited(message, retry_after=math.ceil(reset_at - time.time()))

    def hit(self, *rules: Rule) -> bool:
        """Spend a slot of each rule; False if one of them had none left."""
        return all([self._limiter.hit(rule.limit, rule.scope, rule.subject) for rule in rules])
