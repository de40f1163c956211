"""Redis and PostgreSQL restarted under gunicorn: the workers answer meanwhile and recover alone.

Every request goes on a new connection, so both workers take a share of the outage
and of the recovery; nothing restarts them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from devservers.gunicorn_server import gunicorn
from devservers.postgres_server import PostgresProcess, postgres_available
from devservers.redis_server import RedisProcess
from tests.faults import INTERNALS, a_wrong_code, texts_sent
from tests.gunicorn_flows import HttpCall, Twilio, api, production_env, request_call, seed
from tests.helpers import SUPPORT
from tests.twilio_fake import TwilioRecorder
from tests.voice import CODEWORD, OFFICE, spellings
from tests.workers import worker_process

DANA = "+12025550111"
# Requests on new connections per check: enough that both workers take some.
ROUNDS = 6


def check_outage(url: str, twilio: Twilio, call: HttpCall, code_url: str, code: str) -> None:
    """Webhooks: TwiML within a second, nothing secret; APIs: 503 with Retry-After."""
    for _ in range(ROUNDS // 2):
        for send in (
            lambda: twilio.post(code_url, call.form(Digits=code)),
            lambda: twilio.text(DANA, "CODEWORD"),
        ):
            started = time.monotonic()
            exchange = send()
            assert time.monotonic() - started < 1
            assert CODEWORD not in exchange.body and code not in exchange.body
            assert spellings(exchange.twiml) == []
            assert not INTERNALS.search(exchange.body)
        asked = api(
            "POST",
            f"{url}/api/v1/verification-calls",
            SUPPORT,
            {"practice_id": "p-1", "requested_by": "Dr. Ana Ruiz"},
        )
        assert asked.status_code == 503 and int(asked.headers["Retry-After"]) > 0
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 503


def check_recovery(url: str, twilio: Twilio, sent: TwilioRecorder) -> None:
    """Every worker ready again; a call reads the codeword, a text carries it."""
    for _ in range(ROUNDS):
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
    sent.clear()
    asked, call = request_call(url, sent, twilio, "p-1", OFFICE)
    assert call is not None, asked.text
    call.answer()
    call.press(a_wrong_code(asked.json()["challenge_code"]))
    assert len(spellings(call.press(asked.json()["challenge_code"]))) == 2
    call.status("completed")
    for _ in range(2):
        twilio.text(DANA, "CODEWORD")

    def codeword_texts() -> list[str]:
        return [t.form["To"] for t in texts_sent(sent) if CODEWORD in t.form["Body"]]

    # The worker sends them, once the queue's Redis answers again.
    deadline = time.monotonic() + 30
    while len(codeword_texts()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert codeword_texts() == [DANA, DANA]


Outage = Callable[[], None]


def survive(
    env: dict[str, str],
    sent: TwilioRecorder,
    stop: Outage,
    start: Outage,
    call_survives: bool,
) -> None:
    """Start a call, stop the dependency mid-call, check the outage, start it, check recovery."""
    with gunicorn(env) as server, worker_process(env):
        url = server.url
        twilio = Twilio(url)
        seed(url, CODEWORD, "(202) 555-0100", {"u-1": DANA})
        asked, call = request_call(url, sent, twilio, "p-1", OFFICE)
        assert call is not None, asked.text
        call.answer()
        assert call.gather_action is not None
        stop()
        try:
            check_outage(url, twilio, call, call.gather_action, asked.json()["challenge_code"])
        finally:
            start()
        if call_survives:
            # The call the outage interrupted is still open; the practice's one live call.
            call.status("completed")
        check_recovery(url, twilio, sent)


@pytest.fixture
def sent(twilio_recorder: tuple[str, TwilioRecorder]) -> TwilioRecorder:
    twilio_recorder[1].clear()
    return twilio_recorder[1]


def test_gunicorn_workers_ride_out_a_redis_restart(
    tmp_path: Path,
    redis_process: RedisProcess,
    redis_url: str,
    twilio_recorder: tuple[str, TwilioRecorder],
    sent: TwilioRecorder,
) -> None:
    env = production_env(
        redis_url,
        f"sqlite:///{tmp_path / 'directory.sqlite3'}",
        twilio_recorder[0],
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    survive(env, sent, redis_process.stop, redis_process.start, call_survives=False)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresProcess]:
    if not postgres_available():
        pytest.skip("PostgreSQL is not installed")
    with PostgresProcess() as server:
        yield server


def test_gunicorn_workers_ride_out_a_postgresql_restart(
    tmp_path: Path,
    postgres: PostgresProcess,
    redis_url: str,
    twilio_recorder: tuple[str, TwilioRecorder],
    sent: TwilioRecorder,
) -> None:
    name = "directory_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    env = production_env(
        redis_url,
        postgres.url.rsplit("/", 1)[0] + "/" + name,
        twilio_recorder[0],
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    try:
        survive(env, sent, postgres.stop, postgres.start, call_survives=True)
    finally:
        if not postgres.running:
            postgres.start()
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
