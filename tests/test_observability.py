"""Logs are JSON lines with correlation fields; /metrics sums every gunicorn worker."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from devservers.gunicorn_server import gunicorn_server
from tests.helpers import ADMIN, PUBLIC_BASE_URL, post_signed, put_practice, twilio_signature


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


def test_logs_never_carry_the_query_string_or_the_codeword(
    client: FlaskClient, capfd: pytest.CaptureFixture[str]
) -> None:
    put_practice(client, codeword="maple-otter-47")
    client.get("/api/v1/practices/p-1/codeword?x=secret-query", headers=ADMIN)
    err = capfd.readouterr().err
    assert "maple-otter-47" not in err
    assert "secret-query" not in err


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
        text = requests.get(f"{url}/metrics", timeout=5).text
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
