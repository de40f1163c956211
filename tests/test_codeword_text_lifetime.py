"""A codeword text lives briefly: short ValidityPeriod, a status callback, then redaction at Twilio."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from core import background
from sms.codeword_texts import VALIDITY_PERIOD
from tests.helpers import PUBLIC_BASE_URL, SUPPORT, post_signed, twilio_signature
from tests.sms_helpers import ADMIN_CELL, CODEWORD, seed, text
from tests.twilio_fake import TwilioRecorder

ACCOUNT_SID = "AC" + "0" * 32
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages"
Recorder = tuple[str, TwilioRecorder]


def by_keyword(client: FlaskClient) -> TestResponse:
    return text(client, "CODEWORD")


def by_support(client: FlaskClient) -> TestResponse:
    body = {"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"}
    return client.post("/api/v1/codeword-texts", json=body, headers=SUPPORT)


def report(client: FlaskClient, callback_url: str, sid: str, status: str) -> TestResponse:
    """Twilio's status callback to ``callback_url``, signed for exactly that URL."""
    assert callback_url.startswith(PUBLIC_BASE_URL + "/")
    form = {
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+15005550006",
        "To": ADMIN_CELL,
        "MessageStatus": status,
    }
    return post_signed(client, callback_url[len(PUBLIC_BASE_URL) :], form)


def sent_sid(client: FlaskClient) -> str:
    events = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT).get_json()["events"]
    (sent,) = [e for e in events if e["outcome"] == "sent"]
    return str(sent["reference"])


def test_the_validity_period_is_at_most_fifteen_minutes() -> None:
    assert 0 < VALIDITY_PERIOD <= 900


@pytest.mark.parametrize("ask", [by_keyword, by_support], ids=["keyword", "support"])
@pytest.mark.parametrize("status", ["delivered", "undelivered", "failed"])
def test_the_codeword_text_is_redacted_at_twilio_once_its_fate_is_known(
    recorded_app: Flask,
    twilio_recorder: Recorder,
    ask: Callable[[FlaskClient], TestResponse],
    status: str,
) -> None:
    client = recorded_app.test_client()
    seed(client)
    sent = twilio_recorder[1]
    ask(client)
    (created,) = sent
    assert (created.method, created.path) == ("POST", f"{MESSAGES}.json")
    assert CODEWORD in created.form["Body"]
    assert 0 < int(created.form["ValidityPeriod"]) <= 900
    sid = sent_sid(client)

    report(client, created.form["StatusCallback"], sid, "sent")
    assert background.wait_idle(timeout=5)
    assert len(sent) == 1  # on its way: nothing to redact yet
    assert report(client, created.form["StatusCallback"], sid, status).status_code == 200
    assert background.wait_idle(timeout=5)  # the redaction runs off the webhook's path
    redaction = sent[-1]
    assert (redaction.method, redaction.path) == ("POST", f"{MESSAGES}/{sid}.json")
    assert redaction.form_lists == {"Body": [""]}


def test_a_callback_signed_for_another_practice_is_refused(
    recorded_app: Flask, twilio_recorder: Recorder
) -> None:
    client = recorded_app.test_client()
    seed(client)
    sent = twilio_recorder[1]
    by_keyword(client)
    (created,) = sent
    callback = urlsplit(created.form["StatusCallback"])
    assert callback.query == "practice_id=p-1"
    form = {"MessageSid": sent_sid(client), "MessageStatus": "delivered", "To": ADMIN_CELL}
    signed_for = f"{PUBLIC_BASE_URL}{callback.path}?practice_id=p-1"
    response = client.post(
        f"{callback.path}?practice_id=p-2",
        data=form,
        headers={"X-Twilio-Signature": twilio_signature(signed_for, form)},
    )
    assert response.status_code == 403
    assert background.wait_idle(timeout=5)
    assert len(sent) == 1
