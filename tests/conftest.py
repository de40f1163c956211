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
from tests.redis_topologies import RedisClusterProcesses, SentinelProcesses
from tests.twilio_fake import TwilioRecorder, recording_fake
from tests.voice import Clock

# A developer's .env (development settings, perhaps a real Twilio account) must not reach
# the apps, gunicorns and flask commands the tests start: Flask's own switch, which
# gunicorn.conf.py honours too.
os.environ["FLASK_SKIP_DOTENV"] = "1"


TOPOLOGIES = ("single", "cluster", "sentinel")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-topologies",
        default="single",
        help="tests marked redis_topologies run on each of these Redis setups: "
        "comma-separated single, cluster, sentinel, or all (default: single)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "redis_topologies: run on every Redis setup --redis-topologies names "
        "(one server, a 3-master cluster, Sentinel)",
    )


def chosen_topologies(config: pytest.Config) -> list[str]:
    raw = str(config.getoption("--redis-topologies"))
    chosen = list(TOPOLOGIES) if raw == "all" else [t.strip() for t in raw.split(",") if t.strip()]
    unknown = set(chosen) - set(TOPOLOGIES)
    if unknown or not chosen:
        raise pytest.UsageError(f"--redis-topologies takes {', '.join(TOPOLOGIES)} or all")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Marked tests that use Redis run once per chosen topology."""
    if "redis_topology" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("redis_topologies") is None:
        return
    if "redis_process" in metafunc.fixturenames:
        # It stops or restarts the one server itself: a single-server test.
        return
    chosen = chosen_topologies(metafunc.config)
    if chosen != ["single"]:
        metafunc.parametrize("redis_topology", chosen)


@pytest.fixture(scope="session")
def redis_process() -> Iterator[RedisProcess]:
    """One real redis-server for the whole run."""
    with RedisProcess() as process:
        yield process


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterProcesses]:
    """A 3-master Redis Cluster, started the first time a test asks for it."""
    with RedisClusterProcesses() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelProcesses]:
    """A primary, its replica and three sentinels, started the first time a test asks."""
    with SentinelProcesses() as sentinel:
        yield sentinel


@pytest.fixture
def redis_topology() -> str:
    """Which Redis setup the test runs on; marked tests are parametrised over several."""
    return "single"


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, redis_topology: str) -> Iterator[str]:
    """The test Redis, flushed before and after each test (restarted if a test stopped it)."""
    if redis_topology != "single":
        topology = request.getfixturevalue(f"redis_{redis_topology}")
        topology.client().flushdb()
        yield topology.url
        topology.client().flushdb()
        return
    redis_process: RedisProcess = request.getfixturevalue("redis_process")
    if not redis_process.running:
        redis_process.start()
    # The service's 0.25 s timeout is for webhooks; emptying Redis on a busy machine may take longer.
    client = connect(redis_process.url, socket_timeout=5)
    client.flushdb()
    yield redis_process.url
    if not redis_process.running:
        redis_process.start()
    connect(redis_process.url, socket_timeout=5).flushdb()


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return connect(redis_url)


@pytest.fixture(scope="session")
def prism_url() -> Iterator[str]:
    """Prism answering from Twilio's own OpenAPI description."""
    with prism() as url:
        yield url


@pytest.fixture
def base_env(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, redis_topology: str
) -> dict[str, str]:
    """The environment a test app is built from, as in production but for secrets."""
    queue: dict[str, str] = {}
    if redis_topology == "cluster":
        # The queue cannot live on a cluster: the single test Redis holds it.
        queue["QUEUE_REDIS_URL"] = request.getfixturevalue("redis_process").url
    return {
        **queue,
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
        unset = ["APP_ENV", "TWILIO_ACCOUNT_SID", "TWILIO_API_BASE_URL", "QUEUE_REDIS_URL"]
        for name in [*list(base_env), *unset]:
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
