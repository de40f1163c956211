"""Logs are JSON lines with correlation fields; /metrics sums every gunicorn worker."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from devservers.gunicorn_server import gunicorn_server
from tests.helpers import (
    ADMIN,
    METRICS,
    METRICS_TOKEN,
    PUBLIC_BASE_URL,
    post_signed,
    put_practice,
    twilio_signature,
)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_each_request_logs_one_json_line_with_its_request_id_and_call_sid(
    client: FlaskClient, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    response = post_signed(
        client, "/ivr/inbound", {"CallSid": "CA" + "7" * 32, "From": "+12025550100"}
    )
    lines = [e for e in json_lines(capfd.readouterr().err) if e["msg"] == "request"]
    assert len(lines) == 1
    (line,) = lines
    assert line["request_id"] == response.headers["X-Request-Id"]
    assert line["call_sid"] == "CA" + "7" * 32
    assert line["status"] == 200
    assert line["path"] == "/ivr/inbound"


def test_a_sane_request_id_from_the_caller_is_kept(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": "help-desk-12345"})
    assert response.headers["X-Request-Id"] == "help-desk-12345"
    odd = client.get("/healthz", headers={"X-Request-Id": "<script>"})
    assert re.fullmatch(r"[0-9a-f]{16}", odd.headers["X-Request-Id"])


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_logs_never_carry_the_query_string_or_the_codeword(
    log_format: str, make_app: Callable[..., Flask], capfd: pytest.CaptureFixture[str]
) -> None:
    client = make_app(LOG_FORMAT=log_format).test_client()
    put_practice(client, codeword="maple-otter-47")
    client.get("/api/v1/practices/p-1/codeword?x=secret-query", headers=ADMIN)
    err = capfd.readouterr().err
    assert "/api/v1/practices/p-1/codeword" in err
    assert "maple-otter-47" not in err
    assert "secret-query" not in err


def test_text_lines_say_time_method_path_status_duration_and_outcome(
    make_app: Callable[..., Flask], capfd: pytest.CaptureFixture[str]
) -> None:
    client = make_app(LOG_FORMAT="text").test_client()
    capfd.readouterr()
    post_signed(client, "/sms/inbound", {"From": "+12025550199", "Body": "HELP"})
    client.get("/healthz%0Aforged%E2%80%A8line")
    lines = capfd.readouterr().err.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d POST /sms/inbound -> 200 in \d+ ms \(help\)", lines[0])
    # A line break in a path cannot start a line of its own.
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d GET /healthz\\nforged\\u2028line -> 404 in \d+ ms", lines[1]
    ), lines
    assert len(lines) == 2


def test_development_logs_text_and_production_json_unless_log_format_says(
    make_app: Callable[..., Flask],
) -> None:
    from core.config import load_config

    assert make_app(LOG_FORMAT=None).config["LOG_FORMAT"] == "text"
    assert make_app(LOG_FORMAT="JSON").config["LOG_FORMAT"] == "json"
    with pytest.raises(Exception, match="LOG_FORMAT must be json or text"):
        make_app(LOG_FORMAT="xml")
    production = {
        "APP_ENV": "production",
        **{name: "x" for name in ("SECRET_KEY", "TWILIO_AUTH_TOKEN")},
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        **{name: "x" for name in ("PUBLIC_BASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_FROM_NUMBER")},
        "CODEWORD_KEYS": Fernet.generate_key().decode(),
    }
    assert load_config(production, Path("/nonexistent"))["LOG_FORMAT"] == "json"
    assert load_config({**production, "LOG_FORMAT": "text"}, Path("/x"))["LOG_FORMAT"] == "text"


def test_metrics_are_summed_over_gunicorn_workers(tmp_path: Path, redis_url: str) -> None:
    env = {
        "SECRET_KEY": "k",
        "CODEWORD_KEYS": Fernet.generate_key().decode(),
        "TWILIO_AUTH_TOKEN": "tok",
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "WEB_CONCURRENCY": "2",
        "METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    form = {"CallSid": "CA" + "1" * 32, "From": "+12025550100"}
    headers = {
        "X-Twilio-Signature": twilio_signature(PUBLIC_BASE_URL + "/ivr/inbound", form, "tok")
    }
    with gunicorn_server(env) as url:
        for _ in range(12):
            # A new connection each time, so both workers take some.
            with requests.Session() as session:
                assert (
                    session.post(f"{url}/ivr/inbound", data=form, headers=headers).status_code
                    == 200
                )
        text = requests.get(f"{url}/metrics", headers=METRICS, timeout=5).text
    count = re.search(r'codeword_webhook_seconds_count\{endpoint="ivr.inbound"\} (\S+)', text)
    assert count is not None, text
    assert float(count.group(1)) == 12


def test_a_webhook_too_large_to_read_is_refused_413_and_logged_once(
    app: Flask, capfd: pytest.CaptureFixture[str]
) -> None:
    """The request log line reads no form it cannot read: no error, no missing line."""
    app.config["TESTING"] = False
    client = app.test_client()
    capfd.readouterr()
    form = {"From": "+12025550111", "Body": "9" * (app.config["MAX_CONTENT_LENGTH"] + 1)}
    response = post_signed(client, "/sms/inbound", form)
    assert response.status_code == 413
    logged = json_lines(capfd.readouterr().err)
    assert [(e["level"], e["msg"], e.get("status")) for e in logged] == [("info", "request", 413)]
