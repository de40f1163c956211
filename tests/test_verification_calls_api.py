"""The support API for verification calls: asking, idempotency, one live call, rate limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from core.carrier import PlacedCall
from core.errors import CarrierUnavailable
from core.rate_limits import verification_call_rules
from devservers.redis_server import RedisProcess
from store import keys
from tests.helpers import ADMIN, SUPPORT, SUPPORT_TOKEN
from tests.redis_topologies import all_keys
from tests.voice import (
    OFFICE,
    Clock,
    last_placed_call,
    request_call,
    setup_practice,
)

pytestmark = pytest.mark.redis_topologies


@pytest.fixture
def practice(client: FlaskClient) -> None:
    setup_practice(client)


def placed_calls(client: FlaskClient) -> list[dict[str, Any]]:
    return list(client.application.extensions["carrier"].recorded("calls"))


def end_last_call(client: FlaskClient) -> None:
    last_placed_call(client).status("completed")


class FailingCarrier:
    """The phone network refusing every call (Twilio down)."""

    def __init__(self) -> None:
        self.attempts = 0

    def place_call(self, **_: Any) -> PlacedCall:
        self.attempts += 1
        raise CarrierUnavailable("the phone carrier is unavailable, try again")


# Asking for a call ---------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_support_gets_a_challenge_code_and_the_office_is_called(client: FlaskClient) -> None:
    response = request_call(client)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "status", "challenge_code", "expires_at", "to"}
    assert re.fullmatch(r"\d{6}", body["challenge_code"])
    assert body["status"] == "queued"
    assert body["to"] == "+1******0100"
    assert response.headers["Location"] == f"/api/v1/verification-calls/{body['id']}"

    [placed] = placed_calls(client)
    assert placed["to"] == OFFICE
    assert placed["machine_detection"] is True
    assert placed["url"].startswith("https://codeword.example.com/ivr/verification/answer?t=")
    assert placed["status_callback"].startswith(
        "https://codeword.example.com/ivr/verification/status?t="
    )
    assert body["challenge_code"] not in placed["url"] + placed["status_callback"]


@pytest.mark.usefixtures("practice")
def test_the_call_can_be_followed_by_id(client: FlaskClient) -> None:
    body = request_call(client).get_json()
    response = client.get(f"/api/v1/verification-calls/{body['id']}", headers=SUPPORT)
    assert response.status_code == 200
    call = response.get_json()
    assert call["id"] == body["id"]
    assert call["status"] == "queued"
    assert call["practice_id"] == "p-1"
    assert call["to"] == "+1******0100"
    assert call["requested_by"] == "Dr. Ana Ruiz (owner)"
    assert call["actor"] == "helpdesk"
    assert call["call_sid"] == placed_calls(client)[0]["sid"]
    assert call["expires_at"] == body["expires_at"]
    assert "challenge_code" not in call


def test_an_unknown_call_is_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/verification-calls/VC" + "0" * 32, headers=SUPPORT)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("practice")
def test_only_a_support_token_may_ask(client: FlaskClient) -> None:
    body = {"practice_id": "p-1", "requested_by": "Ana"}
    assert client.post("/api/v1/verification-calls", json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-a-token"}
    assert client.post("/api/v1/verification-calls", json=body, headers=wrong).status_code == 401
    assert client.post("/api/v1/verification-calls", json=body, headers=ADMIN).status_code == 403
    assert client.get("/api/v1/verification-calls/VC1", headers=ADMIN).status_code == 403
    assert placed_calls(client) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requested_by": "Ana"}, "practice_id"),
        ({"practice_id": "p-1"}, "requested_by"),
        ({"practice_id": "p 1!", "requested_by": "Ana"}, "practice_id"),
        ({"practice_id": "p-1", "requested_by": ""}, "requested_by"),
        ({"practice_id": "p-1", "requested_by": "x" * 201}, "requested_by"),
        ({"practice_id": 7, "requested_by": "Ana"}, "practice_id"),
    ],
)
@pytest.mark.usefixtures("practice")
def test_bad_input_is_422_naming_the_field(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/verification-calls", json=body, headers=SUPPORT)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    assert placed_calls(client) == []


@pytest.mark.usefixtures("practice")
def test_a_body_that_is_not_a_json_object_is_422(client: FlaskClient) -> None:
    response = client.post("/api/v1/verification-calls", data="practice_id=p-1", headers=SUPPORT)
    assert response.status_code == 422


def test_an_unknown_practice_is_404(client: FlaskClient) -> None:
    response = request_call(client, "nobody")
    assert response.status_code == 404
    assert placed_calls(client) == []


def test_an_unverified_office_number_is_409(client: FlaskClient) -> None:
    setup_practice(client, office_number_verified=False)
    response = request_call(client)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "office_number_unverified"
    assert placed_calls(client) == []


def test_a_practice_without_a_codeword_is_409(client: FlaskClient) -> None:
    client.put(
        "/api/v1/practices/p-1",
        json={"name": "Bright Smiles", "office_number": OFFICE, "office_number_verified": True},
        headers=ADMIN,
    )
    response = request_call(client)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "no_codeword"


# Idempotency -------------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_the_same_idempotency_key_returns_the_same_call_and_places_no_second(
    client: FlaskClient,
) -> None:
    headers = {"Idempotency-Key": "ticket-4711"}
    first = request_call(client, headers=headers)
    second = request_call(client, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(placed_calls(client)) == 1


@pytest.mark.usefixtures("practice")
def test_an_idempotent_repeat_is_not_rate_limited(client: FlaskClient) -> None:
    headers = {"Idempotency-Key": "ticket-4711"}
    first = request_call(client, headers=headers).get_json()
    for _ in range(2):
        end_last_call(client)
        assert request_call(client).status_code == 201
    end_last_call(client)
    assert request_call(client).status_code == 429
    again = request_call(client, headers=headers)
    assert again.status_code == 201
    assert again.get_json()["id"] == first["id"]


@pytest.mark.usefixtures("practice")
def test_a_repeat_racing_the_first_request_past_its_look_up_is_no_second_request(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeat looked before the first request stored its key, then found the limit
    spent by that very request: it is answered as a repeat, not refused as a new call."""
    from ivr import session

    headers = {"Idempotency-Key": "ticket-4711"}
    for _ in range(2):
        assert request_call(client).status_code == 201
        end_last_call(client)
    first = request_call(client, headers=headers)
    assert first.status_code == 201
    looked_up = session.idempotent_session_id
    looks: list[str | None] = []

    def too_early_the_first_time(*args: Any) -> str | None:
        found = looked_up(*args)
        looks.append(found)
        return None if len(looks) == 1 else found

    monkeypatch.setattr(session, "idempotent_session_id", too_early_the_first_time)
    again = request_call(client, headers=headers)
    assert (again.status_code, again.get_json()["id"]) == (201, first.get_json()["id"])
    assert looks == [first.get_json()["id"]] * 2
    assert request_call(client).status_code == 429


@pytest.mark.usefixtures("practice")
def test_an_idempotency_key_belongs_to_one_support_token(make_app: Callable[..., Flask]) -> None:
    app = make_app(SUPPORT_TOKENS=f"helpdesk={SUPPORT_TOKEN},console=console-token-0000000001")
    client = app.test_client()
    setup_practice(client)
    headers = {"Idempotency-Key": "same-key"}
    first = request_call(client, headers=headers)
    assert first.status_code == 201
    other = client.post(
        "/api/v1/verification-calls",
        json={"practice_id": "p-1", "requested_by": "Ana"},
        headers={"Authorization": "Bearer console-token-0000000001", **headers},
    )
    # Not a repeat: a second request while the first call is live.
    assert other.status_code == 409
    assert other.get_json()["error"]["live_call_id"] == first.get_json()["id"]


@pytest.mark.usefixtures("practice")
def test_an_idempotency_key_reused_for_another_practice_is_422(client: FlaskClient) -> None:
    setup_practice(client, "p-2")
    headers = {"Idempotency-Key": "k"}
    assert request_call(client, headers=headers).status_code == 201
    reused = request_call(client, "p-2", headers=headers)
    assert reused.status_code == 422
    assert reused.get_json()["error"]["code"] == "idempotency_key_reused"
    assert len(placed_calls(client)) == 1


@pytest.mark.usefixtures("practice")
def test_an_idempotency_key_is_remembered_for_24_hours(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    request_call(client, headers={"Idempotency-Key": "k"})
    ttl = redis_client.ttl(keys.idempotency("p-1", "helpdesk", "k"))
    owner_ttl = redis_client.ttl(keys.idempotency_owner("helpdesk", "k"))
    assert 24 * 3600 - 5 <= ttl <= 24 * 3600
    assert 24 * 3600 - 5 <= owner_ttl <= 24 * 3600


@pytest.mark.usefixtures("practice")
def test_an_idempotent_repeat_after_the_code_was_used_carries_no_code(
    client: FlaskClient,
) -> None:
    headers = {"Idempotency-Key": "k"}
    created = request_call(client, headers=headers).get_json()
    call = last_placed_call(client)
    call.answer()
    call.press(created["challenge_code"])
    again = request_call(client, headers=headers).get_json()
    assert again["id"] == created["id"]
    assert again["status"] == "disclosed"
    assert again["challenge_code"] is None


@pytest.mark.parametrize("value", ["", " ", "x" * 256, "tab\there"])
@pytest.mark.usefixtures("practice")
def test_a_malformed_idempotency_key_is_422(client: FlaskClient, value: str) -> None:
    response = request_call(client, headers={"Idempotency-Key": value})
    assert response.status_code == 422
    assert placed_calls(client) == []


# One live call per practice ------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_a_second_call_while_one_is_live_is_409_naming_it(client: FlaskClient) -> None:
    first = request_call(client).get_json()
    second = request_call(client)
    assert second.status_code == 409
    error = second.get_json()["error"]
    assert error["code"] == "call_in_progress"
    assert error["live_call_id"] == first["id"]
    assert len(placed_calls(client)) == 1


@pytest.mark.usefixtures("practice")
def test_another_practice_may_be_called_meanwhile(client: FlaskClient) -> None:
    setup_practice(client, "p-2", office_number="(202) 555-0177")
    assert request_call(client).status_code == 201
    assert request_call(client, "p-2").status_code == 201


@pytest.mark.usefixtures("practice")
def test_an_expired_call_no_longer_holds_the_practice(app: Flask, client: FlaskClient) -> None:
    clock = Clock()
    app.config["CLOCK"] = clock
    first = request_call(client).get_json()
    clock.advance(10 * 60)
    second = request_call(client)
    assert second.status_code == 201
    status = client.get(f"/api/v1/verification-calls/{first['id']}", headers=SUPPORT)
    assert status.get_json()["status"] == "expired"


# Rate limits -------------------------------------------------------------------------


def test_the_default_limits_are_3_an_hour_and_10_a_day_per_practice_30_per_token(
    app: Flask,
) -> None:
    with app.app_context():
        rules = verification_call_rules("p-1", "helpdesk")
    assert [(str(r.limit), r.subject) for r in rules] == [
        ("3 per 1 hour", "p-1"),
        ("10 per 1 day", "p-1"),
        ("30 per 1 hour", "helpdesk"),
    ]


@pytest.mark.usefixtures("practice")
def test_a_fourth_call_to_a_practice_within_the_hour_is_429(client: FlaskClient) -> None:
    for _ in range(3):
        assert request_call(client).status_code == 201
        end_last_call(client)
    limited = request_call(client)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 3000 < int(limited.headers["Retry-After"]) <= 3600
    assert len(placed_calls(client)) == 3
    # The body says it too, for a support agent who never sees headers.
    error = limited.get_json()["error"]
    assert error["limit"] == "verification_calls_per_practice"
    assert error["retry_after"] == int(limited.headers["Retry-After"])
    assert str(error["retry_after"]) in error["message"]


def test_the_daily_limit_per_practice_applies_too(make_app: Callable[..., Flask]) -> None:
    client = make_app(VERIFICATION_CALLS_PER_PRACTICE="5/hour;2/day").test_client()
    setup_practice(client)
    for _ in range(2):
        assert request_call(client).status_code == 201
        end_last_call(client)
    limited = request_call(client)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 3600


def test_a_support_token_may_ask_for_30_calls_an_hour(client: FlaskClient) -> None:
    for n in range(31):
        setup_practice(client, f"p-{n}")
    for n in range(30):
        assert request_call(client, f"p-{n}").status_code == 201
    limited = request_call(client, "p-30")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert len(placed_calls(client)) == 30


@pytest.mark.usefixtures("practice")
def test_refused_requests_spend_no_rate_limit_slot(client: FlaskClient) -> None:
    request_call(client)
    for _ in range(5):
        assert request_call(client).status_code == 409
    end_last_call(client)
    for _ in range(2):
        assert request_call(client).status_code == 201
        end_last_call(client)


# Failures ----------------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_a_carrier_failure_is_502_and_leaves_nothing_behind(
    app: Flask, client: FlaskClient, redis_client: redis.Redis
) -> None:
    working = app.extensions["carrier"]
    failing = FailingCarrier()
    app.extensions["carrier"] = failing
    for _ in range(4):
        response = request_call(client, headers={"Idempotency-Key": "k"})
        assert response.status_code == 502
        assert response.get_json()["error"]["code"] == "carrier_unavailable"
        assert int(response.headers["Retry-After"]) > 0
    assert failing.attempts == 4
    assert all_keys(redis_client, keys.ALL_CALL_SESSIONS) == []
    assert all_keys(redis_client, keys.ALL_LIVE_CALLS) == []
    assert all_keys(redis_client, keys.every_idempotency_key()) == []

    # No slot was spent and the key is free: three calls still go through this hour.
    app.extensions["carrier"] = working
    assert request_call(client, headers={"Idempotency-Key": "k"}).status_code == 201
    for _ in range(2):
        end_last_call(client)
        assert request_call(client).status_code == 201


@pytest.mark.usefixtures("practice")
def test_redis_down_is_503_and_places_no_call(
    app: Flask, client: FlaskClient, redis_process: RedisProcess
) -> None:
    placed: list[dict[str, Any]] = []

    class CountingCarrier:
        def place_call(self, **kwargs: Any) -> PlacedCall:
            placed.append(kwargs)
            return PlacedCall(sid="CA" + "4" * 32, status="queued")

    app.extensions["carrier"] = CountingCarrier()
    redis_process.stop()
    response = request_call(client, headers={"Idempotency-Key": "k"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert placed == []
    status = client.get("/api/v1/verification-calls/VC" + "0" * 32, headers=SUPPORT)
    assert status.status_code == 503
