"""Disclosure notices: the practice's other admins are texted after every disclosure."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from core.disclosures import Channel, Disclosure, notice_text
from core.errors import CarrierUnavailable
from core.segments import MAX_GSM7_SEPTETS, gsm7_septets
from devservers.gunicorn_server import gunicorn_server
from tests.gunicorn_flows import TWILIO_TOKEN as TOKEN
from tests.gunicorn_flows import production_env
from tests.helpers import (
    ADMIN,
    PUBLIC_BASE_URL,
    SUPPORT,
    put_practice,
    twilio_signature,
)
from tests.sms_helpers import (
    ADMIN_CELL,
    CODEWORD,
    MULTI_ADMIN_CELL,
    SECOND_ADMIN_CELL,
    STAFF_CELL,
    UNVERIFIED_CELL,
    reply_of,
    seed,
    text,
)
from tests.twilio_fake import TwilioRecorder
from tests.voice import Clock, last_placed_call, request_call, spellings
from tests.workers import sweep, work, worker_process

# 2026-05-04 10:14:30 UTC
DISCLOSED_AT = datetime(2026, 5, 4, 10, 14, 30, tzinfo=UTC).timestamp()
WHEN = "on 2026-05-04 at 10:14 UTC"


@pytest.fixture
def clock(app: Flask) -> Clock:
    clock = Clock()
    clock.now = DISCLOSED_AT
    app.config["CLOCK"] = clock
    return clock


@pytest.fixture
def client(app: Flask, clock: Clock) -> FlaskClient:
    """p-1 Bright Smiles: admins Dana, Sam, Mia with verified cells; Stan staff; Uma unverified."""
    client = app.test_client()
    seed(client)
    return client


def sent_texts(app: Flask) -> list[dict[str, Any]]:
    """Texts sent through the (simulated) REST API, oldest first."""
    return list(reversed(app.extensions["carrier"].recorded("messages")))


def notices(app: Flask) -> dict[str, str]:
    """The texts sent that do not carry the codeword, by number."""
    return {t["to"]: t["body"] for t in sent_texts(app) if CODEWORD not in t["body"]}


def support_text(client: FlaskClient, user_id: str = "u-1") -> Any:
    return client.post(
        "/api/v1/codeword-texts",
        json={"practice_id": "p-1", "user_id": user_id, "requested_by": "Dana at Bright Smiles"},
        headers=SUPPORT,
    )


# By SMS --------------------------------------------------------------------------------


def test_an_admins_codeword_text_is_told_to_the_other_admins_not_to_the_sender(
    app: Flask, client: FlaskClient
) -> None:
    response = text(client, "CODEWORD")
    assert reply_of(response) is None
    assert sent_texts(app)[0]["to"] == ADMIN_CELL  # the codeword first, then the notices

    told = notices(app)
    assert sorted(told) == sorted([SECOND_ADMIN_CELL, MULTI_ADMIN_CELL])
    assert ADMIN_CELL not in told and STAFF_CELL not in told and UNVERIFIED_CELL not in told
    body = told[SECOND_ADMIN_CELL]
    assert body == told[MULTI_ADMIN_CELL]
    assert "the Practice Codeword of Bright Smiles was texted to +1******0111" in body
    assert WHEN in body
    assert "requested by Dana by texting CODEWORD" in body
    assert CODEWORD not in body and ADMIN_CELL not in body
    assert gsm7_septets(body) is not None
    assert (gsm7_septets(body) or 0) <= MAX_GSM7_SEPTETS


def test_a_support_sent_codeword_text_is_told_with_the_requester(
    app: Flask, client: FlaskClient
) -> None:
    response = support_text(client)
    assert response.status_code == 202
    response.close()
    told = notices(app)
    assert sorted(told) == sorted([SECOND_ADMIN_CELL, MULTI_ADMIN_CELL])
    assert "requested by Dana at Bright Smiles through support" in told[SECOND_ADMIN_CELL]
    assert "texted to +1******0111" in told[SECOND_ADMIN_CELL]


def test_an_admin_who_opted_out_gets_no_notice(app: Flask, client: FlaskClient) -> None:
    text(client, "STOP", SECOND_ADMIN_CELL).close()
    text(client, "CODEWORD").close()
    assert sorted(notices(app)) == [MULTI_ADMIN_CELL]


def test_the_only_admin_gets_the_codeword_and_no_notice(app: Flask, client: FlaskClient) -> None:
    for user in ("u-2", "u-5"):
        client.delete(f"/api/v1/practices/p-1/users/{user}", headers=ADMIN)
    text(client, "CODEWORD").close()
    assert [t["to"] for t in sent_texts(app)] == [ADMIN_CELL]


def test_no_disclosure_no_notice(app: Flask, client: FlaskClient) -> None:
    for body, sender in [("CODEWORD", STAFF_CELL), ("HELP", ADMIN_CELL), ("hello", ADMIN_CELL)]:
        text(client, body, sender).close()
    assert support_text(client, "u-3").status_code == 409  # staff
    assert sent_texts(app) == []


def test_a_refused_codeword_text_is_not_told(app: Flask, client: FlaskClient) -> None:
    for _ in range(3):
        text(client, "CODEWORD").close()
    before = len(sent_texts(app))
    limited = text(client, "CODEWORD")
    assert "try again later" in (reply_of(limited) or "")
    limited.close()
    assert len(sent_texts(app)) == before


def test_a_notice_twilio_refuses_does_not_touch_the_disclosure_and_is_tried_again(
    app: Flask,
    client: FlaskClient,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    carrier = app.extensions["carrier"]
    send_sms = carrier.send_sms

    def notices_fail(**kwargs: Any) -> str:
        if CODEWORD not in kwargs["body"]:
            raise CarrierUnavailable("the phone carrier is unavailable, try again")
        return str(send_sms(**kwargs))

    monkeypatch.setattr(carrier, "send_sms", notices_fail)
    response = support_text(client)
    assert response.status_code == 202
    assert [t["to"] for t in sent_texts(app)] == [ADMIN_CELL]
    failures = [r for r in caplog.records if "disclosure notice" in r.getMessage()]
    assert len([r for r in failures if r.levelno == logging.WARNING]) == 2
    assert all(ADMIN_CELL not in r.getMessage() for r in caplog.records)
    assert all(SECOND_ADMIN_CELL not in r.getMessage() for r in caplog.records)

    monkeypatch.setattr(carrier, "send_sms", send_sms)  # Twilio is back
    clock.advance(30)
    assert sweep(app) == 2
    assert sorted(notices(app)) == sorted([SECOND_ADMIN_CELL, MULTI_ADMIN_CELL])


def test_a_notice_job_the_database_fails_is_done_once_its_claim_runs_out(
    app: Flask, client: FlaskClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import disclosures as notice_jobs

    def broken(*_: object) -> Any:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    failing = SimpleNamespace(get_practice=broken)
    monkeypatch.setattr(notice_jobs, "directory", lambda: failing)
    response = text(client, "CODEWORD")
    assert reply_of(response) is None
    assert [t["to"] for t in sent_texts(app)] == [ADMIN_CELL]

    monkeypatch.undo()
    assert sweep(app) == 0  # still held by the job that failed
    clock.advance(app.config["WORKER_LEASE_SECONDS"])
    assert sweep(app) == 2
    assert sorted(notices(app)) == sorted([SECOND_ADMIN_CELL, MULTI_ADMIN_CELL])


def test_the_webhook_neither_looks_up_admins_nor_texts_anyone(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(queue_async=True)
    client = app.test_client()
    seed(client)
    response = text(client, "CODEWORD")
    assert reply_of(response) is None
    assert sent_texts(app) == []
    work(app)  # the worker: the codeword text, then the notices it left
    assert sent_texts(app)[0]["to"] == ADMIN_CELL
    assert sorted(notices(app)) == sorted([SECOND_ADMIN_CELL, MULTI_ADMIN_CELL])


# By voice ------------------------------------------------------------------------------


def test_a_codeword_read_on_a_call_is_told_to_every_admin(app: Flask, client: FlaskClient) -> None:
    put_practice(client, name="Bright Smiles", office_number_verified=True)
    body = request_call(client).get_json()
    call = last_placed_call(client)
    call.answer()
    call.press(f"{(int(body['challenge_code']) + 1) % 10**6:06d}")
    assert sent_texts(app) == []  # a wrong code discloses nothing, and tells nothing

    reading = call.press(body["challenge_code"])
    assert spellings(reading)
    told = notices(app)
    assert sorted(told) == sorted([ADMIN_CELL, SECOND_ADMIN_CELL, MULTI_ADMIN_CELL])
    notice = told[ADMIN_CELL]
    assert "the Practice Codeword of Bright Smiles was read out on a call to +1******0100" in notice
    assert WHEN in notice
    assert "requested by Dr. Ana Ruiz (owner) through support" in notice
    assert CODEWORD not in notice
    assert len(sent_texts(app)) == 3

    call.press("1")  # hearing it again is the same disclosure
    call.status("completed")
    assert len(sent_texts(app)) == 3


def test_a_call_that_fails_to_notify_still_reads_the_codeword(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_practice(client, name="Bright Smiles", office_number_verified=True)
    refused: list[str] = []

    def twilio_down(*, to: str, **_: Any) -> str:
        refused.append(to)
        raise CarrierUnavailable("the phone carrier is unavailable, try again")

    monkeypatch.setattr(app.extensions["carrier"], "send_sms", twilio_down)
    body = request_call(client).get_json()
    call = last_placed_call(client)
    call.answer()
    reading = call.press(body["challenge_code"])
    assert len(spellings(reading)) == 2
    assert len(refused) == 3
    events = client.get("/api/v1/practices/p-1/disclosures", headers=ADMIN).get_json()["events"]
    assert [e["outcome"] for e in events if e["channel"] == "voice"] == ["disclosed"]


def test_an_office_number_verification_is_no_disclosure(app: Flask, client: FlaskClient) -> None:
    response = client.post("/api/v1/practices/p-1/office-number/verification", headers=ADMIN)
    code = response.get_json()["code"]
    call = last_placed_call(client)
    call.answer()
    call.press(code)
    assert sent_texts(app) == []


# By the app ----------------------------------------------------------------------------


def test_the_main_application_reading_the_codeword_is_told_to_every_admin(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get("/api/v1/practices/p-1/codeword", headers=ADMIN)
    assert response.get_json() == {"codeword": CODEWORD}
    response.close()
    told = notices(app)
    assert sorted(told) == sorted([ADMIN_CELL, SECOND_ADMIN_CELL, MULTI_ADMIN_CELL])
    notice = told[ADMIN_CELL]
    assert (
        "the Practice Codeword of Bright Smiles was shown in the Practice by Numbers app" in notice
    )
    assert WHEN in notice and CODEWORD not in notice
    assert len(sent_texts(app)) == 3


def test_a_codeword_the_app_could_not_read_is_told_to_nobody(
    app: Flask, client: FlaskClient
) -> None:
    client.get("/api/v1/practices/p-3/codeword", headers=ADMIN).close()
    put_practice(client, "p-3", name="No Codeword Yet")
    client.get("/api/v1/practices/p-3/codeword", headers=ADMIN).close()
    assert sent_texts(app) == []


# The text ------------------------------------------------------------------------------


def test_a_notice_fits_two_segments_in_gsm7_whatever_the_names() -> None:
    disclosure = Disclosure(
        practice_id="p-1",
        practice_name="Clínica Dental Sonrisa Brillante de San José " * 5,
        channel=Channel.VOICE,
        actor="helpdesk",
        requested_by="Dra. Ana María Núñez 🦷 " * 10,
        to="+12025550100",
        at=DISCLOSED_AT,
        by_support=True,
    )
    for channel in Channel:
        notice = notice_text(
            dataclasses.replace(disclosure, channel=channel),
            brand="Practice by Numbers",
            support="support at practicebynumbers.com",
        )
        septets = gsm7_septets(notice)
        assert septets is not None and septets <= MAX_GSM7_SEPTETS
        assert "Clinica Dental" in notice and WHEN in notice
        if channel is not Channel.APP:
            assert "Dra. Ana Maria Nu" in notice and "+1******0100" in notice


# In production -------------------------------------------------------------------------


def test_under_gunicorn_the_worker_sends_the_text_then_the_notice(
    tmp_path: Path,
    redis_url: str,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> None:
    twilio_url, sent = twilio_recorder
    sent.clear()
    env = production_env(redis_url, f"sqlite:///{tmp_path / 'd.sqlite3'}", twilio_url)
    with gunicorn_server(env) as url, worker_process(env):
        practice = {"name": "Bright Smiles", "office_number": "202-555-0100", "codeword": CODEWORD}
        dana = {"name": "Dana", "role": "admin", "cell_number": ADMIN_CELL}
        sam = {"name": "Sam", "role": "admin", "cell_number": SECOND_ADMIN_CELL}
        for path, body in [("p-1", practice), ("p-1/users/u-1", dana), ("p-1/users/u-2", sam)]:
            body = {**body, "cell_number_verified": True} if "role" in body else body
            created = requests.put(
                f"{url}/api/v1/practices/{path}", json=body, headers=ADMIN, timeout=5
            )
            assert created.status_code == 201
        form = {"MessageSid": "SM" + "1" * 32, "From": ADMIN_CELL, "Body": "CODEWORD"}
        signature = twilio_signature(PUBLIC_BASE_URL + "/sms/inbound", form, TOKEN)
        answer = requests.post(
            f"{url}/sms/inbound", data=form, headers={"X-Twilio-Signature": signature}, timeout=5
        )
        assert answer.status_code == 200
        deadline = time.monotonic() + 30
        while len(sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        codeword_text, notice = list(sent)
        assert codeword_text.form["To"] == ADMIN_CELL and CODEWORD in codeword_text.form["Body"]
        assert notice.form["To"] == SECOND_ADMIN_CELL
        assert notice.form["From"] == "+15005550006"
        assert CODEWORD not in notice.form["Body"]
        assert "texted to +1******0111" in notice.form["Body"]
        assert "StatusCallback" not in notice.form
