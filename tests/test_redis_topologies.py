"""Redis Cluster and Sentinel: keys that share a slot, limits on the same URL, a node lost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask
from limits import parse
from limits.storage import RedisClusterStorage, RedisSentinelStorage, RedisStorage
from redis.crc import key_slot

from store import keys
from store.errors import LimitExceeded
from store.ratelimit import RateLimiter, Rule
from store.redis_client import connect, limits_storage
from tests.helpers import SUPPORT
from tests.redis_topologies import RedisClusterProcesses
from tests.voice import hangs_up, said, setup_practice, start_call

STORAGE_CLASSES = {
    "single": RedisStorage,
    "cluster": RedisClusterStorage,
    "sentinel": RedisSentinelStorage,
}


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


def test_every_key_of_a_call_is_in_its_practices_slot() -> None:
    """The scripts that create, step and end a call touch these keys together."""
    for practice_id in ("p-1", "a.b:c-d_e", "x" * 64):
        session_id = keys.new_call_session_id(practice_id)
        call_keys = [
            keys.call_session(session_id),
            keys.live_call(practice_id),
            keys.idempotency(practice_id, "helpdesk", "k-1"),
        ]
        assert len({slot(key) for key in call_keys}) == 1, call_keys
        assert len(session_id) == 34 and session_id.startswith("VC")


def test_practices_spread_over_every_master() -> None:
    """A tag per practice, not one for all: three masters each get about a third."""
    thirds = Counter(slot(keys.live_call(f"practice-{n}")) * 3 // 16384 for n in range(3000))
    assert set(thirds) == {0, 1, 2}
    assert all(800 <= count <= 1200 for count in thirds.values()), thirds


def test_a_made_up_call_id_names_no_session_and_breaks_nothing() -> None:
    for made_up in ("", "VC", "VC{}", "nope", "VC}{" + "0" * 30):
        assert keys.call_session(made_up).endswith(":call:" + made_up)


@pytest.mark.parametrize("redis_topology", list(STORAGE_CLASSES))
def test_limits_keeps_its_counts_on_the_same_url_with_its_own_storage(
    redis_topology: str, redis_url: str
) -> None:
    """limits 5.8 on redis-py 8.1: its single, cluster and Sentinel storages all count."""
    storage = limits_storage(redis_url, keys.RATE_LIMITS)
    assert type(storage) is STORAGE_CLASSES[redis_topology]
    assert storage.check()
    limiter = RateLimiter(connect(redis_url), storage)
    rule = Rule("texts", parse("2/hour"), "texts", "+12025550111")
    assert limiter.reserve(rule).granted and limiter.reserve(rule).granted
    with pytest.raises(LimitExceeded):
        limiter.reserve(rule)


@pytest.fixture
def own_cluster() -> Iterator[RedisClusterProcesses]:
    """A cluster of this test's own: it loses a master."""
    with RedisClusterProcesses() as cluster:
        yield cluster


def test_a_lost_cluster_master_is_503_for_the_api_and_an_apology_on_the_phone(
    make_app: Callable[..., Flask],
    own_cluster: RedisClusterProcesses,
) -> None:
    app = make_app(REDIS_URL=own_cluster.url, QUEUE_REDIS_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    setup_practice(client)
    body, call = start_call(client)
    holder = own_cluster.client().get_node_from_key(keys.call_session(body["id"]))
    [node] = [n for n in own_cluster.nodes if n.port == holder.port]
    node.stop(kill=True)

    asked = client.get(f"/api/v1/verification-calls/{body['id']}", headers=SUPPORT)
    assert asked.status_code == 503
    assert asked.get_json()["error"]["code"] == "unavailable"
    assert int(asked.headers["Retry-After"]) > 0

    heard = call.answer()
    assert hangs_up(heard) and "sorry" in said(heard).lower()
    assert isinstance(app.extensions["redis"], redis.cluster.RedisCluster)


def test_a_live_call_keeps_under_two_kilobytes_in_redis(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    """MEMORY USAGE of everything one call keeps, with an Idempotency-Key (its largest)."""
    client = make_app().test_client()
    setup_practice(client)
    asked = client.post(
        "/api/v1/verification-calls",
        json={"practice_id": "p-1", "requested_by": "Dr. Ana Ruiz (owner)"},
        headers={**SUPPORT, "Idempotency-Key": "ticket-00012345-call"},
    )
    assert asked.status_code == 201
    call_keys = [
        keys.call_session(asked.get_json()["id"]),
        keys.live_call("p-1"),
        keys.idempotency("p-1", "helpdesk", "ticket-00012345-call"),
        keys.idempotency_owner("helpdesk", "ticket-00012345-call"),
    ]
    sizes = [redis_client.memory_usage(key, samples=0) for key in call_keys]
    assert all(sizes), dict(zip(call_keys, sizes, strict=True))
    assert sum(sizes) < 2048, dict(zip(call_keys, sizes, strict=True))
