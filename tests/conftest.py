"""Shared fixtures: a real Redis, Prism, the app built from environment variables.

Helpers tests import (tokens, signing, admin API calls) live in tests/helpers.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from devservers.prism_server import prism
from devservers.redis_server import RedisProcess
from service import create_app
from store.redis_client import connect
from tests.helpers import (
    ADMIN_TOKEN,
    METRICS_TOKEN,
    PUBLIC_BASE_URL,
    SUPPORT_TOKEN,
    TWILIO_AUTH_TOKEN,
)
from tests.twilio_fake import TwilioRecorder, recording_fake
from tests.voice import Clock

# A developer's .env (development settings, perhaps a real Twilio account) must not reach
# the apps, gunicorns and flask commands the tests start: Flask's own switch, which
# gunicorn.conf.py honours too.
os.environ["FLASK_SKIP_DOTENV"] = "1"


@pytest.fixture(scope="session")
def redis_process() -> Iterator[RedisProcess]:
    """One real redis-server for the whole run."""
    with RedisProcess() as process:
        yield process


@pytest.fixture
def redis_url(redis_process: RedisProcess) -> Iterator[str]:
    """The test Redis, flushed before and after each test (restarted if a test stopped it)."""
    if not redis_process.running:
        redis_process.start()
    client = connect(redis_process.url)
    client.flushdb()
    yield redis_process.url
    if not redis_process.running:
        redis_process.start()
    connect(redis_process.url).flushdb()


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return connect(redis_url)


@pytest.fixture(scope="session")
def prism_url() -> Iterator[str]:
    """Prism answering from Twilio's own OpenAPI description."""
    with prism() as url:
        yield url


@pytest.fixture
def base_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The environment a test app is built from, as in production but for secrets."""
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key",
        "CODEWORD_KEYS": Fernet.generate_key().decode(),
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'directory.sqlite3'}",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "ADMIN_TOKENS": f"mainapp={ADMIN_TOKEN}",
        "SUPPORT_TOKENS": f"helpdesk={SUPPORT_TOKEN}",
        "METRICS_TOKEN": METRICS_TOKEN,
        # Tests read the log lines as production writes them.
        "LOG_FORMAT": "json",
    }


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch, base_env: dict[str, str]) -> Callable[..., Flask]:
    """Build an app from ``base_env`` plus overrides (a value of None unsets a variable)."""

    def build(*, queue_async: bool = False, **overrides: str | None) -> Flask:
        """Background jobs run as they are enqueued, inside the request, unless
        ``queue_async``: then they wait in the queue for a worker, as in production."""
        for name in [*list(base_env), "APP_ENV", "TWILIO_ACCOUNT_SID", "TWILIO_API_BASE_URL"]:
            monkeypatch.delenv(name, raising=False)
        env: dict[str, str | None] = {**base_env, **overrides}
        for name, value in env.items():
            if value is not None:
                monkeypatch.setenv(name, value)
        app = create_app({"TESTING": True, "QUEUE_IS_ASYNC": queue_async})
        app.extensions["directory"].create_all()
        return app

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app on the simulated carrier."""
    return make_app()


@pytest.fixture
def twilio_app(make_app: Callable[..., Flask], prism_url: str) -> Flask:
    """The app on the real Twilio client, talking to Prism."""
    return make_app(
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_API_BASE_URL=prism_url,
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def twilio_recorder() -> Iterator[tuple[str, TwilioRecorder]]:
    """Prism checking each request against Twilio's spec, forwarding it to a recording fake."""
    with recording_fake() as (fake_url, sent), prism("proxy", fake_url) as url:
        yield url, sent


@pytest.fixture
def recorded_app(
    make_app: Callable[..., Flask], twilio_recorder: tuple[str, TwilioRecorder]
) -> Flask:
    """The app on the real Twilio client, through Prism to a fake that records each request."""
    twilio_recorder[1].clear()
    return make_app(TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_API_BASE_URL=twilio_recorder[0])


@pytest.fixture
def clock(app: Flask) -> Clock:
    """The clock the call flow and codes run on; tests move it instead of sleeping."""
    clock = Clock()
    app.config["CLOCK"] = clock
    return clock
