"""A codeword text lives briefly: short ValidityPeriod, a status callback, then redaction at Twilio."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from core import queue
from core.carrier import TwilioCarrier
from sms.codeword_texts import VALIDITY_PERIOD
from tests.helpers import (
    PUBLIC_BASE_URL,
    SUPPORT,
    TWILIO_AUTH_TOKEN,
    post_signed,
    twilio_signature,
)
from tests.sms_helpers import ADMIN_CELL, CODEWORD, seed, text
from tests.twilio_fake import RecordedRequest, TwilioRecorder
from tests.voice import Clock
from tests.workers import sweep

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


def codeword_sent(sent: TwilioRecorder) -> list[RecordedRequest]:
    """The codeword texts among the requests Twilio got: those with a status callback (the
    other admins' disclosure notices have none)."""
    return [r for r in sent if "StatusCallback" in r.form]


def redactions(sent: TwilioRecorder) -> list[str]:
    """The MessageSids whose body was blanked at Twilio, in order."""
    return [
        r.path.rsplit("/", 1)[1].removesuffix(".json")
        for r in sent
        if r.form_lists == {"Body": [""]}
    ]


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
    (created,) = codeword_sent(sent)
    assert (created.method, created.path) == ("POST", f"{MESSAGES}.json")
    assert CODEWORD in created.form["Body"]
    assert 0 < int(created.form["ValidityPeriod"]) <= 900
    sid = sent_sid(client)

    report(client, created.form["StatusCallback"], sid, "sent")
    assert redactions(sent) == []  # on its way: nothing to redact yet
    assert report(client, created.form["StatusCallback"], sid, status).status_code == 200
    assert redactions(sent) == [sid]
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
    (created,) = codeword_sent(sent)
    callback = urlsplit(created.form["StatusCallback"])
    assert callback.query.startswith("practice_id=p-1&text=CT")
    form = {"MessageSid": sent_sid(client), "MessageStatus": "delivered", "To": ADMIN_CELL}
    signed_for = f"{PUBLIC_BASE_URL}{callback.path}?{callback.query}"
    response = client.post(
        f"{callback.path}?{callback.query.replace('p-1', 'p-2')}",
        data=form,
        headers={"X-Twilio-Signature": twilio_signature(signed_for, form)},
    )
    assert response.status_code == 403
    assert redactions(sent) == []


@pytest.mark.parametrize("ask", [by_keyword, by_support], ids=["keyword", "support"])
def test_a_text_whose_report_never_comes_is_redacted_after_redact_after_seconds(
    recorded_app: Flask, twilio_recorder: Recorder, ask: Callable[[FlaskClient], TestResponse]
) -> None:
    clock = recorded_app.config["CLOCK"] = Clock()
    client = recorded_app.test_client()
    seed(client)
    sent = twilio_recorder[1]
    ask(client)
    sid = sent_sid(client)
    clock.advance(899)
    assert sweep(recorded_app) == 0
    clock.advance(1)  # REDACT_AFTER_SECONDS (900 by default) after it was sent
    assert sweep(recorded_app) == 1
    assert redactions(sent) == [sid]


def test_a_redaction_twilio_refuses_is_tried_again_until_it_is_accepted(
    recorded_app: Flask, twilio_recorder: Recorder
) -> None:
    clock = recorded_app.config["CLOCK"] = Clock()
    client = recorded_app.test_client()
    seed(client)
    sent = twilio_recorder[1]
    by_support(client)
    (created,) = codeword_sent(sent)
    sid = sent_sid(client)
    for _ in range(3):
        sent.queue_error(503, 20503, "Service Unavailable")
    report(client, created.form["StatusCallback"], sid, "delivered")
    for wait in (30, 60, 120):  # doubling from 30 s
        assert sweep(recorded_app) == 0
        clock.advance(wait)
        assert sweep(recorded_app) == 1
    assert redactions(sent) == [sid] * 4
    assert [r.path.endswith(f"{sid}.json") for r in sent[-4:]] == [True] * 4
    with recorded_app.app_context():
        assert (
            dict(((k, st), n) for k, st, n in queue.outbox().counts())[("redaction", "redacted")]
            == 1
        )


def test_a_text_twilio_answered_too_late_is_redacted_once_its_report_names_it(
    recorded_app: Flask, twilio_recorder: Recorder
) -> None:
    client = recorded_app.test_client()
    seed(client)
    twilio_url, sent = twilio_recorder
    recorded_app.extensions["carrier"] = TwilioCarrier(
        ACCOUNT_SID, TWILIO_AUTH_TOKEN, "+15005550006", twilio_url, timeout=(1.0, 0.3)
    )
    sent.queue_response(201, {}, delay=1)  # past the carrier's wait: the send is unconfirmed
    by_support(client)
    (created,) = codeword_sent(sent)
    events = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT).get_json()["events"]
    assert [(e["outcome"], e["reference"]) for e in events if e["channel"] == "sms"] == [
        ("unconfirmed", None)
    ]
    sid = "SM" + "a" * 32
    report(client, created.form["StatusCallback"], sid, "delivered")
    assert redactions(sent)[-1:] == [sid]
