"""Redis, the database and Twilio's API failing under a running app, and recovering.

Each test sets the scene (a call waiting for its code, a text waiting for its
delivery report), breaks one dependency, sends every Twilio webhook and calls every
JSON API, then repairs the dependency and drives a call and a text through the very
same app object: no restart, no reconnect by hand.
"""

from __future__ import annotations

import contextlib
import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask

from core import queue
from core.carrier import TwilioCarrier
from core.rate_limits import codeword_texts_to
from devservers.postgres_server import PostgresProcess, postgres_available
from devservers.redis_server import RedisProcess
from sms.messages import Texts
from tests.faults import (
    ADMIN_CELL,
    SECOND_ADMIN_CELL,
    Scene,
    a_wrong_code,
    api_probes,
    call_api,
    calls_placed,
    check_api_down,
    check_recovered,
    check_webhook,
    post_webhook,
    redis_busy,
    redis_paused,
    set_scene,
    texts_sent,
    webhook_probes,
)
from tests.helpers import SUPPORT, TWILIO_AUTH_TOKEN
from tests.twilio_fake import TwilioRecorder
from tests.voice import ACCOUNT_SID, CODEWORD, OUR_NUMBER, hangs_up, said, spellings
from tests.workers import work

SceneMaker = Callable[..., Scene]


@pytest.fixture
def make_scene(
    make_app: Callable[..., Flask], twilio_recorder: tuple[str, TwilioRecorder]
) -> SceneMaker:
    """The scene on an app built like production's: Twilio's client, through Prism."""
    twilio_url, sent = twilio_recorder

    def build(**env: str) -> Scene:
        sent.clear()
        while sent.next_canned() is not None:
            pass
        app = make_app(
            queue_async=True, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE_URL=twilio_url, **env
        )
        return set_scene(app, sent)

    return build


def exercise(scene: Scene, broken: str, *, codeword_allowed: bool = False) -> dict[str, ET.Element]:
    """Every webhook answers TwiML within a second and reveals nothing; every API that
    needs ``broken`` answers 502 (Twilio) or 503 (Redis, database) with Retry-After.

    Returns each webhook's TwiML by probe name, once the worker has done what the
    webhooks and APIs left it (still within the fault; with Redis down, nothing reached
    the queue).
    """
    answers: dict[str, ET.Element] = {}
    for probe in webhook_probes(scene):
        response, elapsed = post_webhook(scene.client, probe)
        answers[probe.name] = check_webhook(
            scene, probe, response, elapsed, codeword_allowed=codeword_allowed
        )
    for probe in api_probes(scene):
        response = call_api(scene.client, probe)
        if broken in probe.needs:
            check_api_down(scene, probe, response, 502 if broken == "twilio" else 503)
        else:
            assert response.status_code == probe.healthy, f"{probe.name}: {response.data!r}"
    if broken != "redis":
        work(scene.app)
    return answers


def nothing_sent(scene: Scene) -> None:
    """No call was placed and no text sent while the fault lasted."""
    assert calls_placed(scene.sent) == []
    assert texts_sent(scene.sent) == []


# Redis ----------------------------------------------------------------------------------


def test_redis_stopped_mid_call_answers_apologies_and_503s_then_recovers(
    make_scene: SceneMaker, redis_process: RedisProcess
) -> None:
    scene = make_scene()
    redis_process.stop()
    try:
        exercise(scene, "redis")
        nothing_sent(scene)
    finally:
        redis_process.start()
    # Redis came back empty (no persistence in tests): the call it held is forgotten.
    check_recovered(scene, call_forgotten=True)


def test_redis_killed_mid_call_is_the_same_as_stopped(
    make_scene: SceneMaker, redis_process: RedisProcess
) -> None:
    scene = make_scene()
    redis_process.stop(kill=True)
    try:
        exercise(scene, "redis")
    finally:
        redis_process.start()
    check_recovered(scene, call_forgotten=True)


def test_redis_paused_answers_within_a_second_then_the_same_call_carries_on(
    make_scene: SceneMaker, redis_url: str
) -> None:
    """Redis holding every command (CLIENT PAUSE) is met by the 0.25 s socket timeout."""
    scene = make_scene()
    with redis_paused(redis_url, seconds=8):
        exercise(scene, "redis")
        nothing_sent(scene)
    check_recovered(scene)
    # Nothing keyed in while Redis was paused reached it: the code still works.
    reading = scene.call.press(scene.challenge_code)
    assert len(spellings(reading)) == 2


def test_redis_busy_answers_within_a_second_and_recovers(
    make_scene: SceneMaker, redis_url: str
) -> None:
    """A slow script holds Redis's only thread; what the app sent meanwhile runs later.

    (Past 5 s Redis answers BUSY at once instead of not at all: still unavailable.)
    """
    scene = make_scene()
    with redis_busy(redis_url, seconds=8):
        exercise(scene, "redis")
        nothing_sent(scene)
    check_recovered(scene)


def test_a_code_check_that_reaches_a_busy_redis_late_reads_nothing_and_is_spent(
    make_scene: SceneMaker, redis_url: str
) -> None:
    """The webhook gives up after 0.25 s and apologises; Redis runs the check when it is
    free again, which uses the code up: nothing is read out then or after."""
    scene = make_scene()
    code_url = scene.call.gather_action
    assert code_url is not None
    # A first (wrong) code: the check's script is now cached, as in any running service.
    scene.call.press(a_wrong_code(scene.challenge_code))
    with redis_busy(redis_url, seconds=1):
        apology = scene.call.post(code_url, Digits=scene.challenge_code)
    assert "sorry" in said(apology).lower() and spellings(apology) == []
    again = scene.call.post(code_url, Digits=scene.challenge_code)
    assert spellings(again) == [] and hangs_up(again)
    events = scene.client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT).get_json()
    assert [e for e in events["events"] if e["outcome"] == "disclosed"] == []


# The database ---------------------------------------------------------------------------


def test_the_sqlite_database_gone_answers_apologies_and_503s_then_recovers(
    make_scene: SceneMaker, tmp_path: Path
) -> None:
    """The database's folder disappears and every pooled connection with it."""
    folder = tmp_path / "db"
    folder.mkdir()
    scene = make_scene(DATABASE_URL=f"sqlite:///{folder / 'directory.sqlite3'}")
    moved = tmp_path / "db-away"
    folder.rename(moved)
    scene.app.extensions["directory"].engine.dispose()
    try:
        exercise(scene, "database")
        assert texts_sent(scene.sent) == []
    finally:
        moved.rename(folder)
    check_recovered(scene)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresProcess]:
    if not postgres_available():
        pytest.skip("PostgreSQL is not installed")
    with PostgresProcess() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresProcess) -> Iterator[str]:
    """A fresh database on the shared server, dropped afterwards."""
    if not postgres.running:
        postgres.start()
    name = "directory_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres.url.rsplit("/", 1)[0] + "/" + name
    if not postgres.running:
        postgres.start()
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_postgresql_stopped_answers_apologies_and_503s_then_recovers(
    make_scene: SceneMaker, postgres: PostgresProcess, postgres_url: str
) -> None:
    """A real PostgreSQL shut down under the pool, then started again."""
    scene = make_scene(DATABASE_URL=postgres_url)
    postgres.stop()
    try:
        exercise(scene, "database")
        assert texts_sent(scene.sent) == []
    finally:
        postgres.start()
    check_recovered(scene)
    scene.app.extensions["directory"].engine.dispose()


# Twilio's API ---------------------------------------------------------------------------


@contextlib.contextmanager
def twilio_failing(sent: TwilioRecorder, status: int = 0, delay: float = 0) -> Iterator[None]:
    """Twilio answers every request with ``status``, or only after ``delay`` seconds."""
    for _ in range(20):
        if delay:
            sent.queue_response(201, {}, delay=delay)
        else:
            sent.queue_error(status=status, code=20500, message="Internal Server Error")
    try:
        yield
    finally:
        while sent.next_canned() is not None:
            pass


def voice_carries_on(scene: Scene) -> None:
    """The call needs nothing from Twilio's API: the right code read the codeword."""
    # The last code the scene's call took was the right one (see webhook_probes).
    reading = scene.call.post(scene.repeat_url, Digits="1")
    assert len(spellings(reading)) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_twilio_failing_leaves_the_webhooks_and_apis_answering_then_recovers(
    make_scene: SceneMaker, status: int
) -> None:
    scene = make_scene()
    with twilio_failing(scene.sent, status=status):
        exercise(scene, "twilio", codeword_allowed=True)
    voice_carries_on(scene)
    check_recovered(scene)


def sms_events(scene: Scene) -> list[dict[str, Any]]:
    response = scene.client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT)
    return [e for e in response.get_json()["events"] if e["channel"] == "sms"]


def codeword_texts_left(scene: Scene, number: str) -> int:
    """Codeword texts ``number`` may still get within SMS_CODEWORD_TEXTS_PER_NUMBER."""
    with scene.app.app_context():
        batch = scene.app.extensions["limiter"].batch()
        [window] = [batch.window(rule) for rule in codeword_texts_to(number)]
        batch.execute()
    return int(window.value.remaining)


def json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def reply(answer: ET.Element) -> str | None:
    message = answer.find("Message")
    return None if message is None else message.text


def test_twilio_not_answering_in_time_holds_no_webhook_and_the_worker_records_it(
    make_scene: SceneMaker,
    twilio_recorder: tuple[str, TwilioRecorder],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Twilio holds every request past the carrier's read timeout (shortened here). No
    webhook or API waits for Twilio: the worker does, and what it leaves behind is what a
    late Twilio leaves."""
    scene = make_scene(SMS_CODEWORD_TEXTS_PER_NUMBER="3/hour")
    connect, read = 0.5, 1.2
    scene.app.extensions["carrier"] = TwilioCarrier(
        ACCOUNT_SID, TWILIO_AUTH_TOKEN, OUR_NUMBER, twilio_recorder[0], timeout=(connect, read)
    )
    with twilio_failing(scene.sent, delay=3):
        answers = exercise(scene, "twilio", codeword_allowed=True)
    assert reply(answers["an admin texts CODEWORD"]) is None  # the text comes by REST
    assert reply(answers["Twilio reports the codeword text delivered"]) is None
    # The admin's text may have gone: audited as unconfirmed and counted, as is support's.
    [keyword_text] = [e for e in sms_events(scene) if e["actor"] == "self"]
    assert (keyword_text["outcome"], keyword_text["to"]) == ("unconfirmed", "+1******0111")
    assert codeword_texts_left(scene, ADMIN_CELL) == 1
    # The delivered text's body stays at Twilio for now, and its own log line says so.
    log = capsys.readouterr().err
    [redaction] = [line for line in json_lines(log) if "redacted" in line["msg"]]
    assert redaction["msg"].startswith(
        f"codeword text {scene.message_sid} to +1******0112 not redacted: carrier_unavailable;"
    )
    assert (redaction["level"], redaction["message_sid"]) == ("error", scene.message_sid)
    with scene.app.app_context():
        assert ("redaction", "pending", 1) in list(queue.outbox().counts())
    assert CODEWORD not in log
    voice_carries_on(scene)
    check_recovered(scene)


def test_twilio_answering_late_holds_no_webhook_and_the_text_goes_with_its_notice(
    make_scene: SceneMaker,
) -> None:
    """Production's timeouts; Twilio takes the admin's codeword text and confirms it after
    2 s. The webhook answers at once; the worker sends the text all the same, then the
    notice to the other admin."""
    scene = make_scene(SMS_CODEWORD_TEXTS_PER_NUMBER="1/hour")
    [probe] = [p for p in webhook_probes(scene) if p.name == "an admin texts CODEWORD"]
    sid = "SM" + "b" * 32
    scene.sent.queue_response(201, {"sid": sid, "status": "queued"}, delay=2)
    try:
        response, elapsed = post_webhook(scene.client, probe)
        answer = check_webhook(scene, probe, response, elapsed)
        assert reply(answer) is None
        work(scene.app)
    finally:
        while scene.sent.next_canned() is not None:
            pass
    codeword_text, notice = texts_sent(scene.sent)
    assert codeword_text.form["To"] == ADMIN_CELL and CODEWORD in codeword_text.form["Body"]
    assert notice.form["To"] == SECOND_ADMIN_CELL and CODEWORD not in notice.form["Body"]
    assert "texted to +1******0111" in notice.form["Body"]
    [event] = [e for e in sms_events(scene) if e["actor"] == "self"]
    assert (event["outcome"], event["reference"]) == ("sent", sid)
    # Counted: the number's one text an hour is spent.
    assert codeword_texts_left(scene, ADMIN_CELL) == 0
    again = check_webhook(scene, probe, *post_webhook(scene.client, probe))
    assert reply(again) == Texts.from_config(scene.app.config).limit_reached
    work(scene.app)
    assert len(texts_sent(scene.sent)) == 2
