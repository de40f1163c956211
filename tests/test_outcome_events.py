"""Outcome events: signed as Standard Webhooks, retried with one id, kept in SQL until sent.

The worker runs in this process (RQ's burst mode) and the test moves the clock, so the
retry schedule is followed without sleeping. The receiver is a real HTTP server on
loopback.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core import events, queue
from core.config import ConfigError, load_config
from store.clock import now as clock_now
from store.models import OutcomeEvent
from store.outbox import EventToDeliver, Job, new_job_id
from tests.events_receiver import EventsReceiver, events_receiver
from tests.helpers import ADMIN, METRICS, SUPPORT, put_practice, put_user
from tests.voice import CODEWORD, Clock
from tests.workers import sweep, work

EVENTS_SECRET = "whsec_" + base64.b64encode(b"events-secret-for-tests-0123456").decode()


@pytest.fixture
def receiver() -> Iterator[EventsReceiver]:
    with events_receiver() as receiver:
        yield receiver


@pytest.fixture
def app(make_app: Callable[..., Flask], receiver: EventsReceiver) -> Flask:
    return make_app(
        queue_async=True,
        EVENTS_URL=receiver.url,
        EVENTS_SECRET=EVENTS_SECRET,
        EVENTS_RETRY_SCHEDULE="1,1",
        WORKER_LEASE_SECONDS="4",
    )


@pytest.fixture
def clock(app: Flask) -> Clock:
    clock = Clock()
    app.config["CLOCK"] = clock
    return clock


@pytest.fixture
def client(app: Flask, clock: Clock) -> FlaskClient:
    client = app.test_client()
    assert put_practice(client, "p-1", codeword=CODEWORD).status_code == 201
    return client


def disclose(app: Flask, practice_id: str = "p-1") -> str:
    """The main application reads the codeword (an app disclosure); its event's id."""
    with app.app_context():
        before = {e.id for e in queue.outbox().events(status=None, limit=500)}
    read = app.test_client().get(f"/api/v1/practices/{practice_id}/codeword", headers=ADMIN)
    assert read.status_code == 200
    with app.app_context():
        [new] = {e.id for e in queue.outbox().events(status=None, limit=500)} - before
    return new


def event_row(app: Flask, event_id: str) -> OutcomeEvent:
    with app.app_context():
        rows = queue.outbox().events(status=None, limit=500)
    return next(row for row in rows if row.id == event_id)


def test_an_event_is_signed_as_standard_webhooks_and_a_tampered_body_does_not_verify(
    app: Flask, client: FlaskClient, receiver: EventsReceiver
) -> None:
    event_id = disclose(app)
    work(app)

    [got] = receiver.snapshot()
    payload = Webhook(EVENTS_SECRET).verify(got.body, got.headers)
    assert got.webhook_id == event_id
    assert payload["type"] == "codeword.disclosed"
    assert payload["data"] == {
        "practice_id": "p-1",
        "channel": "app",
        "to": None,
        "actor": "mainapp",
        "requested_by": None,
        "reference": None,
    }
    assert payload["timestamp"].endswith("+00:00")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-signature"].startswith("v1,")

    tampered = got.body.replace(b'"p-1"', b'"p-2"')
    with pytest.raises(WebhookVerificationError):
        Webhook(EVENTS_SECRET).verify(tampered, got.headers)
    other_secret = "whsec_" + base64.b64encode(b"another-secret-entirely-0000000").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(got.body, got.headers)
    assert event_row(app, event_id).status == "delivered"


def test_a_receiver_failing_twice_gets_three_attempts_of_one_event(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, clock: Clock
) -> None:
    receiver.answer(500, 500)
    event_id = disclose(app)
    work(app)
    assert event_row(app, event_id).status == "pending"
    for _ in range(2):
        assert sweep(app) == 0, "not due before the schedule says"
        clock.advance(1)
        assert sweep(app) == 1
        work(app)

    got = receiver.snapshot()
    assert [r.status for r in got] == [500, 500, 204]
    assert {r.webhook_id for r in got} == {event_id}
    assert len({r.body for r in got}) == 1, "every attempt sends the same body"
    for r in got:
        Webhook(EVENTS_SECRET).verify(r.body, r.headers)
    row = event_row(app, event_id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)


def test_an_event_is_failed_after_the_last_attempt_of_the_schedule(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, clock: Clock
) -> None:
    receiver.answer(503, 502, 500, 500)
    event_id = disclose(app)
    work(app)
    for _ in range(3):
        clock.advance(1)
        sweep(app)
        work(app)

    assert [r.status for r in receiver.snapshot()] == [503, 502, 500]
    row = event_row(app, event_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 500")


def test_a_410_ends_the_retries_at_once_and_the_event_is_kept_as_failed(
    app: Flask,
    client: FlaskClient,
    receiver: EventsReceiver,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.answer(410)
    event_id = disclose(app)
    work(app)
    clock.advance(3600)
    assert sweep(app) == 0
    work(app)

    assert len(receiver.snapshot()) == 1
    row = event_row(app, event_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "HTTP 410")
    assert any("410" in r.getMessage() and event_id in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_on_429_and_503_is_honoured(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, clock: Clock, status: int
) -> None:
    receiver.answer(status, headers={"Retry-After": "120"})
    event_id = disclose(app)
    work(app)
    clock.advance(1)  # the schedule's 1 s has passed; Retry-After has not
    assert sweep(app) == 0
    clock.advance(119)
    assert sweep(app) == 1
    work(app)
    assert event_row(app, event_id).status == "delivered"
    assert len(receiver.snapshot()) == 2


def test_retry_after_as_an_http_date() -> None:
    assert events.retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert events.retry_after("30") == 30.0
    assert events.retry_after("999999999") == events.MAX_RETRY_AFTER
    assert events.retry_after("soon") is None
    assert events.retry_after(None) is None


def test_a_receiver_that_does_not_answer_in_time_is_tried_again(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, clock: Clock
) -> None:
    release = receiver.hold_next()
    try:
        event_id = disclose(app)
        work(app)  # the lease is 4 s here, so the wait is 2 s
    finally:
        release.set()
    row = event_row(app, event_id)
    assert (row.status, row.last_error) == ("pending", "ReadTimeout")
    clock.advance(1)
    sweep(app)
    work(app)
    assert event_row(app, event_id).status == "delivered"
    assert receiver.ids(delivered_only=False) == [event_id, event_id]


def test_events_pending_when_redis_is_flushed_still_go(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, redis_url: str
) -> None:
    sent = {disclose(app) for _ in range(3)}
    redis.Redis.from_url(redis_url).flushall()
    work(app)
    assert receiver.snapshot() == []

    assert sweep(app) == 3
    assert sweep(app) == 0, "a job waiting in the queue is not enqueued twice"
    work(app)
    assert sorted(receiver.ids()) == sorted(sent)


def test_a_job_enqueued_twice_delivers_once(
    app: Flask, client: FlaskClient, receiver: EventsReceiver
) -> None:
    event_id = disclose(app)
    with app.app_context():
        queue.enqueue([queue.outbox().redeliver(event_id, now=clock_now())])  # type: ignore[list-item]
    work(app)
    assert receiver.ids() == [event_id]


def test_notices_are_one_per_disclosure_and_admin(
    app: Flask, client: FlaskClient, receiver: EventsReceiver
) -> None:
    for user_id, cell in (("u-1", "+12025550111"), ("u-2", "+12025550122")):
        put_user(client, "p-1", user_id, cell_number=cell, cell_number_verified=True)
    put_user(client, "p-1", "u-3", cell_number="+12025550133")  # unverified: not told
    put_user(client, "p-1", "u-4", role="staff", cell_number="+12025550144",
             cell_number_verified=True)  # fmt: skip
    disclose(app)
    disclose(app)
    work(app)
    with app.app_context():  # every notice's job again, as a lost-and-found job would be
        notices = [j for j in queue.outbox().due(now=clock_now() + 10**6) if j.kind == "notice"]
        assert notices == []
        again = [Job("notice", n, new_job_id()) for n in range(1, 5)]
        queue.enqueue(again)
    work(app)
    texts = app.extensions["carrier"].recorded("messages")
    told = sorted(t["to"] for t in texts)
    assert told == ["+12025550111", "+12025550111", "+12025550122", "+12025550122"]
    assert all("Bright Smiles" in t["body"] and CODEWORD not in t["body"] for t in texts)


def test_the_admin_api_lists_events_and_redelivers_one_with_the_same_id(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, clock: Clock
) -> None:
    receiver.answer(410)
    failed = disclose(app)
    clock.advance(1)
    delivered = disclose(app)
    work(app)

    listed = client.get("/api/v1/events", headers=ADMIN)
    assert listed.status_code == 200
    events_json = listed.get_json()["events"]
    assert [e["id"] for e in events_json] == [delivered, failed]
    assert events_json[1] == {
        "id": failed,
        "type": "codeword.disclosed",
        "status": "failed",
        "attempts": 1,
        "created_at": events_json[1]["created_at"],
        "last_error": "HTTP 410",
    }
    only_failed = client.get("/api/v1/events?status=failed&limit=5", headers=ADMIN).get_json()
    assert [e["id"] for e in only_failed["events"]] == [failed]
    assert len(client.get("/api/v1/events?limit=1", headers=ADMIN).get_json()["events"]) == 1

    again = client.post(f"/api/v1/events/{failed}/redeliver", headers=ADMIN)
    assert again.status_code == 202
    work(app)
    assert receiver.ids() == [delivered, failed]
    assert event_row(app, failed).status == "delivered"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/events?status=lost", 422),
        ("/api/v1/events?limit=0", 422),
        ("/api/v1/events?limit=501", 422),
        ("/api/v1/events?limit=ten", 422),
    ],
)
def test_the_events_list_checks_its_parameters(client: FlaskClient, path: str, status: int) -> None:
    assert client.get(path, headers=ADMIN).status_code == status


def test_events_are_for_admin_tokens_only_and_unknown_ids_are_404(client: FlaskClient) -> None:
    assert client.get("/api/v1/events").status_code == 401
    assert client.get("/api/v1/events", headers=SUPPORT).status_code == 403
    assert client.post("/api/v1/events/msg_nope/redeliver", headers=ADMIN).status_code == 404
    assert client.post("/api/v1/events/bad%20id/redeliver", headers=ADMIN).status_code == 422


def test_metrics_show_the_background_work(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, clock: Clock
) -> None:
    disclose(app)
    metrics = client.get("/metrics", headers=METRICS).get_data(as_text=True)
    assert "codeword_jobs_queued 1.0" in metrics
    assert 'codeword_outcome_events{status="pending"} 1.0' in metrics
    assert "codeword_redactions_pending 0.0" in metrics
    assert 'codeword_outbox_oldest_pending_seconds{kind="event"}' in metrics
    work(app)
    metrics = client.get("/metrics", headers=METRICS).get_data(as_text=True)
    assert "codeword_jobs_queued 0.0" in metrics
    assert "codeword_jobs_failed 0.0" in metrics
    assert 'codeword_outcome_events{status="delivered"} 1.0' in metrics


def test_an_event_is_never_written_twice_for_the_same_outcome(
    app: Flask, client: FlaskClient
) -> None:
    with app.app_context():
        outbox = queue.outbox()
        first = events.verification_call_completed(
            call_id="VC1", practice_id="p-1", status="completed", requested_by="Dana",
            actor="helpdesk", at=clock_now(),
        )  # fmt: skip
        again = EventToDeliver(id="msg_other", type=first.type, body=first.body,
                               subject=first.subject)  # fmt: skip
        assert len(outbox.write([first], now=clock_now())) == 1
        assert outbox.write([again], now=clock_now()) == []
        assert [e.id for e in outbox.events(status=None, limit=10)] == [first.id]


# Settings ------------------------------------------------------------------------------

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "s",
    "CODEWORD_KEYS": "k",
    "TWILIO_AUTH_TOKEN": "t",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_FROM_NUMBER": "+15005550006",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "PUBLIC_BASE_URL": "https://codeword.example.com",
}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"EVENTS_URL": "http://events.example.com/in", "EVENTS_SECRET": EVENTS_SECRET},
         "EVENTS_URL must be https in production"),
        ({"EVENTS_URL": "ftp://events.example.com/in", "EVENTS_SECRET": EVENTS_SECRET},
         "EVENTS_URL must be an http"),
        ({"EVENTS_URL": "https://events.example.com/in"}, "EVENTS_SECRET is required"),
        ({"EVENTS_URL": "https://events.example.com/in", "EVENTS_SECRET": "whsec_!!"},
         "EVENTS_SECRET must be whsec_"),
        ({"EVENTS_RETRY_SCHEDULE": "5,soon"}, "EVENTS_RETRY_SCHEDULE"),
        ({"REDACT_AFTER_SECONDS": "0"}, "REDACT_AFTER_SECONDS"),
        ({"REDIS_URL": "redis+cluster://10.0.0.1:7000"}, "QUEUE_REDIS_URL is required"),
        ({"QUEUE_REDIS_URL": "redis+cluster://10.0.0.1:7000"}, "QUEUE_REDIS_URL must be"),
    ],
)  # fmt: skip
def test_the_service_refuses_to_start_with_wrong_background_settings(
    tmp_path: Path, env: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError, match=names):
        load_config({**PRODUCTION, **env}, tmp_path)


def test_background_settings_default_as_the_contract_says(tmp_path: Path) -> None:
    config = load_config(
        {
            **PRODUCTION,
            "EVENTS_URL": "https://events.example.com/in",
            "EVENTS_SECRET": EVENTS_SECRET,
        },
        tmp_path,
    )
    assert config["QUEUE_REDIS_URL"] == PRODUCTION["REDIS_URL"]
    assert config["EVENTS_RETRY_SCHEDULE"] == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        50400,
        72000,
        86400,
    ]
    assert config["REDACT_AFTER_SECONDS"] == 900
    sentinel = load_config(
        {**PRODUCTION, "QUEUE_REDIS_URL": "redis+sentinel://10.0.0.1:26379/codeword"}, tmp_path
    )
    assert sentinel["QUEUE_REDIS_URL"].startswith("redis+sentinel://")
    assert load_config(PRODUCTION, tmp_path)["EVENTS_URL"] is None


def test_an_event_body_is_compact_json_with_type_timestamp_and_data() -> None:
    event = events.codeword_text_completed(
        text_id="CT1", practice_id="p-1", user_id="u-1", status="delivered", at=0
    )
    assert json.loads(event.body) == {
        "type": "codeword_text.completed",
        "timestamp": "1970-01-01T00:00:00.000+00:00",
        "data": {"id": "CT1", "practice_id": "p-1", "user_id": "u-1", "status": "delivered"},
    }
    assert event.id.startswith("msg_")
