"""Rate limits on Redis: check before acting, spend only on success, say when to retry."""

from __future__ import annotations

import pytest
import redis

from core.errors import RateLimited
from store.ratelimit import RateLimiter, Rule


def test_a_limit_allows_its_count_then_refuses_with_retry_after(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client)
    rule = Rule.of("3/hour", "calls", "p-1")
    for _ in range(3):
        limiter.check(rule)
        assert limiter.hit(rule)
    with pytest.raises(RateLimited) as raised:
        limiter.check(rule)
    assert 3500 <= raised.value.retry_after <= 3600
    assert raised.value.status == 429


def test_checking_spends_nothing(redis_client: redis.Redis) -> None:
    """A request that fails after its check leaves every slot for the next one."""
    limiter = RateLimiter(redis_client)
    rule = Rule.of("1/hour", "calls", "p-1")
    for _ in range(5):
        limiter.check(rule)
    assert limiter.hit(rule)


def test_limits_are_per_subject_and_the_strictest_rule_wins(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    hourly, daily = Rule.of("3/hour", "calls", "p-1"), Rule.of("1/day", "calls-day", "p-1")
    limiter.hit(hourly, daily)
    with pytest.raises(RateLimited) as raised:
        limiter.check(hourly, daily)
    assert raised.value.retry_after > 3600
    limiter.check(Rule.of("3/hour", "calls", "p-2"), Rule.of("1/day", "calls-day", "p-2"))


def test_limits_are_shared_through_redis(redis_client: redis.Redis, redis_url: str) -> None:
    """Two workers (two clients) see the same counts."""
    from store.redis_client import connect

    rule = Rule.of("2/hour", "texts", "+12025550111")
    RateLimiter(redis_client).hit(rule)
    RateLimiter(connect(redis_url)).hit(rule)
    with pytest.raises(RateLimited):
        RateLimiter(redis_client).check(rule)
