"""Rate limits on Redis: check before acting, spend only on success, say when to retry."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from core.errors import RateLimited
from store.keys import RATE_LIMITS
from store.ratelimit import Pending, RateLimiter, Rule, Window, refuse_if_exhausted
from store.redis_client import connect, limits_storage
from tests.redis_trips import count_round_trips

pytestmark = pytest.mark.redis_topologies


@pytest.fixture
def limiter(redis_client: redis.Redis, redis_url: str) -> RateLimiter:
    """The limiter as the app builds it: limits' own storage on the same URL."""
    return RateLimiter(redis_client, limits_storage(redis_url, RATE_LIMITS))


def test_a_limit_allows_its_count_then_refuses_with_retry_after(limiter: RateLimiter) -> None:
    rule = Rule.of("3/hour", "calls", "p-1")
    for _ in range(3):
        limiter.check(rule)
        assert limiter.hit(rule)
    with pytest.raises(RateLimited) as raised:
        limiter.check(rule)
    assert 3500 <= raised.value.retry_after <= 3600
    assert raised.value.status == 429


def test_checking_spends_nothing(limiter: RateLimiter) -> None:
    """A request that fails after its check leaves every slot for the next one."""
    rule = Rule.of("1/hour", "calls", "p-1")
    for _ in range(5):
        limiter.check(rule)
    assert limiter.hit(rule)


def test_limits_are_per_subject_and_the_strictest_rule_wins(limiter: RateLimiter) -> None:
    hourly, daily = Rule.of("3/hour", "calls", "p-1"), Rule.of("1/day", "calls-day", "p-1")
    limiter.hit(hourly, daily)
    with pytest.raises(RateLimited) as raised:
        limiter.check(hourly, daily)
    assert raised.value.retry_after > 3600
    limiter.check(Rule.of("3/hour", "calls", "p-2"), Rule.of("1/day", "calls-day", "p-2"))


def test_limits_are_shared_through_redis(limiter: RateLimiter, redis_url: str) -> None:
    """Two workers (two clients) see the same counts."""
    rule = Rule.of("2/hour", "texts", "+12025550111")
    other = RateLimiter(connect(redis_url), limits_storage(redis_url, RATE_LIMITS))
    limiter.hit(rule)
    other.hit(rule)
    with pytest.raises(RateLimited):
        limiter.check(rule)
    with pytest.raises(RateLimited):
        other.check(rule)


def test_a_batch_sees_and_spends_the_same_windows_as_check_and_hit(limiter: RateLimiter) -> None:
    """Batched look-ups and spends share their counts with limits' own calls."""
    rule = Rule.of("2/hour", "texts", "+12025550111")
    limiter.hit(rule)
    batch = limiter.batch()
    window = batch.window(rule)
    spent = batch.spend(rule)
    batch.execute()
    assert window.value.remaining == 1
    assert spent.value
    with pytest.raises(RateLimited):
        limiter.check(rule)
    again = limiter.batch()
    refused = again.spend(rule)
    after = again.window(rule)
    again.execute()
    assert not refused.value
    assert after.value.remaining == 0
    assert not after.value.open


def test_a_batch_is_one_round_trip(
    limiter: RateLimiter, redis_client: redis.Redis, redis_topology: str
) -> None:
    """One write to the server; on a cluster, one to each master holding one of its keys."""
    rules = [Rule.of("3/hour", "texts", str(i)) for i in range(3)]

    def batch_of_everything() -> Pending[Any]:
        redis_client.set("cw:other", "x")
        batch = limiter.batch()
        for rule in rules:
            batch.window(rule)
            batch.spend(rule)
        other = batch.command(lambda pipe: pipe.getdel("cw:other"))
        with count_round_trips() as trips:
            batch.execute()
        counted.append(trips[0])
        return other

    counted: list[int] = []
    batch_of_everything()  # the scripts are loaded, the connections open, from here on
    other = batch_of_everything()
    if redis_topology == "cluster":
        assert 1 <= counted[-1] <= 3
    else:
        assert counted[-1] == 1
    assert other.value == "x"


def test_a_batch_reloads_its_scripts_after_redis_forgot_them(
    limiter: RateLimiter, redis_client: redis.Redis
) -> None:
    rule = Rule.of("3/hour", "texts", "+12025550111")
    redis_client.script_flush()
    batch = limiter.batch()
    spent, window = batch.spend(rule), batch.window(rule)
    batch.execute()
    assert spent.value
    assert window.value.remaining == 2


def test_a_batch_of_one_spend_is_one_round_trip_and_survives_a_script_flush(
    limiter: RateLimiter, redis_client: redis.Redis
) -> None:
    rule = Rule.of("3/hour", "texts", "+12025550111")
    warm_up = limiter.batch()
    warm_up.window(rule)
    warm_up.execute()  # the scripts are loaded, the connection open, from here on
    limiter.hit(rule)
    batch = limiter.batch()
    spent = batch.spend(rule)
    with count_round_trips() as trips:
        batch.execute()
    assert trips == [1]
    assert spent.value
    redis_client.script_flush()
    again = limiter.batch()
    second = again.spend(rule)
    again.execute()
    assert second.value
    last = limiter.batch()
    refused = last.spend(rule)
    last.execute()
    assert not refused.value


def test_a_batch_window_frees_its_slot_when_the_clock_passes_the_window(
    limiter: RateLimiter,
) -> None:
    now = [1_000_000.0]
    limiter.clock = lambda: now[0]
    rule = Rule.of("1/hour", "texts", "+12025550111")
    batch = limiter.batch()
    batch.spend(rule)
    batch.execute()
    later = limiter.batch()
    window = later.window(rule)
    later.execute()
    assert not window.value.open
    assert window.value.reset_at == now[0] + 3600
    now[0] += 3601
    after = limiter.batch()
    window = after.window(rule)
    after.execute()
    assert window.value.open


def test_refusing_an_exhausted_window_says_when_to_retry() -> None:
    hourly, daily = Rule.of("1/hour", "a", "x"), Rule.of("1/day", "b", "x")
    windows = [Window(hourly, 0, 1000.0 + 600), Window(daily, 0, 1000.0 + 7200)]
    with pytest.raises(RateLimited) as raised:
        refuse_if_exhausted(windows, 1000.0)
    assert raised.value.retry_after == 7200
    refuse_if_exhausted([Window(hourly, 1, 1000.0)], 1000.0)
