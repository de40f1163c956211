"""Structured logs and Prometheus metrics.

Log lines are JSON with a request id, the CallSid or MessageSid, and the outcome
the handler noted (``LOG_FORMAT=json``, production's default), or one short line
a person reads at a glance (``text``, development's default). Either way they
never carry a request's query string, body or headers: those can hold signed
tokens, codes or the codeword.

Metrics work under several gunicorn workers: gunicorn.conf.py sets
``PROMETHEUS_MULTIPROC_DIR`` before anything imports prometheus_client, and
``/metrics`` then aggregates every worker's values.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import sys
import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from werkzeug.exceptions import HTTPException

from core.errors import NotFound, Unauthorized
from core.webhooks import is_twilio_webhook

CALLS_TRIGGERED = Counter(
    "codeword_verification_calls_total", "Verification calls placed", ["purpose"]
)
DISCLOSURES = Counter("codeword_disclosures_total", "Codeword disclosures", ["channel"])
LOCKOUTS = Counter("codeword_lockouts_total", "Challenges locked after too many wrong codes")
RATE_LIMITED = Counter("codeword_rate_limited_total", "Requests refused by a rate limit", ["scope"])
WEBHOOK_SECONDS = Histogram(
    "codeword_webhook_seconds",
    "Time to answer a Twilio webhook",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

_REQUEST_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def note_outcome(outcome: str) -> None:
    """Record what this request achieved, for its log line (e.g. ``disclosed``)."""
    g.outcome = outcome


# C1 controls (U+0085 NEXT LINE among them) and the Unicode line and paragraph
# separators, as JSON escapes: a forged value can then never start a log line of its own.
_LINE_BREAKS_ESCAPED = {c: f"\\u{c:04x}" for c in [*range(0x80, 0xA0), 0x2028, 0x2029]}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request's correlation fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in ("request_id", "call_sid", "message_sid", "method", "path", "status",
                      "duration_ms", "outcome", "endpoint"):  # fmt: skip
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: a message or traceback could quote a secret.
            entry["exception"] = record.exc_info[0].__name__
        # JSON escapes only controls below U+0020; these others end a line for some readers.
        return json.dumps(entry, ensure_ascii=False).translate(_LINE_BREAKS_ESCAPED)


def _printable(value: object) -> str:
    """``value`` on one line: line breaks and other unprintable characters escaped."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class TextFormatter(logging.Formatter):
    """One short line per record, for a person watching a development console.

    A request reads ``17:02:41 POST /ivr/verification/code -> 200 in 4 ms (disclosed)``;
    anything else ``17:02:41 WARNING codeword.sms: ...``. The same fields as the JSON
    lines, fewer of them, so it carries no secret the JSON lines would not.
    """

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        method, path = getattr(record, "method", None), getattr(record, "path", None)
        if record.getMessage() == "request" and method and path:
            line = (
                f"{clock} {method} {path} -> {getattr(record, 'status', '?')}"
                f" in {getattr(record, 'duration_ms', 0):.0f} ms"
            )
            outcome = getattr(record, "outcome", None)
            if outcome:
                line += f" ({outcome})"
        else:
            line = f"{clock} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            # The type only, as in the JSON lines.
            line += f" [{record.exc_info[0].__name__}]"
        return _printable(line)


FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, not at creation."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", log_format: str = "json") -> None:
    """Send every log record to stderr, a line each, as JSON or as text (``LOG_FORMAT``).

    Our lines carry neither the calling function nor the thread, so the logging
    module is told not to gather them for every record (the switches its
    documentation gives for this, under "Optimization"). The process id stays:
    gunicorn's own lines print it (``%(process)d``), and fail without it.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = _StderrHandler()
    handler.setFormatter(FORMATTERS[log_format]())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _request_id() -> str:
    """The caller's X-Request-Id when it is sane, else a new one."""
    given = request.headers.get("X-Request-Id", "")
    if 8 <= len(given) <= 64 and set(given) <= _REQUEST_ID_CHARS:
        return given
    return secrets.token_hex(8)


def _webhook_form() -> Any:
    """The webhook's form if the view read it; never parsed for the log line alone.

    A webhook refused before its form was read (forged, too large) stays cheap.
    """
    if "form" not in request.__dict__:
        return {}
    try:
        return request.form
    except HTTPException:
        return {}


def init_app(app: Flask) -> None:
    """Log one line per request, time webhooks, and serve ``/metrics``."""
    log = logging.getLogger("codeword.request")

    @app.before_request
    def _start() -> None:
        g.request_id = _request_id()
        g.started = time.perf_counter()

    # Each webhook's latency histogram, looked up once rather than per request.
    latency: dict[str, Any] = {}

    @app.after_request
    def _finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        webhook = is_twilio_webhook()
        if webhook and request.endpoint:
            histogram = latency.get(request.endpoint)
            if histogram is None:
                histogram = latency.setdefault(
                    request.endpoint, WEBHOOK_SECONDS.labels(request.endpoint)
                )
            histogram.observe(elapsed)
        form = _webhook_form() if webhook else {}
        log.info(
            "request",
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": request.path,
                "endpoint": request.endpoint,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                "call_sid": form.get("CallSid"),
                "message_sid": form.get("MessageSid"),
                "outcome": g.get("outcome"),
            },
        )
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics, summed over every gunicorn worker; only with METRICS_TOKEN."""
        _require_metrics_token()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = REGISTRY
        body = generate_latest(registry)
        # The background work's gauges, read from SQL and the queue at each scrape.
        from core import outbox_metrics, queue

        body += outbox_metrics.render(queue.outbox(), queue.queue())
        return Response(body, mimetype=CONTENT_TYPE_LATEST)


def _require_metrics_token() -> None:
    """404 while ``METRICS_TOKEN`` is unset; 401 unless the request bears it.

    The counters tell which numbers are verified admin cells (a disclosure moves after a
    forged CODEWORD text), so they are for the operator's scraper alone.
    """
    expected = current_app.config.get("METRICS_TOKEN")
    if not expected:
        raise NotFound("not found")
    kind, _, presented = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise Unauthorized("the metrics token is required")
