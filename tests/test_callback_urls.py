"""Callback URLs come from PUBLIC_BASE_URL and the route alone, whatever a request says."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import requests
from flask.testing import FlaskClient

from devservers.gunicorn_server import gunicorn_server
from tests.gunicorn_flows import production_env
from tests.helpers import ADMIN, PUBLIC_BASE_URL, SUPPORT, put_user, twilio_signature
from tests.twilio_fake import TwilioRecorder
from tests.voice import ACCOUNT_SID, CODEWORD, OFFICE, setup_practice

ANSWER_URL = f"{PUBLIC_BASE_URL}/ivr/verification/answer?t="
STATUS_URL = f"{PUBLIC_BASE_URL}/ivr/verification/status?t="
# A proxy may mount the app under a path and say so in SCRIPT_NAME; ours is not mounted.
MOUNTED = "http://localhost/x"


def placed_calls(client: FlaskClient) -> list[dict[str, Any]]:
    return list(client.application.extensions["carrier"].recorded("calls"))


def ask_for_call(client: FlaskClient, practice_id: str, **options: Any) -> None:
    response = client.post(
        "/api/v1/verification-calls",
        json={"practice_id": practice_id, "requested_by": "Dr. Ana Ruiz"},
        headers=SUPPORT,
        **options,
    )
    assert response.status_code == 201, response.get_json()


def test_a_request_under_another_script_root_moves_no_call_url(client: FlaskClient) -> None:
    """Neither that request's call nor any later call carries the request's script root."""
    setup_practice(client, "p-1")
    setup_practice(client, "p-2")
    ask_for_call(client, "p-1", base_url=MOUNTED)
    ask_for_call(client, "p-2")
    for call in placed_calls(client):
        assert call["url"].startswith(ANSWER_URL), call["url"]
        assert call["status_callback"].startswith(STATUS_URL), call["status_callback"]


def test_a_webhook_under_another_script_root_keeps_the_gather_action(
    client: FlaskClient,
) -> None:
    setup_practice(client)
    ask_for_call(client, "p-1")
    [call] = placed_calls(client)
    path = call["url"].removeprefix(PUBLIC_BASE_URL)
    form = {"CallSid": call["sid"], "To": OFFICE, "AccountSid": ACCOUNT_SID}
    # Signed for the public URL, as Twilio does; the proxy adds SCRIPT_NAME on its way.
    signature = twilio_signature(PUBLIC_BASE_URL + path, form)
    answered = client.post(
        path, data=form, headers={"X-Twilio-Signature": signature}, base_url=MOUNTED
    )
    gather = ET.fromstring(answered.data).find("Gather")  # noqa: S314 - our own TwiML
    assert gather is not None
    assert gather.get("action", "").startswith(f"{PUBLIC_BASE_URL}/ivr/verification/code?t=")


def test_a_codeword_text_reports_to_the_public_status_url(client: FlaskClient) -> None:
    setup_practice(client)
    put_user(client, cell_number="+12025550111", cell_number_verified=True)
    response = client.post(
        "/api/v1/codeword-texts",
        json={"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"},
        headers=SUPPORT,
        base_url=MOUNTED,
    )
    assert response.status_code == 202
    [text] = client.application.extensions["carrier"].recorded("messages")
    # The worker builds it (here as the job is enqueued), under PUBLIC_BASE_URL all the same.
    assert text["status_callback"].startswith(
        f"{PUBLIC_BASE_URL}/sms/status?practice_id=p-1&text=CT"
    )


def test_a_proxy_trusted_script_name_header_does_not_poison_the_worker(
    tmp_path: Path, redis_url: str, twilio_recorder: tuple[str, TwilioRecorder]
) -> None:
    """Under gunicorn, one request with ``SCRIPT_NAME: /x`` from a trusted proxy address."""
    twilio_url, sent = twilio_recorder
    sent.clear()
    env = production_env(
        redis_url, f"sqlite:///{tmp_path / 'd.sqlite3'}", twilio_url, WEB_CONCURRENCY="1"
    )
    with gunicorn_server(env) as url:
        for practice_id in ("p-1", "p-2"):
            created = requests.put(
                f"{url}/api/v1/practices/{practice_id}",
                json={
                    "name": "Bright Smiles",
                    "office_number": OFFICE,
                    "office_number_verified": True,
                    "codeword": CODEWORD,
                },
                headers=ADMIN,
                timeout=10,
            )
            assert created.status_code == 201
        for prefix, practice_id in (("/x", "p-1"), ("", "p-2")):
            placed = requests.post(
                f"{url}{prefix}/api/v1/verification-calls",
                json={"practice_id": practice_id, "requested_by": "Dr. Ana Ruiz"},
                headers={**SUPPORT, **({"SCRIPT_NAME": prefix} if prefix else {})},
                timeout=10,
            )
            assert placed.status_code == 201, placed.text
    calls = [r.form for r in sent if r.path.endswith("/Calls.json")]
    assert len(calls) == 2
    for call in calls:
        assert call["Url"].startswith(ANSWER_URL), call["Url"]
        assert call["StatusCallback"].startswith(STATUS_URL), call["StatusCallback"]
