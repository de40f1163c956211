"""Inbound CODEWORD texts with the real Twilio client: what reaches Twilio, and when nothing does."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

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
from tests.twilio_fake import RecordedRequest, TwilioRecorder
from tests.voice import Clock
from tests.workers import sweep, work

MESSAGES = f"/2010-04-01/Accounts/{'AC' + '0' * 32}/Messages.json"
Recorder = tuple[str, TwilioRecorder]


@pytest.fixture
def client(recorded_app: Flask) -> FlaskClient:
    client = recorded_app.test_client()
    seed(client)
    return client


@pytest.fixture
def sent(twilio_recorder: tuple[str, TwilioRecorder], client: FlaskClient) -> TwilioRecorder:
    return twilio_recorder[1]


def codeword_sent(sent: TwilioRecorder) -> list[RecordedRequest]:
    """The codeword texts among the requests Twilio got: those with a status callback (the
    other admins' disclosure notices have none)."""
    return [r for r in sent if "StatusCallback" in r.form]


def sms_events_of(client: FlaskClient) -> list[dict[str, str]]:
    response = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT)
    return [e for e in response.get_json()["events"] if e["channel"] == "sms"]


def sms_outcomes(client: FlaskClient) -> list[str]:
    return [e["outcome"] for e in sms_events_of(client)]


def test_the_keyword_codeword_text_is_a_rest_message_with_validity_and_callback(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    response = text(client, "CODEWORD")
    assert reply_of(response) is None
    (request,) = codeword_sent(sent)
    assert (request.method, request.path) == ("POST", MESSAGES)
    assert request.form["To"] == ADMIN_CELL
    assert request.form["From"] == "+15005550006"
    assert CODEWORD in request.form["Body"]
    assert "support" not in request.form["Body"]
    assert 0 < int(request.form["ValidityPeriod"]) <= 900
    assert request.form["StatusCallback"].startswith(
        f"{PUBLIC_BASE_URL}/sms/status?practice_id=p-1&text=CT"
    )


def test_a_codeword_text_takes_three_redis_round_trips_and_no_twilio_request(
    make_app: Callable[..., Flask], twilio_recorder: Recorder
) -> None:
    """One before deciding (flood count, windows, pending list); then the spends and the job
    on the queue, or the list. The text itself waits for the worker."""
    app = make_app(
        queue_async=True, TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_API_BASE_URL=twilio_recorder[0]
    )
    client = app.test_client()
    seed(client)
    sent = twilio_recorder[1]
    sent.clear()
    # The scripts are loaded, and the queue's connection open, from here on.
    text(client, "CODEWORD", ADMIN_CELL)
    for body, sender, round_trips in [
        ("CODEWORD", ADMIN_CELL, 3),
        ("CODEWORD", MULTI_ADMIN_CELL, 2),
        ("2", MULTI_ADMIN_CELL, 3),
    ]:
        with count_round_trips() as trips:
            text(client, body, sender)
        assert trips == [round_trips], body
    assert list(sent) == []
    work(app)
    assert len(codeword_sent(sent)) == 3


def test_a_reply_without_the_codeword_takes_one_redis_round_trip(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    text(client, "hello", UNKNOWN_CELL)
    for body, sender in [("HELP", ADMIN_CELL), ("CODEWORD", STAFF_CELL), ("hi", UNKNOWN_CELL)]:
        with count_round_trips() as trips:
            assert reply_of(text(client, body, sender)) is not None
        assert trips == [1]
    assert list(sent) == []


def test_twilio_down_never_holds_the_reply_and_the_worker_tries_again(
    recorded_app: Flask, client: FlaskClient, sent: TwilioRecorder
) -> None:
    clock = recorded_app.config["CLOCK"] = Clock()
    sent.queue_error(500, 20500, "Internal Server Error")
    assert reply_of(text(client, "CODEWORD")) is None
    assert sms_outcomes(client) == []
    clock.advance(5)
    sweep(recorded_app)  # the retry is due: enqueued again, and here run at once
    assert sms_outcomes(client) == ["sent"]
    assert len(codeword_sent(sent)) == 2


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
    sid = codeword_sent(sent)[-1].form  # the support text, as Twilio got it
    (answer,) = [e["reference"] for e in sms_events_of(client) if e["actor"] == "helpdesk"]
    sent.queue_error(500, 20500, "Internal Server Error")
    form = {"MessageSid": answer, "MessageStatus": "delivered", "To": sid["To"]}
    post_signed(client, "/sms/status?practice_id=p-1", form)
    assert len(codeword_sent(sent)) == 4  # three sent, one refused by Twilio
    assert CODEWORD in codeword_sent(sent)[0].form["Body"]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "not redacted" in logged
    assert CODEWORD not in logged
