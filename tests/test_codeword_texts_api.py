"""POST /api/v1/codeword-texts: support texts the codeword to an admin's verified cell."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core import queue
from tests.helpers import ADMIN, PUBLIC_BASE_URL, SUPPORT, put_user
from tests.sms_helpers import ADMIN_CELL, CODEWORD, STAFF_CELL, seed, text
from tests.twilio_fake import RecordedRequest, TwilioRecorder
from tests.voice import Clock

pytestmark = pytest.mark.redis_topologies

ACCOUNT_SID = "AC" + "0" * 32
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
REQUEST = {"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana at Bright Smiles"}

Recorder = tuple[str, TwilioRecorder]


def ask(client: FlaskClient, body: Any = None, headers: dict[str, str] = SUPPORT) -> Any:
    return client.post(
        "/api/v1/codeword-texts", json=REQUEST if body is None else body, headers=headers
    )


def codeword_sent(sent: TwilioRecorder) -> list[RecordedRequest]:
    """The codeword texts among the requests Twilio got: those with a status callback (the
    other admins' disclosure notices have none)."""
    return [r for r in sent if "StatusCallback" in r.form]


def sms_events(client: FlaskClient, practice_id: str = "p-1") -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/practices/{practice_id}/disclosures", headers=SUPPORT)
    return [e for e in response.get_json()["events"] if e["channel"] == "sms"]


@pytest.fixture
def client(recorded_app: Flask) -> FlaskClient:
    client = recorded_app.test_client()
    seed(client)
    return client


@pytest.fixture
def sent(twilio_recorder: Recorder, client: FlaskClient) -> TwilioRecorder:
    """What reached Twilio's API, after the directory was seeded."""
    return twilio_recorder[1]


# Against Twilio's contract (Prism mock) ---------------------------------------------------


def test_twilio_accepts_the_codeword_text_and_we_answer_202(twilio_app: Flask) -> None:
    client = twilio_app.test_client()
    seed(client)
    response = ask(client)
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"id", "status", "to"}
    assert body["id"].startswith("CT")
    assert body["status"] == "queued"
    assert body["to"] == "+1******0111"
    assert CODEWORD.encode() not in response.data


# What we send (Prism proxy in front of a recording fake) ---------------------------------


def test_the_codeword_goes_by_rest_from_our_number_expiring_soon_with_a_callback(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    response = ask(client)
    assert response.status_code == 202
    (request,) = codeword_sent(sent)
    assert (request.method, request.path) == ("POST", MESSAGES)
    assert request.form["To"] == ADMIN_CELL
    assert request.form["From"] == "+15005550006"
    assert CODEWORD in request.form["Body"]
    assert "support" in request.form["Body"]
    assert 0 < int(request.form["ValidityPeriod"]) <= 900
    text_id = response.get_json()["id"]
    assert request.form["StatusCallback"] == (
        f"{PUBLIC_BASE_URL}/sms/status?practice_id=p-1&text={text_id}"
    )


def test_a_support_text_is_audited_with_the_token_name_and_requester(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    assert ask(client).status_code == 202
    (event,) = sms_events(client)
    assert event["actor"] == "helpdesk"
    assert event["requested_by"] == "Dana at Bright Smiles"
    assert event["to"] == "+1******0111"
    assert event["outcome"] == "sent"
    assert len(codeword_sent(sent)) == 1
    assert event["reference"] and event["reference"].startswith("SM")


@pytest.mark.parametrize(
    ("user", "code"),
    [
        ({"user_id": "u-3"}, "not_an_admin"),  # staff, verified cell
        ({"user_id": "u-4"}, "cell_not_verified"),  # admin, unverified cell
    ],
)
def test_only_an_admin_with_a_verified_cell_gets_it(
    client: FlaskClient, sent: TwilioRecorder, user: dict[str, str], code: str
) -> None:
    response = ask(client, {**REQUEST, **user})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == code
    assert list(sent) == []


def test_an_admin_without_a_cell_is_a_conflict(client: FlaskClient, sent: TwilioRecorder) -> None:
    put_user(client, "p-1", "u-6", name="Nora", role="admin")
    response = ask(client, {**REQUEST, "user_id": "u-6"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "cell_not_verified"
    assert list(sent) == []


def test_a_practice_without_a_codeword_is_a_conflict(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    client.put(
        "/api/v1/practices/p-3",
        json={"name": "New Practice", "office_number": "(202) 555-0102"},
        headers=ADMIN,
    )
    put_user(client, "p-3", "u-1", cell_number="(202) 555-0177", cell_number_verified=True)
    response = ask(client, {**REQUEST, "practice_id": "p-3"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "no_codeword"
    assert list(sent) == []


@pytest.mark.parametrize(
    "body", [{**REQUEST, "practice_id": "p-9"}, {**REQUEST, "user_id": "u-99"}]
)
def test_an_unknown_practice_or_user_is_404(
    client: FlaskClient, sent: TwilioRecorder, body: dict[str, str]
) -> None:
    assert ask(client, body).status_code == 404
    assert list(sent) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u-1", "requested_by": "Dana"}, "practice_id"),
        ({"practice_id": "p-1", "requested_by": "Dana"}, "user_id"),
        ({"practice_id": "p-1", "user_id": "u-1"}, "requested_by"),
        ({**REQUEST, "practice_id": "../p-1"}, "practice_id"),
        ({**REQUEST, "user_id": 7}, "user_id"),
        ({**REQUEST, "requested_by": "   "}, "requested_by"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: FlaskClient, sent: TwilioRecorder, body: dict[str, Any], field: str
) -> None:
    response = ask(client, body)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field
    assert list(sent) == []


def test_a_body_that_is_not_a_json_object_is_422(client: FlaskClient) -> None:
    assert ask(client, ["p-1"]).status_code == 422


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), ({"Authorization": "Bearer wrong"}, 401), (ADMIN, 403)]
)
def test_only_a_support_token_may_ask(
    client: FlaskClient, sent: TwilioRecorder, headers: dict[str, str], status: int
) -> None:
    assert ask(client, headers=headers).status_code == status
    assert list(sent) == []


# Opt-out ----------------------------------------------------------------------------


def test_an_opted_out_admin_is_a_conflict_and_twilio_is_not_called(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    text(client, "STOP")
    response = ask(client)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "recipient_opted_out"
    assert list(sent) == []


def test_twilio_reporting_the_recipient_opted_out_is_kept_and_the_next_request_is_409(
    recorded_app: Flask, client: FlaskClient, sent: TwilioRecorder
) -> None:
    sent.queue_error(400, 21610, "Attempt to send to unsubscribed recipient")
    assert ask(client).status_code == 202  # the worker learns it, not the request
    assert recorded_app.extensions["directory"].is_opted_out(ADMIN_CELL)
    # No disclosure: only the opt-out Twilio reported, kept in the trail.
    assert [(e["outcome"], e["actor"]) for e in sms_events(client)] == [("opted_out", "twilio")]
    response = ask(client)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "recipient_opted_out"
    assert len(sent) == 1


def test_twilio_failing_never_fails_the_request_and_the_worker_tries_again(
    recorded_app: Flask, client: FlaskClient, sent: TwilioRecorder
) -> None:
    clock = recorded_app.config["CLOCK"] = Clock()
    sent.queue_error(500, 20500, "Internal Server Error")
    response = ask(client)
    assert response.status_code == 202
    assert CODEWORD.encode() not in response.data
    assert sms_events(client) == []
    clock.advance(5)
    with recorded_app.app_context():
        queue.sweep()  # the retry is due: enqueued again, and here run at once
    assert [e["outcome"] for e in sms_events(client)] == ["sent"]
    assert len(codeword_sent(sent)) == 2


# Limits -----------------------------------------------------------------------------


def test_three_codeword_texts_per_number_an_hour_then_429_with_retry_after(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    for _ in range(3):
        assert ask(client).status_code == 202
    response = ask(client)
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert 3500 <= int(response.headers["Retry-After"]) <= 3600
    assert len(codeword_sent(sent)) == 3
    error = response.get_json()["error"]
    assert error["limit"] == "sms_codeword_texts_per_number"
    assert error["retry_after"] == int(response.headers["Retry-After"])


def test_keyword_and_support_texts_share_the_per_number_limit(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    text(client, "CODEWORD")
    text(client, "CODEWORD")
    assert ask(client).status_code == 202
    assert ask(client).status_code == 429
    assert "try again later" in text(client, "CODEWORD").get_data(as_text=True)
    assert len(codeword_sent(sent)) == 3


def test_five_codeword_texts_per_practice_a_day(client: FlaskClient, sent: TwilioRecorder) -> None:
    for user_id in ["u-1"] * 3 + ["u-2"] * 2:
        assert ask(client, {**REQUEST, "user_id": user_id}).status_code == 202
    response = ask(client, {**REQUEST, "user_id": "u-5"})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 3600
    assert ask(client, {**REQUEST, "practice_id": "p-2", "user_id": "u-9"}).status_code == 202


def test_the_staff_generic_reply_never_reaches_twilios_rest_api(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    assert "verified cell" in text(client, "CODEWORD", STAFF_CELL).get_data(as_text=True)
    assert list(sent) == []
