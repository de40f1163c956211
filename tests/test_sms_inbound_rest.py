"""Inbound CODEWORD texts with the real Twilio client: what reaches Twilio, and when nothing does."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core import background
from devservers.redis_server import RedisProcess
from store.models import Base
from tests.helpers import PUBLIC_BASE_URL, SUPPORT, post_signed
from tests.redis_trips import count_round_trips
from tests.sms_helpers import (
    ADMIN_CELL,
    CODEWORD,
    MULTI_ADMIN_CELL,
    STAFF_CELL,
    UNKNOWN_CELL,
    reply_of,
    seed,
    text,
)
from tests.twilio_fake import TwilioRecorder

MESSAGES = f"/2010-04-01/Accounts/{'AC' + '0' * 32}/Messages.json"


@pytest.fixture
def client(recorded_app: Flask) -> FlaskClient:
    client = recorded_app.test_client()
    seed(client)
    return client


@pytest.fixture
def sent(twilio_recorder: tuple[str, TwilioRecorder], client: FlaskClient) -> TwilioRecorder:
    return twilio_recorder[1]


def sms_outcomes(client: FlaskClient) -> list[str]:
    response = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT)
    return [e["outcome"] for e in response.get_json()["events"] if e["channel"] == "sms"]


def test_the_keyword_codeword_text_is_a_rest_message_with_validity_and_callback(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    response = text(client, "CODEWORD")
    assert reply_of(response) is None
    (request,) = sent
    assert (request.method, request.path) == ("POST", MESSAGES)
    assert request.form["To"] == ADMIN_CELL
    assert request.form["From"] == "+15005550006"
    assert CODEWORD in request.form["Body"]
    assert "support" not in request.form["Body"]
    assert 0 < int(request.form["ValidityPeriod"]) <= 900
    assert request.form["StatusCallback"] == f"{PUBLIC_BASE_URL}/sms/status?practice_id=p-1"


def test_a_codeword_text_takes_two_redis_round_trips(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    """One before deciding (flood count, windows, pending list), one after (spends or list)."""
    text(client, "hello", UNKNOWN_CELL)  # the limit scripts are loaded from here on
    for body, sender in [
        ("CODEWORD", ADMIN_CELL),
        ("CODEWORD", MULTI_ADMIN_CELL),
        ("2", MULTI_ADMIN_CELL),
    ]:
        with count_round_trips() as trips:
            text(client, body, sender)
        assert trips == [2], body
    assert len(sent) == 2


def test_a_reply_without_the_codeword_takes_one_redis_round_trip(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    text(client, "hello", UNKNOWN_CELL)
    for body, sender in [("HELP", ADMIN_CELL), ("CODEWORD", STAFF_CELL), ("hi", UNKNOWN_CELL)]:
        with count_round_trips() as trips:
            assert reply_of(text(client, body, sender)) is not None
        assert trips == [1]
    assert list(sent) == []


def test_twilio_down_gets_a_polite_reply_and_spends_no_slot(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    sent.queue_error(500, 20500, "Internal Server Error")
    reply = reply_of(text(client, "CODEWORD"))
    assert reply is not None
    assert "try again in a few minutes" in reply
    assert CODEWORD not in reply
    assert sms_outcomes(client) == []
    for _ in range(3):
        assert reply_of(text(client, "CODEWORD")) is None
    assert len(sent) == 4


def test_twilio_saying_the_admin_opted_out_is_kept_and_answered_with_nothing(
    recorded_app: Flask, client: FlaskClient, sent: TwilioRecorder
) -> None:
    sent.queue_error(400, 21610, "Attempt to send to unsubscribed recipient")
    assert reply_of(text(client, "CODEWORD")) is None
    assert recorded_app.extensions["directory"].is_opted_out(ADMIN_CELL)
    assert reply_of(text(client, "CODEWORD")) is None
    assert len(sent) == 1


def test_with_redis_down_twilio_is_never_asked_to_send(
    client: FlaskClient, sent: TwilioRecorder, redis_process: RedisProcess
) -> None:
    redis_process.stop()
    for body in ("CODEWORD", "HELP"):
        response = text(client, body)
        assert reply_of(response) is None
        assert CODEWORD.encode() not in response.data
    assert list(sent) == []


def test_with_the_database_down_twilio_is_never_asked_to_send(
    recorded_app: Flask, client: FlaskClient, sent: TwilioRecorder
) -> None:
    Base.metadata.drop_all(recorded_app.extensions["directory"].engine)
    response = text(client, "CODEWORD")
    assert reply_of(response) is None
    assert list(sent) == []


def test_with_redis_down_the_support_endpoint_is_503_and_sends_nothing(
    client: FlaskClient, sent: TwilioRecorder, redis_process: RedisProcess
) -> None:
    redis_process.stop()
    response = client.post(
        "/api/v1/codeword-texts",
        json={"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"},
        headers=SUPPORT,
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert list(sent) == []


def test_the_codeword_never_reaches_a_log_line(
    client: FlaskClient, sent: TwilioRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    text(client, "CODEWORD")
    text(client, "CODEWORD", MULTI_ADMIN_CELL)
    text(client, "1", MULTI_ADMIN_CELL)
    sent.queue_error(500, 20500, "Internal Server Error")
    text(client, "CODEWORD")
    support = client.post(
        "/api/v1/codeword-texts",
        json={"practice_id": "p-1", "user_id": "u-2", "requested_by": "Sam"},
        headers=SUPPORT,
    )
    assert support.status_code == 202
    sid = support.get_json()["id"]
    sent.queue_error(500, 20500, "Internal Server Error")
    form = {"MessageSid": sid, "MessageStatus": "delivered", "To": ADMIN_CELL}
    post_signed(client, "/sms/status?practice_id=p-1", form)
    assert background.wait_idle(timeout=5)  # the redaction, done off the webhook's path
    assert len(sent) == 5  # three texts, one refused by Twilio, one redaction
    assert CODEWORD in sent[0].form["Body"]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "not redacted" in logged
    assert CODEWORD not in logged
