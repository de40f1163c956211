"""Twilio's API answering late: how long we wait, and what a late answer leaves behind.

A request Twilio received but did not answer in time may still have been carried
out. For a codeword text that means the codeword may be on its way: the audit trail
must say so, and the rate limits must count it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.carrier import TwilioCarrier
from tests.faults import ADMIN_CELL, SECOND_ADMIN_CELL, inbound_text, seed, texts_sent
from tests.helpers import SUPPORT, TWILIO_AUTH_TOKEN, post_signed
from tests.sms_helpers import reply_of
from tests.twilio_fake import TwilioRecorder
from tests.voice import ACCOUNT_SID, CODEWORD, OUR_NUMBER, Clock
from tests.workers import sweep


@pytest.fixture
def app(make_app: Callable[..., Flask], twilio_recorder: tuple[str, TwilioRecorder]) -> Flask:
    """Twilio's client through Prism, giving up after 0.3 s; one codeword text an hour."""
    twilio_url, sent = twilio_recorder
    sent.clear()
    app = make_app(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_API_BASE_URL=twilio_url,
        SMS_CODEWORD_TEXTS_PER_NUMBER="1/hour",
    )
    app.extensions["carrier"] = TwilioCarrier(
        ACCOUNT_SID, TWILIO_AUTH_TOKEN, OUR_NUMBER, twilio_url, timeout=(1.0, 0.3)
    )
    seed(app.test_client())
    return app


@pytest.fixture
def sent(twilio_recorder: tuple[str, TwilioRecorder], app: Flask) -> Iterator[TwilioRecorder]:
    recorder = twilio_recorder[1]
    recorder.clear()
    yield recorder
    while recorder.next_canned() is not None:
        pass


def sms_events(client: FlaskClient) -> list[dict[str, str]]:
    events = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT).get_json()
    return [e for e in events["events"] if e["channel"] == "sms"]


def test_a_support_codeword_text_twilio_answered_too_late_is_audited_and_counted(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    sent.queue_response(201, {}, delay=1)
    body = {"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"}
    response = client.post("/api/v1/codeword-texts", json=body, headers=SUPPORT)
    assert response.status_code == 202  # queued: the worker meets the late Twilio
    text, notice = texts_sent(sent)
    assert text.form["To"] == ADMIN_CELL and CODEWORD in text.form["Body"]
    [event] = sms_events(client)
    assert event["outcome"] == "unconfirmed"
    assert (event["to"], event["actor"], event["requested_by"]) == (
        "+1******0111",
        "helpdesk",
        "Dana",
    )
    assert event["reference"] is None
    # It may have gone out: the other admin hears of it.
    assert notice.form["To"] == SECOND_ADMIN_CELL
    assert CODEWORD not in notice.form["Body"] and "0111" in notice.form["Body"]
    again = client.post("/api/v1/codeword-texts", json=body, headers=SUPPORT)
    assert again.status_code == 429
    assert [t.form["To"] for t in texts_sent(sent)] == [ADMIN_CELL, SECOND_ADMIN_CELL]


def test_a_keyword_codeword_text_twilio_answered_too_late_is_audited_and_counted(
    client: FlaskClient, sent: TwilioRecorder
) -> None:
    sent.queue_response(201, {}, delay=1)
    reply = reply_of(post_signed(client, "/sms/inbound", inbound_text(ADMIN_CELL, "CODEWORD")))
    assert reply is None  # the webhook never waits: the worker met the late Twilio
    assert [e["outcome"] for e in sms_events(client)] == ["unconfirmed"]
    limited = reply_of(post_signed(client, "/sms/inbound", inbound_text(ADMIN_CELL, "CODEWORD")))
    assert limited is not None and CODEWORD not in limited
    assert [t.form["To"] for t in texts_sent(sent)] == [ADMIN_CELL, SECOND_ADMIN_CELL]


def test_a_codeword_text_twilio_keeps_refusing_is_neither_audited_nor_counted(
    app: Flask, client: FlaskClient, sent: TwilioRecorder
) -> None:
    """Twilio answered each attempt with an error: nothing was sent, so once the worker
    gives up, the slot is back."""
    clock = app.config["CLOCK"] = Clock()
    for _ in range(4):
        sent.queue_error(500, 20500, "Internal Server Error")
    body = {"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"}
    assert client.post("/api/v1/codeword-texts", json=body, headers=SUPPORT).status_code == 202
    assert client.post("/api/v1/codeword-texts", json=body, headers=SUPPORT).status_code == 429
    for wait in (5, 30, 120):  # the worker's tries
        clock.advance(wait)
        assert sweep(app) == 1
    assert len(sent) == 4
    assert sms_events(client) == []
    assert client.post("/api/v1/codeword-texts", json=body, headers=SUPPORT).status_code == 202


def test_the_carrier_waits_for_a_slow_twilio_rather_than_give_up_early(
    twilio_recorder: tuple[str, TwilioRecorder],
) -> None:
    """A text Twilio answers after 2 s is sent and confirmed with the default timeouts."""
    twilio_url, sent = twilio_recorder
    sent.clear()
    carrier = TwilioCarrier(ACCOUNT_SID, TWILIO_AUTH_TOKEN, OUR_NUMBER, twilio_url)
    message = {"sid": "SM" + "a" * 32, "status": "queued"}
    sent.queue_response(201, message, delay=2)
    started = time.monotonic()
    assert carrier.send_sms(to=ADMIN_CELL, body="hello") == "SM" + "a" * 32
    assert 2 <= time.monotonic() - started < 4
