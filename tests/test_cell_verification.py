"""Cell verification: a code texted to the user's cell, keyed back in the main app."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from core.errors import CarrierUnavailable
from devservers.redis_server import RedisProcess
from sms.cell_verification import pending_key
from tests.helpers import ADMIN, SUPPORT, put_practice, put_user
from tests.twilio_fake import TwilioRecorder
from tests.voice import Clock

pytestmark = pytest.mark.redis_topologies

CELL = "+12025550111"
NEW_CELL = "+12025550177"
CODEWORD = "maple-otter-47"
ACCOUNT_SID = "AC" + "0" * 32
SEND = "/api/v1/practices/p-1/users/u-1/cell-verification"
CHECK = SEND + "/check"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert put_practice(client, codeword=CODEWORD).status_code == 201
    assert put_user(client, cell_number=CELL).status_code == 201
    return client


def texts(client: FlaskClient) -> list[dict[str, Any]]:
    """What the simulated carrier sent, oldest first."""
    return list(reversed(client.application.extensions["carrier"].recorded("messages")))


def send(client: FlaskClient, path: str = SEND, headers: dict[str, str] = ADMIN) -> Any:
    return client.post(path, headers=headers)


def texted_code(client: FlaskClient) -> str:
    """Ask for a code and read it off the text the cell received."""
    response = send(client)
    assert response.status_code == 202, response.get_json()
    found = re.search(r"\b([0-9]{6})\b", texts(client)[-1]["body"])
    assert found
    return found.group(1)


def check(client: FlaskClient, code: Any, path: str = CHECK) -> Any:
    return client.post(path, json={"code": code}, headers=ADMIN)


def cell_verified(client: FlaskClient) -> bool:
    user = client.get("/api/v1/practices/p-1", headers=ADMIN).get_json()["users"][0]
    return bool(user["cell_number_verified"])


def error_code(response: Any) -> str:
    return str(response.get_json()["error"]["code"])


def a_wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 10**6:06d}"


# Sending the code ----------------------------------------------------------------------


def test_a_six_digit_code_is_texted_to_the_cell_and_expires_in_ten_minutes(
    client: FlaskClient, clock: Clock
) -> None:
    response = send(client)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "sent"
    assert body["to"] == "+1******0111"
    assert body["expires_at"].endswith("+00:00")
    (text,) = texts(client)
    assert text["to"] == CELL
    assert text["from"] == "+15005550006"
    assert text["validity_period"] == 600
    assert re.search(r"verify this cell phone is [0-9]{6}\. It expires in 10 minutes", text["body"])
    assert CODEWORD not in text["body"]
    code = re.search(r"[0-9]{6}", text["body"])
    assert code and code.group(0) not in response.get_data(as_text=True)


def test_the_code_is_stored_only_as_a_hash_with_a_ttl(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    code = texted_code(client)
    key = pending_key("p-1", "u-1")
    stored = redis_client.hgetall(key)
    assert stored["number"] == CELL
    assert code not in " ".join([*stored.keys(), *stored.values()])
    assert 600 < redis_client.ttl(key) <= 900


def test_a_user_without_a_cell_is_409(client: FlaskClient) -> None:
    put_user(client, "p-1", "u-2", name="Stan", role="staff")
    response = send(client, "/api/v1/practices/p-1/users/u-2/cell-verification")
    assert response.status_code == 409
    assert error_code(response) == "no_cell_number"
    assert texts(client) == []


def test_an_opted_out_cell_is_409_and_gets_no_text(app: Flask, client: FlaskClient) -> None:
    app.extensions["directory"].opt_out(CELL)
    response = send(client)
    assert response.status_code == 409
    assert error_code(response) == "recipient_opted_out"
    assert texts(client) == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/practices/p-404/users/u-1/cell-verification",
        "/api/v1/practices/p-1/users/u-404/cell-verification",
    ],
)
def test_an_unknown_practice_or_user_is_404(client: FlaskClient, path: str) -> None:
    assert send(client, path).status_code == 404
    assert check(client, "123456", path + "/check").status_code == 404
    assert texts(client) == []


def test_only_an_admin_token_may_send_or_check(client: FlaskClient) -> None:
    assert send(client, headers=SUPPORT).status_code == 403
    assert send(client, headers={}).status_code == 401
    assert client.post(CHECK, json={"code": "123456"}, headers=SUPPORT).status_code == 403
    assert texts(client) == []


def test_a_fourth_code_within_the_hour_is_429(client: FlaskClient) -> None:
    for _ in range(3):
        assert send(client).status_code == 202
    limited = send(client)
    assert limited.status_code == 429
    assert error_code(limited) == "rate_limited"
    assert 3000 < int(limited.headers["Retry-After"]) <= 3600
    assert limited.get_json()["error"]["limit"] == "cell_verification_texts_per_user"
    assert limited.get_json()["error"]["retry_after"] == int(limited.headers["Retry-After"])
    assert len(texts(client)) == 3
    # The limit is per user: another user's cell is not held up.
    put_user(client, "p-1", "u-2", name="Sam", cell_number=NEW_CELL)
    assert send(client, "/api/v1/practices/p-1/users/u-2/cell-verification").status_code == 202


class FailingCarrier:
    """Twilio refusing every text."""

    def send_sms(self, **_: Any) -> str:
        raise CarrierUnavailable("the phone carrier is unavailable, try again")


def test_twilio_down_is_502_and_leaves_nothing_behind(
    app: Flask, client: FlaskClient, redis_client: redis.Redis
) -> None:
    working = app.extensions["carrier"]
    app.extensions["carrier"] = FailingCarrier()
    for _ in range(4):
        response = send(client)
        assert response.status_code == 502
        assert int(response.headers["Retry-After"]) > 0
    assert redis_client.exists(pending_key("p-1", "u-1")) == 0
    app.extensions["carrier"] = working
    for _ in range(3):
        assert send(client).status_code == 202


def test_redis_down_is_503_and_sends_nothing(
    app: Flask, client: FlaskClient, redis_process: RedisProcess
) -> None:
    sent: list[dict[str, Any]] = []

    class CountingCarrier:
        def send_sms(self, **kwargs: Any) -> str:
            sent.append(kwargs)
            return "SM" + "4" * 32

    app.extensions["carrier"] = CountingCarrier()
    redis_process.stop()
    response = send(client)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert check(client, "123456").status_code == 503
    assert sent == []


# Checking the code ---------------------------------------------------------------------


def test_the_right_code_verifies_the_cell_once(client: FlaskClient) -> None:
    code = texted_code(client)
    assert not cell_verified(client)
    response = check(client, code)
    assert response.status_code == 200
    assert response.get_json() == {"cell_number_verified": True}
    assert cell_verified(client)

    again = check(client, code)
    assert again.status_code == 409
    assert error_code(again) == "no_pending_code"

    events = client.get("/api/v1/practices/p-1/disclosures", headers=ADMIN).get_json()["events"]
    assert [(e["outcome"], e["to"], e["actor"]) for e in events if e["channel"] == "sms"] == [
        ("cell_number_verified", "+1******0111", "mainapp")
    ]


def test_no_code_asked_for_is_409(client: FlaskClient) -> None:
    response = check(client, "123456")
    assert response.status_code == 409
    assert error_code(response) == "no_pending_code"


def test_a_wrong_code_is_422_and_three_burn_the_code(client: FlaskClient) -> None:
    code = texted_code(client)
    first = check(client, a_wrong_code(code))
    assert first.status_code == 422
    assert (error_code(first), first.get_json()["error"]["remaining_attempts"]) == ("wrong_code", 2)
    second = check(client, a_wrong_code(code))
    assert (second.status_code, second.get_json()["error"]["remaining_attempts"]) == (422, 1)
    burned = check(client, a_wrong_code(code))
    assert burned.status_code == 409
    assert error_code(burned) == "code_burned"

    late = check(client, code)
    assert late.status_code == 409
    assert error_code(late) == "code_burned"
    assert not cell_verified(client)

    # A new code starts afresh.
    assert check(client, texted_code(client)).status_code == 200
    assert cell_verified(client)


def test_the_code_expires_after_ten_minutes(client: FlaskClient, clock: Clock) -> None:
    code = texted_code(client)
    clock.advance(10 * 60 - 1)
    assert check(client, a_wrong_code(code)).status_code == 422
    clock.advance(1)
    expired = check(client, code)
    assert expired.status_code == 409
    assert error_code(expired) == "code_expired"
    assert not cell_verified(client)


def test_a_new_code_replaces_the_one_before(client: FlaskClient) -> None:
    first = texted_code(client)
    second = texted_code(client)
    if first != second:
        assert check(client, first).status_code == 422
    assert check(client, second).status_code == 200


def test_a_code_does_not_verify_a_cell_changed_since_it_was_texted(client: FlaskClient) -> None:
    code = texted_code(client)
    put_user(client, cell_number=NEW_CELL)
    response = check(client, code)
    assert response.status_code == 409
    assert error_code(response) == "cell_number_changed"
    assert not cell_verified(client)
    # The code is gone, even if the old number comes back.
    put_user(client, cell_number=CELL)
    assert check(client, code).status_code == 409
    assert not cell_verified(client)


def test_a_code_does_not_verify_a_cell_removed_since_it_was_texted(client: FlaskClient) -> None:
    code = texted_code(client)
    put_user(client, cell_number=None)
    assert error_code(check(client, code)) == "cell_number_changed"
    assert not cell_verified(client)


def test_a_code_works_for_its_own_user_only(client: FlaskClient) -> None:
    put_user(client, "p-1", "u-2", name="Sam", cell_number=CELL)
    code = texted_code(client)
    other = check(client, code, "/api/v1/practices/p-1/users/u-2/cell-verification/check")
    assert other.status_code == 409
    assert check(client, code).status_code == 200
    users = client.get("/api/v1/practices/p-1", headers=ADMIN).get_json()["users"]
    assert [u["cell_number_verified"] for u in users] == [True, False]


@pytest.mark.parametrize("code", ["12345", "1234567", "12a456", 123456, None, ""])
def test_a_malformed_code_is_422_and_uses_up_no_try(client: FlaskClient, code: Any) -> None:
    right = texted_code(client)
    for _ in range(3):
        response = check(client, code)
        assert response.status_code == 422
        assert (error_code(response), response.get_json()["error"]["field"]) == (
            "invalid_input",
            "code",
        )
    assert check(client, right).status_code == 200


def test_a_body_that_is_not_a_json_object_is_422(client: FlaskClient) -> None:
    response = client.post(CHECK, data="123456", headers=ADMIN)
    assert response.status_code == 422


def test_wrong_codes_are_counted_atomically_under_concurrency(app: Flask) -> None:
    client = app.test_client()
    put_practice(client)
    put_user(client, cell_number=CELL)
    code = texted_code(client)
    statuses: list[int] = []
    lock = threading.Lock()

    def guess() -> None:
        response = check(app.test_client(), a_wrong_code(code))
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [409] * 10 + [422] * 2
    assert check(client, code).status_code == 409
    assert not cell_verified(client)


# Against Twilio's contract -------------------------------------------------------------


def test_the_code_goes_by_rest_from_our_number_with_a_short_validity(
    recorded_app: Flask, twilio_recorder: tuple[str, TwilioRecorder]
) -> None:
    client = recorded_app.test_client()
    put_practice(client)
    put_user(client, cell_number=CELL)
    assert send(client).status_code == 202
    (request,) = twilio_recorder[1]
    assert (request.method, request.path) == (
        "POST",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
    )
    assert request.form["To"] == CELL
    assert request.form["From"] == "+15005550006"
    assert int(request.form["ValidityPeriod"]) == 600
    code = re.search(r"\b([0-9]{6})\b", request.form["Body"])
    assert code
    assert check(client, code.group(1)).status_code == 200


def test_a_number_twilio_knows_as_opted_out_is_409_and_kept(
    recorded_app: Flask, twilio_recorder: tuple[str, TwilioRecorder]
) -> None:
    client = recorded_app.test_client()
    put_practice(client)
    put_user(client, cell_number=CELL)
    twilio_recorder[1].queue_error(400, 21610, "Attempt to send to unsubscribed recipient")
    response = send(client)
    assert response.status_code == 409
    assert error_code(response) == "recipient_opted_out"
    assert recorded_app.extensions["directory"].is_opted_out(CELL)
    assert check(client, "123456").status_code == 409
