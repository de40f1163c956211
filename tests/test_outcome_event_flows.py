"""Outcome events from the real flows: a call, a codeword text, an app read.

Jobs run as they are enqueued here (the conftest's app), so each event reaches the
receiver within the request that caused it; tests/test_worker_processes.py runs them
on real workers instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook

from core import queue
from tests.events_receiver import EventsReceiver, events_receiver
from tests.helpers import ADMIN, ADMIN_TOKEN, SUPPORT, SUPPORT_TOKEN, post_signed, put_user
from tests.sms_helpers import ADMIN_CELL, CODEWORD
from tests.test_outcome_events import EVENTS_SECRET
from tests.voice import last_placed_call, request_call, setup_practice


@pytest.fixture
def receiver() -> Iterator[EventsReceiver]:
    with events_receiver() as receiver:
        yield receiver


@pytest.fixture
def app(make_app: Callable[..., Flask], receiver: EventsReceiver) -> Flask:
    return make_app(EVENTS_URL=receiver.url, EVENTS_SECRET=EVENTS_SECRET)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    setup_practice(client)
    put_user(client, "p-1", "u-1", name="Dana", cell_number=ADMIN_CELL, cell_number_verified=True)
    return client


def received(receiver: EventsReceiver) -> list[dict[str, Any]]:
    """Every event received, verified with our secret, oldest first."""
    return [Webhook(EVENTS_SECRET).verify(r.body, r.headers) for r in receiver.snapshot()]


def test_a_call_read_to_the_office_sends_disclosed_then_completed(
    client: FlaskClient, receiver: EventsReceiver
) -> None:
    body = request_call(client).get_json()
    call = last_placed_call(client)
    call.answer()
    call.press(body["challenge_code"])
    call.press("1")  # hearing it again is the same disclosure
    call.status("completed")
    call.status("completed")  # Twilio repeating itself makes no second event

    disclosed, completed = received(receiver)
    assert disclosed["type"] == "codeword.disclosed"
    assert disclosed["data"] == {
        "practice_id": "p-1",
        "channel": "voice",
        "to": "+1******0100",
        "actor": "helpdesk",
        "requested_by": "Dr. Ana Ruiz (owner)",
        "reference": call.sid,
    }
    assert completed["type"] == "verification_call.completed"
    assert completed["data"] == {
        "id": body["id"],
        "practice_id": "p-1",
        "status": "disclosed",
        "requested_by": "Dr. Ana Ruiz (owner)",
        "actor": "helpdesk",
    }
    assert_no_secret(receiver, body["challenge_code"])


@pytest.mark.parametrize(("twilio_says", "final"), [("no-answer", "no-answer"), ("busy", "busy")])
def test_a_call_nobody_answered_completes_with_its_final_status(
    client: FlaskClient, receiver: EventsReceiver, twilio_says: str, final: str
) -> None:
    body = request_call(client).get_json()
    last_placed_call(client).status(twilio_says)
    [completed] = received(receiver)
    assert completed["type"] == "verification_call.completed"
    assert (completed["data"]["id"], completed["data"]["status"]) == (body["id"], final)


def test_a_locked_call_completes_as_locked_and_discloses_nothing(
    client: FlaskClient, receiver: EventsReceiver
) -> None:
    body = request_call(client).get_json()
    call = last_placed_call(client)
    call.answer()
    wrong = f"{(int(body['challenge_code']) + 1) % 10**6:06d}"
    for _ in range(3):
        call.press(wrong)
    call.status("completed")
    assert [(e["type"], e["data"]["status"]) for e in received(receiver)] == [
        ("verification_call.completed", "locked")
    ]


def test_an_office_number_verification_call_sends_no_event(
    client: FlaskClient, receiver: EventsReceiver
) -> None:
    code = client.post(
        "/api/v1/practices/p-1/office-number/verification", headers=ADMIN
    ).get_json()["code"]
    call = last_placed_call(client)
    call.answer()
    call.press(code)
    call.status("completed")
    assert receiver.snapshot() == []


def test_a_codeword_text_sends_disclosed_then_completed_with_its_id(
    app: Flask, client: FlaskClient, receiver: EventsReceiver
) -> None:
    asked = client.post(
        "/api/v1/codeword-texts",
        json={"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"},
        headers=SUPPORT,
    ).get_json()
    [sent] = [t for t in app.extensions["carrier"].recorded("messages") if t["status_callback"]]
    callback = urlsplit(sent["status_callback"])
    form = {"MessageSid": sent["sid"], "MessageStatus": "delivered", "To": ADMIN_CELL}
    post_signed(client, f"{callback.path}?{callback.query}", form)
    post_signed(client, f"{callback.path}?{callback.query}", form)  # a repeated report

    disclosed, completed = received(receiver)
    assert disclosed["type"] == "codeword.disclosed"
    assert disclosed["data"] == {
        "practice_id": "p-1",
        "channel": "sms",
        "to": "+1******0111",
        "actor": "helpdesk",
        "requested_by": "Dana",
        "reference": sent["sid"],
    }
    assert completed == {
        "type": "codeword_text.completed",
        "timestamp": completed["timestamp"],
        "data": {"id": asked["id"], "practice_id": "p-1", "user_id": "u-1", "status": "delivered"},
    }
    assert_no_secret(receiver)


def test_each_read_by_the_main_application_is_an_app_disclosure(
    client: FlaskClient, receiver: EventsReceiver
) -> None:
    for _ in range(2):
        assert client.get("/api/v1/practices/p-1/codeword", headers=ADMIN).status_code == 200
    events = received(receiver)
    assert [e["data"]["channel"] for e in events] == ["app", "app"]
    assert events[0]["data"] == {
        "practice_id": "p-1",
        "channel": "app",
        "to": None,
        "actor": "mainapp",
        "requested_by": None,
        "reference": None,
    }
    assert len({r.webhook_id for r in receiver.snapshot()}) == 2
    assert_no_secret(receiver)


def test_without_events_url_no_event_is_kept(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    client = app.test_client()
    setup_practice(client)
    assert client.get("/api/v1/practices/p-1/codeword", headers=ADMIN).status_code == 200
    with app.app_context():
        assert queue.outbox().events(status=None, limit=10) == []
    assert client.get("/api/v1/events", headers=ADMIN).get_json() == {"events": []}


def assert_no_secret(receiver: EventsReceiver, *codes: str) -> None:
    """No event carries the codeword, a challenge code, a token or the signing secret."""
    for got in receiver.snapshot():
        text = got.body.decode() + json.dumps(got.headers)
        for secret in (CODEWORD, ADMIN_TOKEN, SUPPORT_TOKEN, EVENTS_SECRET, *codes):
            assert secret not in text
