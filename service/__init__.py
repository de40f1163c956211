"""The application factory: assembles the store, the flows and the APIs into one app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Request
from flask.sessions import SessionInterface

from api.admin import bp as admin_bp
from api.codeword_texts import bp as codeword_texts_bp
from api.events import bp as events_bp
from api.number_verification import bp as number_verification_bp
from api.verification_calls import bp as verification_calls_bp
from console import bp as console_bp
from core import queue
from core.carrier import make_carrier
from core.config import load_config
from core.disclosures import send_notice
from core.errors import register_error_handlers
from core.events import deliver_event
from core.health import bp as health_bp
from core.observability import configure_logging
from core.observability import init_app as init_observability
from core.rate_limits import RateLimits
from ivr.views import bp as ivr_bp
from service.commands import register_commands
from sms.codeword_texts import send_queued_text
from sms.delivery import redact_text
from sms.views import bp as sms_bp
from store.codeword_texts import CodewordTexts
from store.crypto import CodewordCipher
from store.directory import Directory
from store.keys import RATE_LIMITS
from store.outbox_rows import Outbox
from store.ratelimit import RateLimiter
from store.redis_client import connect, limits_storage


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app from the environment; ``config`` overrides it (tests)."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or None,
        static_folder=None,
    )
    app.config.from_mapping(load_config(dict(os.environ), Path(app.instance_path)))
    if config:
        app.config.from_mapping(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # "//" in a path is 404, not an HTML redirect: no identifier is empty.
    app.url_map.merge_slashes = False
    # No cookie sessions: every caller authenticates each request. This also
    # spares each webhook the cost of building a session serializer.
    app.session_interface = _NoSessions()
    configure_logging(app.config.get("LOG_LEVEL", "INFO"), app.config.get("LOG_FORMAT", "json"))

    redis_client = app.config.get("REDIS_CLIENT")
    limits_on = None
    if redis_client is None:
        redis_client = connect(app.config["REDIS_URL"])
        # The rate limits go through limits' own storage for the same URL.
        limits_on = limits_storage(app.config["REDIS_URL"], RATE_LIMITS)
    app.extensions["redis"] = redis_client
    directory = Directory(app.config["DATABASE_URL"], CodewordCipher(app.config["CODEWORD_KEYS"]))
    app.extensions["directory"] = directory
    app.extensions["outbox"] = Outbox(directory.session)
    app.extensions["codeword_texts"] = CodewordTexts(directory.session)
    app.extensions["queue"] = queue.make_queue(
        queue.connect(app.config["QUEUE_REDIS_URL"]),
        # Tests may run each job as it is enqueued, inside the request (RQ's is_async=False).
        is_async=app.config.get("QUEUE_IS_ASYNC", True),
    )
    # The job that works each kind of outbox row (core/queue.py enqueues them).
    app.extensions["outbox_jobs"] = {
        "text": send_queued_text,
        "event": deliver_event,
        "notice": send_notice,
        "redaction": redact_text,
    }
    app.extensions["limiter"] = RateLimiter(redis_client, limits_on)
    app.extensions["rate_limits"] = RateLimits(app.config)
    app.extensions["carrier"] = app.config.get("CARRIER") or make_carrier(app.config, redis_client)

    register_error_handlers(app)
    init_observability(app)
    for blueprint in (
        health_bp,
        admin_bp,
        events_bp,
        ivr_bp,
        sms_bp,
        codeword_texts_bp,
        verification_calls_bp,
        number_verification_bp,
        console_bp,
    ):
        app.register_blueprint(blueprint)
    register_commands(app)
    return app


class _NoSessions(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> None:
        return None
