"""The benchmark's world: the service's environment, signing as Twilio signs, the servers.

The service and the bare baseline run under gunicorn with the same settings
(gunicorn.conf.py), against a real Redis; every request is signed for the
service's public URL exactly as Twilio signs it.
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet
from flask import Flask
from twilio.request_validator import RequestValidator

from devservers.gunicorn_server import gunicorn_server
from devservers.processes import REPO

PUBLIC_BASE_URL = "https://codeword.example.com"
AUTH_TOKEN = "bench-auth-token"
SECRET_KEY = "bench-secret-key"
ACCOUNT_SID = "AC" + "b" * 32
OUR_NUMBER = "+15005550006"


@dataclass(frozen=True)
class SignedRequest:
    """A webhook request as Twilio would send it: path with query, form, signature."""

    path: str
    form: dict[str, str]
    signature: str


class Setup:
    """Redis, the service's environment, the app (to prepare state) and a signer."""

    def __init__(self, redis_url: str, workdir: Path, database_url: str | None = None) -> None:
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.env = {
            "APP_ENV": "development",
            "SECRET_KEY": SECRET_KEY,
            "CODEWORD_KEYS": Fernet.generate_key().decode(),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": OUR_NUMBER,
            "REDIS_URL": redis_url,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "DATABASE_URL": database_url or f"sqlite:///{workdir / 'bench.sqlite3'}",
            "INSTANCE_PATH": str(workdir / "instance"),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
            # Production's log lines, so the figures hold for production.
            "LOG_FORMAT": "json",
        }
        # Worker settings pass through from the caller's environment.
        for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_WORKER_CLASS"):
            if os.environ.get(name):
                self.env[name] = os.environ[name]
        self.validator = RequestValidator(AUTH_TOKEN)
        self._workdir = workdir
        self._app: Flask | None = None
        self.sessions_made = 0

    def sign(self, path: str, form: dict[str, str]) -> SignedRequest:
        """Sign ``form`` for our public URL + ``path`` exactly as Twilio does."""
        url = PUBLIC_BASE_URL + path
        return SignedRequest(path, form, self.validator.compute_signature(url, form))

    @property
    def app(self) -> Flask:
        """The service, built in this process with the benchmark's environment."""
        if self._app is None:
            # This process's metrics go apart from the servers' (which empty theirs at start).
            own_metrics = self._workdir / "setup-metrics"
            own_metrics.mkdir(exist_ok=True)
            os.environ.update({**self.env, "PROMETHEUS_MULTIPROC_DIR": str(own_metrics)})
            from service import create_app

            self._app = create_app()
            self._app.extensions["directory"].create_all()
        return self._app


def gunicorn_settings(env: dict[str, str]) -> dict[str, Any]:
    """The worker settings gunicorn.conf.py arrives at under ``env``."""
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        conf = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {name: conf.get(name) for name in ("workers", "threads", "worker_class")}


@contextmanager
def services(setup: Setup, workdir: Path) -> Iterator[tuple[str, str]]:
    """The service and the bare baseline, under the same gunicorn settings."""
    bare_env = {**setup.env, "PROMETHEUS_MULTIPROC_DIR": str(workdir / "bare-metrics")}
    with (
        gunicorn_server(setup.env) as service,
        gunicorn_server(bare_env, app="bench.bare_app:app") as bare,
    ):
        yield service, bare
