"""Rate limits on Redis: reserve before acting, give back only what provably was not used."""

from __future__ import annotations

import pytest
import redis
from limits import parse

from store.errors import LimitExceeded
from store.keys import RATE_LIMITS
from store.ratelimit import RateLimiter, Reservation, Rule
from store.redis_client import connect, limits_storage
from tests.redis_trips import count_round_trips

pytestmark = pytest.mark.redis_topologies


def rule(limit: str, subject: str = "p-1", name: str = "calls") -> Rule:
    return Rule(name, parse(limit), f"scope-{name}", subject)


def round_trips(redis_topology: str, batches: int) -> range:
    """Writes to Redis for ``batches`` batches: one each; on a cluster, one per master in it."""
    most = batches * 3 if redis_topology == "cluster" else batches
    return range(batches, most + 1)


@pytest.fixture
def limiter(redis_client: redis.Redis, redis_url: str) -> RateLimiter:
    """A limiter as the app builds it (limits' own storage on the same URL), on a clock
    the test moves (not a whole second, to test exact refunds)."""
    limiter = RateLimiter(redis_client, limits_storage(redis_url, RATE_LIMITS))
    now = [1_800_000_000.123456]
    limiter.clock = lambda: now[0]
    limiter.now = now  # type: ignore[attr-defined]
    return limiter


def advance(limiter: RateLimiter, seconds: float) -> None:
    limiter.now[0] += seconds  # type: ignore[attr-defined]


def test_a_limit_allows_its_count_then_refuses_naming_it_and_the_wait(
    limiter: RateLimiter,
) -> None:
    hourly = rule("3/hour", name="verification_calls_per_practice")
    for _ in range(3):
        assert limiter.reserve(hourly).granted
        advance(limiter, 10)
    with pytest.raises(LimitExceeded) as raised:
        limiter.reserve(hourly)
    assert raised.value.limit == "verification_calls_per_practice"
    assert raised.value.allowed == "3 per 1 hour"
    assert raised.value.retry_after == 3600 - 30


def test_limits_are_per_subject_and_the_one_that_frees_last_is_named(
    limiter: RateLimiter,
) -> None:
    hourly, daily = rule("3/hour", name="hourly"), rule("1/day", name="daily")
    limiter.reserve(hourly, daily)
    with pytest.raises(LimitExceeded) as raised:
        limiter.reserve(hourly, daily)
    assert (raised.value.limit, raised.value.retry_after) == ("daily", 86400)
    limiter.reserve(rule("3/hour", "p-2", "hourly"), rule("1/day", "p-2", "daily"))


def test_a_refused_reservation_gives_back_what_the_other_rules_gave(
    limiter: RateLimiter,
) -> None:
    number, practice = rule("3/hour", "+12025550111", "number"), rule("5/day", "p-1", "practice")
    spent = rule("1/hour", "+12025550111", "spent")
    limiter.reserve(spent)
    for _ in range(4):
        with pytest.raises(LimitExceeded):
            limiter.reserve(number, practice, spent)
    # Four refusals took nothing: all of the number's and the practice's slots are left.
    for _ in range(3):
        limiter.reserve(number, practice)
    with pytest.raises(LimitExceeded) as raised:
        limiter.reserve(number, practice)
    assert raised.value.limit == "number"


def test_a_refund_frees_the_slot_it_took_and_only_that(limiter: RateLimiter) -> None:
    calls = rule("2/hour")
    first = limiter.reserve(calls)
    advance(limiter, 60.5)
    second = limiter.reserve(calls)
    limiter.refund(first)
    third = limiter.reserve(calls)
    with pytest.raises(LimitExceeded) as raised:
        limiter.reserve(calls)
    # The window's oldest entry is now the second reservation's.
    assert raised.value.retry_after == 3600
    assert second.granted and third.granted


def test_a_kept_reservation_is_never_given_back(limiter: RateLimiter) -> None:
    calls = rule("1/hour")
    reservation = limiter.reserve(calls)
    reservation.keep()
    limiter.refund(reservation)
    with pytest.raises(LimitExceeded):
        limiter.reserve(calls)


def test_a_refund_twice_gives_back_one_slot(limiter: RateLimiter) -> None:
    calls = rule("2/hour")
    first = limiter.reserve(calls)
    limiter.reserve(calls)
    limiter.refund(first)
    limiter.refund(first)
    limiter.reserve(calls)
    with pytest.raises(LimitExceeded):
        limiter.reserve(calls)


def test_limits_are_shared_through_redis(redis_url: str) -> None:
    """Two workers (two clients, two limits storages) see the same counts."""

    def worker() -> RateLimiter:
        return RateLimiter(connect(redis_url), limits_storage(redis_url, RATE_LIMITS))

    texts = rule("2/hour", "+12025550111")
    first, second = worker(), worker()
    first.reserve(texts)
    second.reserve(texts)
    with pytest.raises(LimitExceeded):
        first.reserve(texts)
    with pytest.raises(LimitExceeded):
        second.reserve(texts)


def test_a_reservation_is_one_round_trip_and_a_refused_one_two(
    limiter: RateLimiter, redis_topology: str
) -> None:
    number, practice = rule("1/hour", "+12025550111", "number"), rule("5/day", "p-1", "practice")
    limiter.refund(limiter.reserve(number, practice))  # the scripts are loaded from here on
    with count_round_trips() as trips:
        limiter.reserve(number, practice)
    assert trips[0] in round_trips(redis_topology, 1)
    with count_round_trips() as trips, pytest.raises(LimitExceeded):
        limiter.reserve(number, practice)
    assert trips[0] in round_trips(redis_topology, 2)  # the practice's slot went back


def test_a_batch_reserves_looks_and_runs_other_commands_in_one_round_trip(
    limiter: RateLimiter, redis_client: redis.Redis, redis_topology: str
) -> None:
    rules = [rule("3/hour", str(i)) for i in range(3)]
    limiter.reserve(*rules)
    redis_client.set("cw:other", "x")
    batch = limiter.batch()
    windows = [batch.window(r) for r in rules]
    reserved = batch.reserve(*rules)
    other = batch.command(lambda pipe: pipe.getdel("cw:other"))
    with count_round_trips() as trips:
        batch.execute()
    assert trips[0] in round_trips(redis_topology, 1)
    assert other.value == "x"
    assert [w.value.remaining for w in windows] == [2, 2, 2]
    assert reserved.value.granted and reserved.value.taken == rules


def test_a_batch_reloads_its_scripts_after_redis_forgot_them(
    limiter: RateLimiter, redis_client: redis.Redis
) -> None:
    texts = rule("3/hour", "+12025550111")
    redis_client.script_flush()
    batch = limiter.batch()
    spent, window = batch.spend(texts), batch.window(texts)
    batch.execute()
    assert spent.value
    assert window.value.remaining == 2
    redis_client.script_flush()
    limiter.refund(Reservation(limiter.clock(), [texts]))
    redis_client.script_flush()
    assert limiter.reserve(texts).granted
    single = limiter.batch()
    one = single.spend(texts)
    redis_client.script_flush()
    single.execute()
    assert one.value


def test_a_window_frees_its_slot_when_the_clock_passes_it(limiter: RateLimiter) -> None:
    texts = rule("1/hour", "+12025550111")
    limiter.reserve(texts)
    later = limiter.batch()
    window = later.window(texts)
    later.execute()
    assert not window.value.open
    # limits' script reports the oldest entry to 14 digits: a tenth of a millisecond here.
    assert window.value.reset_at == pytest.approx(limiter.clock() + 3600, abs=0.001)
    advance(limiter, 3601)
    assert limiter.reserve(texts).granted
