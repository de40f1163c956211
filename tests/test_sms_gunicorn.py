"""Texting as production runs it: gunicorn workers sharing limits through a real Redis."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import requests

from devservers.gunicorn_server import gunicorn_server
from devservers.redis_server import RedisProcess
from tests.gunicorn_flows import TWILIO_TOKEN as TOKEN
from tests.gunicorn_flows import production_env
from tests.helpers import ADMIN, PUBLIC_BASE_URL, twilio_signature
from tests.sms_helpers import ADMIN_CELL, CODEWORD
from tests.twilio_fake import TwilioRecorder
from tests.workers import worker_process


def inbound(url: str, body: str) -> str | None:
    """Text ``body`` from the admin's cell; the reply, or None."""
    form = {"MessageSid": "SM" + "1" * 32, "From": ADMIN_CELL, "Body": body}
    signature = twilio_signature(PUBLIC_BASE_URL + "/sms/inbound", form, TOKEN)
    response = requests.post(
        f"{url}/sms/inbound", data=form, headers={"X-Twilio-Signature": signature}, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    message = ET.fromstring(response.content).find("Message")  # noqa: S314 - our own response
    return None if message is None else message.text


def test_workers_share_the_codeword_limit_and_survive_redis_going_down(
    tmp_path: Path,
    redis_process: RedisProcess,
    redis_url: str,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> None:
    twilio_url, sent = twilio_recorder
    sent.clear()
    database_url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    env = production_env(redis_url, database_url, twilio_url, WEB_CONCURRENCY="3")
    with gunicorn_server(env) as url, worker_process(env):
        practice = {"name": "Bright Smiles", "office_number": "202-555-0100", "codeword": CODEWORD}
        user = {"name": "Dana", "role": "admin", "cell_number": ADMIN_CELL}
        user["cell_number_verified"] = True
        for path, body in [("p-1", practice), ("p-1/users/u-1", user)]:
            created = requests.put(
                f"{url}/api/v1/practices/{path}", json=body, headers=ADMIN, timeout=5
            )
            assert created.status_code == 201
        # New connections each time, so the texts land on different workers.
        for _ in range(3):
            assert inbound(url, "CODEWORD") is None
        assert "try again later" in (inbound(url, "CODEWORD") or "")
        # The worker sends them.
        deadline = time.monotonic() + 30
        while len(sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.form["To"] for r in sent] == [ADMIN_CELL] * 3
        assert all(CODEWORD in r.form["Body"] for r in sent)

        redis_process.stop()
        assert inbound(url, "CODEWORD") is None
        assert len(sent) == 3
