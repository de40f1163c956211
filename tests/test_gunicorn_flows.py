"""Whole flows under gunicorn with two workers, then its logs and metrics read back.

One run (module-scoped, it takes a few seconds) covers a verification call to the
codeword and one to lockout, a refused third call, a CODEWORD text and its delivery
report, a support codeword text and its report, a CODEWORD text over the limit, HELP,
and the main application reading the codeword. The tests then read what the master
and the workers wrote to stderr, and what ``/metrics`` sums over both workers.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devservers.gunicorn_server import gunicorn
from devservers.redis_server import RedisProcess
from store.redis_client import connect
from tests.faults import a_wrong_code
from tests.gunicorn_flows import (
    SECRET_KEY,
    TWILIO_TOKEN,
    Exchange,
    Twilio,
    api,
    json_lines,
    production_env,
    request_call,
    seed,
)
from tests.helpers import ADMIN, ADMIN_TOKEN, METRICS, SUPPORT, SUPPORT_TOKEN
from tests.twilio_fake import TwilioRecorder
from tests.voice import ACCOUNT_SID, CODEWORD, OFFICE, OUR_NUMBER, spellings
from tests.workers import worker_process

DANA = "+12025550111"
SAM = "+12025550112"
STRANGER = "+12025550199"
ENDPOINTS = {
    "/ivr/inbound": "ivr.inbound",
    "/ivr/verification/answer": "ivr.verification_answer",
    "/ivr/verification/code": "ivr.verification_code",
    "/ivr/verification/repeat": "ivr.verification_repeat",
    "/ivr/verification/status": "ivr.verification_status",
    "/sms/inbound": "sms.inbound",
    "/sms/status": "sms.status",
}


@dataclass
class Run:
    """What one run left behind."""

    exchanges: list[Exchange]
    log: str
    lines: list[dict[str, Any]]
    metrics: str
    metric_files: list[Path]
    # Values that must never appear in a log line.
    secrets: list[str]
    # Six-digit challenge codes, matched only as whole numbers.
    codes: list[str]


def delivered(twilio: Twilio, sid: str, to: str) -> None:
    form = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "SmsSid": sid,
        "From": OUR_NUMBER,
        "To": to,
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
    }
    twilio.post("/sms/status?practice_id=p-1", form)


def sent_by_worker(url: str, actor: str) -> str:
    """The MessageSid of the codeword text ``actor`` asked for, once the worker sent it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = api("GET", f"{url}/api/v1/practices/p-1/disclosures", SUPPORT).json()["events"]
        sids = [e["reference"] for e in events if e["outcome"] == "sent" and e["actor"] == actor]
        if sids:
            return str(sids[0])
        time.sleep(0.05)
    raise AssertionError(f"the worker sent no codeword text for {actor}")


def flows(url: str, sent: TwilioRecorder) -> tuple[Twilio, list[str], list[str]]:
    """Every flow once; returns Twilio's side, the challenge codes and the call URL tokens."""
    twilio = Twilio(url)
    seed(url, CODEWORD, "(202) 555-0100", {"u-1": DANA, "u-2": SAM})
    twilio.post(
        "/ivr/inbound",
        {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "5" * 32, "From": STRANGER, "To": OUR_NUMBER},
    )

    # A call to the codeword: one wrong code, the right one, once more.
    asked, call = request_call(url, sent, twilio, "p-1", OFFICE)
    assert call is not None, asked.text
    first_code = asked.json()["challenge_code"]
    call.status("initiated")
    call.status("ringing")
    call.answer()
    call.press(a_wrong_code(first_code))
    assert len(spellings(call.press(first_code))) == 2
    assert len(spellings(call.press("1"))) == 1
    call.status("completed")
    tokens = [parse_qs(urlsplit(u).query)["t"][0] for u in (call.url, call.status_callback)]

    # A call to lockout: three wrong codes.
    asked, call = request_call(url, sent, twilio, "p-1", OFFICE)
    assert call is not None, asked.text
    second_code = asked.json()["challenge_code"]
    call.answer()
    for _ in range(3):
        call.press(a_wrong_code(second_code))
    call.status("completed")

    # A third call within the hour: over VERIFICATION_CALLS_PER_PRACTICE.
    refused, _ = request_call(url, sent, twilio, "p-1", OFFICE)
    assert refused.status_code == 429

    # Dana texts CODEWORD; the worker sends it; Twilio reports it delivered.
    assert twilio.text(DANA, "CODEWORD").twiml.find("Message") is None
    delivered(twilio, sent_by_worker(url, "self"), DANA)

    # Support texts the codeword to Sam; Twilio reports it delivered.
    body = {"practice_id": "p-1", "user_id": "u-2", "requested_by": "Sam"}
    texted = api("POST", f"{url}/api/v1/codeword-texts", SUPPORT, body)
    assert texted.status_code == 202
    delivered(twilio, sent_by_worker(url, "helpdesk"), SAM)

    # Dana again within the hour: over SMS_CODEWORD_TEXTS_PER_NUMBER.
    assert twilio.text(DANA, "CODEWORD").twiml.find("Message") is not None
    assert twilio.text(STRANGER, "HELP").twiml.find("Message") is not None

    # The main application shows the codeword in its banner.
    shown = api("GET", f"{url}/api/v1/practices/p-1/codeword", ADMIN)
    assert shown.json() == {"codeword": CODEWORD}
    return twilio, [first_code, second_code], tokens


def redaction_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if "redacted" in line["msg"]]


def redactions_logged(log: Path) -> int:
    """Redaction lines written so far, in either log format."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return sum("redacted" in line for line in text.splitlines())


def run_flows(
    tmp_path_factory: pytest.TempPathFactory,
    redis_process: RedisProcess,
    twilio_recorder: tuple[str, TwilioRecorder],
    log_format: str,
) -> Iterator[Run]:
    """Every flow once under gunicorn logging ``log_format``; what the run left behind."""
    tmp = tmp_path_factory.mktemp("gunicorn-flows")
    if not redis_process.running:
        redis_process.start()
    connect(redis_process.url).flushdb()
    twilio_url, sent = twilio_recorder
    sent.clear()
    env = production_env(
        redis_process.url,
        f"sqlite:///{tmp / 'directory.sqlite3'}",
        twilio_url,
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        VERIFICATION_CALLS_PER_PRACTICE="2/hour",
        SMS_CODEWORD_TEXTS_PER_NUMBER="1/hour",
        # The access log too: it must not carry secrets either.
        ACCESS_LOG="1",
        LOG_FORMAT=log_format,
    )
    with gunicorn(env) as server, worker_process(env) as worker:
        twilio, codes, tokens = flows(server.url, sent)
        # The redactions run on the background worker; their lines come last.
        deadline = time.monotonic() + 30
        while redactions_logged(worker.log_path) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = requests.get(f"{server.url}/metrics", headers=METRICS, timeout=5).text
        log = server.log.read_text(encoding="utf-8", errors="replace")
        worker_log = worker.log_path.read_text(encoding="utf-8", errors="replace")
        lines = json_lines(server.log) + json_lines(worker.log_path)
    yield Run(
        exchanges=twilio.exchanges,
        log=log + worker_log,
        lines=lines,
        metrics=metrics,
        metric_files=sorted((tmp / "metrics").iterdir()),
        secrets=[
            CODEWORD,
            ADMIN_TOKEN,
            SUPPORT_TOKEN,
            TWILIO_TOKEN,
            SECRET_KEY,
            *env["CODEWORD_KEYS"].split(","),
            *tokens,
        ],
        codes=codes,
    )
    connect(redis_process.url).flushdb()


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory,
    redis_process: RedisProcess,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> Iterator[Run]:
    """The flows logged as production logs them: JSON lines."""
    yield from run_flows(tmp_path_factory, redis_process, twilio_recorder, "json")


@pytest.fixture(scope="module")
def text_run(
    tmp_path_factory: pytest.TempPathFactory,
    redis_process: RedisProcess,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> Iterator[Run]:
    """The same flows logged as development logs them: short text lines."""
    yield from run_flows(tmp_path_factory, redis_process, twilio_recorder, "text")


# Logs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_no_log_line_carries_a_secret(log_format: str, request: pytest.FixtureRequest) -> None:
    """Not the codeword, a challenge code, a bearer token, the Twilio auth token,
    SECRET_KEY, a CODEWORD_KEYS key, nor a call's signed URL token; in either format."""
    run: Run = request.getfixturevalue("run" if log_format == "json" else "text_run")
    assert len(run.log.splitlines()) > 40, run.log[-2000:]
    if log_format == "json":
        assert len(run.lines) > 40, run.log[-2000:]
    else:
        assert run.lines == [], "text lines only"
        assert "POST /ivr/verification/code -> 200 in" in run.log, run.log[-2000:]
        assert "(disclosed)" in run.log and "redacted" in run.log, run.log[-2000:]
    for number, line in enumerate(run.log.splitlines(), 1):
        for value in run.secrets:
            assert value not in line, f"line {number} carries a secret: {line[:200]}"
        for code in run.codes:
            assert not re.search(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])", line), line[:200]


def _request_line(run: Run, exchange: Exchange) -> dict[str, Any]:
    [line] = [
        e for e in run.lines if e["msg"] == "request" and e.get("request_id") == exchange.request_id
    ]
    return line


def test_every_webhook_request_line_names_its_request_call_or_message_and_outcome(
    run: Run,
) -> None:
    assert len(run.exchanges) == 18
    for exchange in run.exchanges:
        line = _request_line(run, exchange)
        path = urlsplit(exchange.path).path
        assert (line["path"], line["status"]) == (path, 200)
        if path.startswith("/ivr/"):
            assert line["call_sid"] == exchange.form["CallSid"]
        else:
            assert line["message_sid"] == exchange.form["MessageSid"]
        if path != "/ivr/inbound":
            assert line.get("outcome"), f"{path} logged no outcome"


def test_request_lines_tell_what_each_step_came_to(run: Run) -> None:
    def outcomes(path: str) -> list[str]:
        return [
            _request_line(run, e).get("outcome", "")
            for e in run.exchanges
            if urlsplit(e.path).path == path
        ]

    assert outcomes("/ivr/verification/answer") == ["answered", "answered"]
    assert outcomes("/ivr/verification/code") == ["wrong", "disclosed", "wrong", "wrong", "locked"]
    assert outcomes("/ivr/verification/repeat") == ["repeated"]
    assert outcomes("/ivr/verification/status") == [
        "status:queued",
        "status:ringing",
        "status:disclosed",
        "status:locked",
    ]
    assert outcomes("/sms/inbound") == ["queued", "rate-limited", "help"]
    assert outcomes("/sms/status") == ["delivered", "delivered"]


def test_each_delivered_codeword_text_is_redacted_on_a_log_line_of_its_own(run: Run) -> None:
    reported = [e for e in run.exchanges if urlsplit(e.path).path == "/sms/status"]
    lines = redaction_lines(run.lines)
    assert sorted(line["message_sid"] for line in lines) == sorted(
        e.form["MessageSid"] for e in reported
    )
    for line in lines:
        assert line["msg"].endswith(" redacted") and "not redacted" not in line["msg"], line
        assert line["level"] == "info"


# Metrics --------------------------------------------------------------------------------


def _samples(run: Run) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(run.metrics)
        for sample in family.samples
    }


def _value(run: Run, name: str, **labels: str) -> float:
    return _samples(run).get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_calls_disclosures_lockouts_and_refusals_over_both_workers(
    run: Run,
) -> None:
    pids = {f.stem.rsplit("_", 1)[-1] for f in run.metric_files}
    assert len(pids) >= 2, "both workers served (and wrote metrics)"
    assert _value(run, "codeword_verification_calls_total", purpose="codeword") == 2
    assert _value(run, "codeword_disclosures_total", channel="voice") == 1
    assert _value(run, "codeword_disclosures_total", channel="sms") == 2
    assert _value(run, "codeword_disclosures_total", channel="app") == 1
    assert _value(run, "codeword_lockouts_total") == 1
    assert _value(run, "codeword_rate_limited_total", scope="verification_call") == 1
    assert _value(run, "codeword_rate_limited_total", scope="sms-codeword") == 1


def test_webhook_latency_histogram_counts_every_webhook_by_endpoint(run: Run) -> None:
    counted = Counter(ENDPOINTS[urlsplit(e.path).path] for e in run.exchanges)
    for endpoint, count in counted.items():
        name = "codeword_webhook_seconds"
        assert _value(run, f"{name}_count", endpoint=endpoint) == count, endpoint
        assert _value(run, f"{name}_bucket", endpoint=endpoint, le="1.0") == count, endpoint
        assert 0 < _value(run, f"{name}_sum", endpoint=endpoint) < count, endpoint
