"""Delivery reports for codeword texts: recorded, and the body redacted at Twilio."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.helpers import SUPPORT, post_signed
from tests.sms_helpers import ADMIN_CELL, seed, text
from tests.twilio_fake import TwilioRecorder

ACCOUNT_SID = "AC" + "0" * 32


def report(
    client: FlaskClient, sid: str, status: str, path: str = "/sms/status?practice_id=p-1"
) -> TestResponse:
    """Twilio's status callback for message ``sid``, signed."""
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+15005550006",
        "To": ADMIN_CELL,
        "MessageStatus": status,
        "SmsStatus": status,
    }
    return post_signed(client, path, form)


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def sms_events(client: FlaskClient) -> list[dict[str, Any]]:
    response = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT)
    return [e for e in response.get_json()["events"] if e["channel"] == "sms"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    seed(client)
    return client


def redactions(app: Flask) -> list[str]:
    """The texts redacted (the jobs run as they are enqueued here)."""
    return [r["sid"] for r in app.extensions["carrier"].recorded("redactions")]


@pytest.mark.parametrize("status", ["delivered", "undelivered", "failed"])
def test_a_final_status_redacts_the_text_and_is_recorded(
    app: Flask, client: FlaskClient, status: str
) -> None:
    sid = new_sid()
    response = report(client, sid, status)
    assert response.status_code == 200
    assert redactions(app) == [sid]
    (event,) = sms_events(client)
    assert event["outcome"] == status
    assert event["reference"] == sid
    assert event["to"] == "+1******0111"
    assert event["actor"] == "twilio"


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "accepted"])
def test_a_status_on_the_way_changes_nothing(app: Flask, client: FlaskClient, status: str) -> None:
    assert report(client, new_sid(), status).status_code == 200
    assert redactions(app) == []
    assert sms_events(client) == []


def test_the_codeword_texts_own_callback_redacts_it(app: Flask, client: FlaskClient) -> None:
    text(client, "CODEWORD")
    (sent,) = [t for t in app.extensions["carrier"].recorded("messages") if t["status_callback"]]
    callback = urlsplit(sent["status_callback"])
    report(client, sent["sid"], "delivered", f"{callback.path}?{callback.query}")
    assert redactions(app) == [sent["sid"]]
    assert [e["outcome"] for e in sms_events(client)] == ["delivered", "sent"]


def test_an_unsigned_report_is_refused(app: Flask, client: FlaskClient) -> None:
    response = client.post(
        "/sms/status?practice_id=p-1", data={"MessageSid": new_sid(), "MessageStatus": "delivered"}
    )
    assert response.status_code == 403
    assert redactions(app) == []


def test_a_report_for_something_that_is_not_a_message_sid_is_ignored(
    app: Flask, client: FlaskClient
) -> None:
    assert report(client, "../../Calls/CA123", "delivered").status_code == 200
    assert redactions(app) == []


def test_redaction_posts_an_empty_body_to_the_message_at_twilio(
    recorded_app: Flask, twilio_recorder: tuple[str, TwilioRecorder]
) -> None:
    client = recorded_app.test_client()
    seed(client)
    sent = twilio_recorder[1]
    sid = new_sid()
    assert report(client, sid, "delivered").status_code == 200
    (request,) = sent
    assert (request.method, request.path) == (
        "POST",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
    )
    assert request.form_lists == {"Body": [""]}


def test_a_failed_redaction_still_records_the_delivery(
    recorded_app: Flask, twilio_recorder: tuple[str, TwilioRecorder]
) -> None:
    client = recorded_app.test_client()
    seed(client)
    twilio_recorder[1].queue_error(500, 20500, "Internal Server Error")
    response = report(client, new_sid(), "delivered")
    assert response.status_code == 200
    assert [e["outcome"] for e in sms_events(client)] == ["delivered"]
