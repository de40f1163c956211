"""One-time state survives a failover: a right code or a miss counts only once a replica holds it.

``REDIS_REPLICA_ACKS`` replicas must acknowledge (WAIT) the write of a right code
or a wrong one before the call goes on. Against a server with no replica nothing
acknowledges, so every such step fails closed: an apology, nothing read out.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from store import keys
from tests.helpers import ADMIN, SUPPORT, put_user
from tests.redis_topologies import SentinelProcesses
from tests.voice import CODEWORD, CODEWORD_SPOKEN_EN, hangs_up, said, setup_practice, spellings
from tests.voice import start_call as start_voice_call

APOLOGY = "we can't help with that right now"


@pytest.fixture
def unreplicated(make_app: Callable[..., Flask]) -> FlaskClient:
    """The app asking one replica to acknowledge, on a Redis that has none."""
    client = make_app(REDIS_REPLICA_ACKS="1").test_client()
    setup_practice(client)
    return client


def a_wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 10**6:06d}"


def call_status(client: FlaskClient, call_id: str) -> str:
    return str(
        client.get(f"/api/v1/verification-calls/{call_id}", headers=SUPPORT).get_json()["status"]
    )


def test_a_right_code_no_replica_holds_reads_nothing_and_the_call_fails(
    unreplicated: FlaskClient,
) -> None:
    body, call = start_voice_call(unreplicated)
    call.answer()
    keys_url = call.keys_url
    heard = call.press(body["challenge_code"])
    assert spellings(heard) == [] and hangs_up(heard)
    assert APOLOGY in said(heard)
    assert all(CODEWORD not in document for document in call.documents)
    assert call_status(unreplicated, body["id"]) == "failed"
    # The code was spent all the same: keyed in again, it reads nothing.
    again = call.post(keys_url, Digits=body["challenge_code"])
    assert spellings(again) == []


def test_a_miss_no_replica_holds_ends_the_call(
    unreplicated: FlaskClient, redis_client: redis.Redis
) -> None:
    """No further try is offered on a miss a failover could forget."""
    body, call = start_voice_call(unreplicated)
    call.answer()
    heard = call.press(a_wrong_code(body["challenge_code"]))
    assert heard.find("Gather") is None and hangs_up(heard)
    assert APOLOGY in said(heard)
    assert redis_client.hget(keys.call_session(body["id"]), "wrong_codes") == "1"


def test_silence_needs_no_replica(unreplicated: FlaskClient) -> None:
    """Only right codes and misses wait for a replica; a silent line is asked again."""
    _, call = start_voice_call(unreplicated)
    call.answer()
    assert call.stay_silent().find("Gather") is not None


def test_a_cell_code_no_replica_holds_is_503(unreplicated: FlaskClient) -> None:
    assert put_user(unreplicated, cell_number="+12025550111").status_code == 201
    url = "/api/v1/practices/p-1/users/u-1/cell-verification"
    assert unreplicated.post(url, headers=ADMIN).status_code == 202
    checked = unreplicated.post(f"{url}/check", json={"code": "000000"}, headers=ADMIN)
    assert checked.status_code == 503
    assert checked.headers["Retry-After"]


@pytest.mark.parametrize("redis_topology", ["sentinel"])
def test_through_sentinel_a_right_code_waits_for_the_replica_then_reads(
    client: FlaskClient, redis_sentinel: SentinelProcesses
) -> None:
    """Sentinel's default: one replica acknowledges the disclosed mark before it is read."""
    primary = redis_sentinel.client()
    waits_before = primary.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
    setup_practice(client)
    body, call = start_voice_call(client)
    call.answer()
    heard = call.press(body["challenge_code"])
    assert spellings(heard) == [CODEWORD_SPOKEN_EN, CODEWORD_SPOKEN_EN]
    waits = primary.info("commandstats")["cmdstat_wait"]["calls"]
    assert waits > waits_before
