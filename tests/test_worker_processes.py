"""Real worker processes: killed, doubled, their Redis flushed; nothing lost, nothing twice.

Each worker is ``flask --app wsgi worker`` in its own process, as the Procfile runs it,
on the test Redis and database, posting to a real receiver on loopback. Leases, the
sweep and the retry schedule are short here (WORKER_LEASE_SECONDS, WORKER_SWEEP_SECONDS,
EVENTS_RETRY_SCHEDULE), so what production does in minutes happens in seconds.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import pairwise
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq.registry import StartedJobRegistry
from standardwebhooks.webhooks import Webhook

from core import queue
from tests.events_receiver import EventsReceiver, events_receiver
from tests.helpers import SUPPORT, post_signed, put_practice, put_user
from tests.test_outcome_events import EVENTS_SECRET, disclose, event_row
from tests.twilio_fake import TwilioRecorder
from tests.voice import CODEWORD
from tests.workers import WorkerProcess, worker_process

WAIT = 30.0


@pytest.fixture
def receiver() -> Iterator[EventsReceiver]:
    with events_receiver() as receiver:
        yield receiver


@pytest.fixture
def worker_env(base_env: dict[str, str], receiver: EventsReceiver) -> dict[str, str]:
    return {
        **base_env,
        "EVENTS_URL": receiver.url,
        "EVENTS_SECRET": EVENTS_SECRET,
        "EVENTS_RETRY_SCHEDULE": "1,1",
        "WORKER_LEASE_SECONDS": "2",
        "WORKER_SWEEP_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
def app(make_app: Callable[..., Flask], worker_env: dict[str, str]) -> Flask:
    return make_app(queue_async=True, **worker_env)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert put_practice(client, "p-1", codeword=CODEWORD).status_code == 201
    for user_id, cell in (("u-1", "+12025550111"), ("u-2", "+12025550122")):
        put_user(client, "p-1", user_id, cell_number=cell, cell_number_verified=True)
    return client


def until(done: Callable[[], bool], what: str, worker: WorkerProcess | None = None) -> None:
    """Poll ``done`` until it holds (the worker is another process); fail after WAIT s."""
    deadline = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > deadline:
            log = f"\nworker log:\n{worker.log()}" if worker else ""
            raise AssertionError(f"still waiting for {what}{log}")
        time.sleep(0.05)


def all_settled(app: Flask) -> bool:
    """No row pending or held, and no job queued or running: nothing more can be sent."""
    with app.app_context():
        q = queue.queue()
        busy = q.count + StartedJobRegistry(queue=q).count
        counts = list(queue.outbox().counts())
    return busy == 0 and all(status != "pending" for _, status, _ in counts)


def test_a_worker_killed_between_a_disclosure_and_its_event_loses_nothing(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, worker_env: dict[str, str]
) -> None:
    release = receiver.hold_next()
    with worker_process(worker_env) as worker:
        event_id = disclose(app)
        until(receiver.arrived.is_set, "the first attempt", worker)
        worker.kill()  # mid-delivery: the receiver has the request, the row its claim
        release.set()
        assert event_row(app, event_id).status == "pending"

        worker.start()
        until(lambda: event_id in receiver.ids(), "the event delivered", worker)
    assert event_row(app, event_id).status == "delivered"
    assert set(receiver.ids(delivered_only=False)) == {event_id}


def test_a_worker_killed_before_it_took_the_job_loses_nothing(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, worker_env: dict[str, str]
) -> None:
    event_id = disclose(app)  # queued while no worker runs
    worker = WorkerProcess(worker_env)
    worker.start()
    worker.kill()
    with worker_process(worker_env) as worker:
        until(lambda: event_id in receiver.ids(), "the event delivered", worker)
    worker.close()


def test_events_pending_while_redis_is_flushed_still_go(
    app: Flask,
    client: FlaskClient,
    receiver: EventsReceiver,
    worker_env: dict[str, str],
    redis_url: str,
) -> None:
    sent = {disclose(app) for _ in range(5)}
    redis.Redis.from_url(redis_url).flushall()  # the queued jobs are gone
    with worker_process(worker_env) as worker:
        until(lambda: set(receiver.ids()) == sent, "every event delivered", worker)
        texts = app.extensions["carrier"]
        until(lambda: len(texts.recorded("messages")) == 10, "every notice sent", worker)


def test_two_workers_deliver_every_event_and_notice_exactly_once(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, worker_env: dict[str, str]
) -> None:
    with worker_process(worker_env) as first, worker_process(worker_env) as second:
        sent = [disclose(app) for _ in range(40)]
        until(lambda: len(receiver.ids()) >= 40, "40 events", first)
        texts = app.extensions["carrier"]
        until(lambda: len(texts.recorded("messages")) >= 80, "80 notices", second)
        until(lambda: all_settled(app), "every row settled and the queue empty", first)

    assert sorted(receiver.ids(delivered_only=False)) == sorted(sent)
    told = Counter(t["to"] for t in texts.recorded("messages"))
    assert told == {"+12025550111": 40, "+12025550122": 40}
    for got in receiver.snapshot():
        Webhook(EVENTS_SECRET).verify(got.body, got.headers)


def test_a_receiver_failing_twice_gets_three_attempts_of_one_id(
    app: Flask, client: FlaskClient, receiver: EventsReceiver, worker_env: dict[str, str]
) -> None:
    receiver.answer(500, 500)
    with worker_process(worker_env) as worker:
        event_id = disclose(app)
        until(lambda: event_id in receiver.ids(), "the third attempt", worker)
    got = receiver.snapshot()
    assert [(r.webhook_id, r.status) for r in got] == [
        (event_id, 500),
        (event_id, 500),
        (event_id, 204),
    ]
    # The retries follow EVENTS_RETRY_SCHEDULE (1 s), give or take a sweep (1 s).
    gaps = [later.at - earlier.at for earlier, later in pairwise(got)]
    assert all(0.9 <= gap <= 4 for gap in gaps), gaps
    assert event_row(app, event_id).attempts == 3


def test_a_worker_killed_between_a_codeword_text_and_its_redaction_loses_nothing(
    make_app: Callable[..., Flask],
    worker_env: dict[str, str],
    receiver: EventsReceiver,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> None:
    twilio_url, sent = twilio_recorder
    sent.clear()
    env = {**worker_env, "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_API_BASE_URL": twilio_url}
    app = make_app(queue_async=True, **env)
    client = app.test_client()
    assert put_practice(client, "p-1", codeword=CODEWORD).status_code == 201
    put_user(client, "p-1", "u-1", cell_number="+12025550111", cell_number_verified=True)
    with worker_process(env) as worker:
        asked = client.post(
            "/api/v1/codeword-texts",
            json={"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"},
            headers=SUPPORT,
        )
        assert asked.status_code == 202
        until(lambda: len(sent) == 1, "the codeword text", worker)
        callback = urlsplit(sent[0].form["StatusCallback"])

        def sent_sid() -> str | None:
            events = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT).get_json()
            return next((e["reference"] for e in events["events"] if e["outcome"] == "sent"), None)

        until(lambda: sent_sid() is not None, "the text audited as sent", worker)
        sid = sent_sid()
        # Twilio takes its time over the redaction: the worker is killed while it waits.
        sent.queue_response(200, {}, delay=3.0)
        form = {"MessageSid": sid, "MessageStatus": "delivered", "To": "+12025550111"}
        post_signed(client, f"{callback.path}?{callback.query}", form)
        until(lambda: len(sent) == 2, "the first redaction request", worker)
        worker.kill()
        with app.app_context():
            assert ("redaction", "pending", 1) in list(queue.outbox().counts())

        worker.start()
        until(lambda: len(sent) == 3, "the redaction again", worker)
        until(lambda: ("redaction", "redacted", 1) in counts(app), "the redaction recorded", worker)
    redactions = [r for r in sent if r.form_lists == {"Body": [""]}]
    assert [r.path.endswith(f"/Messages/{sid}.json") for r in redactions] == [True, True]
    # The main application heard of the text, and of its delivery, from the worker.
    types = [json.loads(r.body)["type"] for r in receiver.snapshot()]
    assert sorted(types) == ["codeword.disclosed", "codeword_text.completed"]


def counts(app: Flask) -> list[tuple[str, str, int]]:
    with app.app_context():
        return list(queue.outbox().counts())
