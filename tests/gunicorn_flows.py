"""Driving a gunicorn-served app over HTTP as Twilio, support and the main application do."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.fernet import Fernet

from tests.faults import calls_placed, inbound_text
from tests.helpers import (
    ADMIN,
    ADMIN_TOKEN,
    METRICS_TOKEN,
    PUBLIC_BASE_URL,
    SUPPORT,
    SUPPORT_TOKEN,
)
from tests.helpers import twilio_signature as sign
from tests.twilio_fake import TwilioRecorder
from tests.voice import ACCOUNT_SID, OUR_NUMBER

TWILIO_TOKEN = "gunicorn-twilio-auth-token-5f1e"
SECRET_KEY = "gunicorn-secret-key-8c2d41f0a9"


def production_env(redis_url: str, database_url: str, twilio_url: str, **extra: str) -> dict:
    """The environment of a production deployment, pointed at the test's servers.

    An empty ``twilio_url`` leaves Twilio's real API configured, for tests that reach none.
    """
    return {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "CODEWORD_KEYS": f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_FROM_NUMBER": OUR_NUMBER,
        "TWILIO_API_BASE_URL": twilio_url,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "DATABASE_URL": database_url,
        "ADMIN_TOKENS": f"mainapp={ADMIN_TOKEN}",
        "SUPPORT_TOKENS": f"helpdesk={SUPPORT_TOKEN}",
        "METRICS_TOKEN": METRICS_TOKEN,
        "WEB_CONCURRENCY": "2",
        **extra,
    }


@dataclass
class Exchange:
    """One webhook as sent and answered."""

    path: str
    form: dict[str, str]
    status: int
    request_id: str
    body: str

    @property
    def twiml(self) -> ET.Element:
        return ET.fromstring(self.body)  # noqa: S314 - our own server's TwiML


@dataclass
class Twilio:
    """Twilio's side: signs and posts webhooks to the server, remembers every exchange."""

    url: str
    exchanges: list[Exchange] = field(default_factory=list)

    def post(self, public_url_or_path: str, form: dict[str, str]) -> Exchange:
        path = public_url_or_path.removeprefix(PUBLIC_BASE_URL)
        # A new connection each time, so that both workers take a share.
        response = requests.post(
            f"{self.url}{path}",
            data=form,
            headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, form, TWILIO_TOKEN)},
            timeout=10,
        )
        exchange = Exchange(
            path, form, response.status_code, response.headers["X-Request-Id"], response.text
        )
        self.exchanges.append(exchange)
        assert response.status_code == 200, (path, response.status_code)
        assert response.headers["Content-Type"].startswith("text/xml")
        return exchange

    def text(self, sender: str, body: str) -> Exchange:
        return self.post("/sms/inbound", inbound_text(sender, body))


@dataclass
class HttpCall:
    """A verification call as Twilio runs it against the server."""

    twilio: Twilio
    url: str
    status_callback: str
    sid: str
    to: str
    gather_action: str | None = None

    def form(self, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "CallSid": self.sid,
            "From": OUR_NUMBER,
            "To": self.to,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            **extra,
        }

    def post(self, url: str, **extra: str) -> ET.Element:
        """Post a webhook of this call to ``url``; remember the Gather it answers with."""
        root = self.twilio.post(url, self.form(**extra)).twiml
        gather = root.find("Gather")
        self.gather_action = gather.get("action") if gather is not None else None
        return root

    def answer(self) -> ET.Element:
        return self.post(self.url, AnsweredBy="human")

    def press(self, digits: str) -> ET.Element:
        assert self.gather_action, "the call is not waiting for keys"
        return self.post(self.gather_action, Digits=digits)

    def status(self, call_status: str) -> None:
        self.twilio.post(self.status_callback, self.form(CallStatus=call_status))


def api(method: str, url: str, headers: dict[str, str], body: Any = None) -> requests.Response:
    return requests.request(method, url, json=body, headers=headers, timeout=10)


def request_call(
    url: str, sent: TwilioRecorder, twilio: Twilio, practice_id: str, to: str
) -> tuple[requests.Response, HttpCall | None]:
    """Support asks for a call; the call as Twilio got it, if one was placed."""
    before = len(calls_placed(sent))
    response = api(
        "POST",
        f"{url}/api/v1/verification-calls",
        SUPPORT,
        {"practice_id": practice_id, "requested_by": "Dr. Ana Ruiz"},
    )
    if response.status_code != 201:
        return response, None
    placed = calls_placed(sent)[before]
    status = api("GET", f"{url}/api/v1/verification-calls/{response.json()['id']}", SUPPORT)
    call = HttpCall(
        twilio, placed.form["Url"], placed.form["StatusCallback"], status.json()["call_sid"], to
    )
    return response, call


def seed(url: str, codeword: str, office: str, cells: dict[str, str]) -> None:
    """Practice p-1 with a verified office number, and an admin per cell number."""
    practice = {
        "name": "Bright Smiles",
        "office_number": office,
        "office_number_verified": True,
        "codeword": codeword,
    }
    assert api("PUT", f"{url}/api/v1/practices/p-1", ADMIN, practice).status_code == 201
    for user_id, cell in cells.items():
        user = {"name": user_id, "role": "admin", "cell_number": cell, "cell_number_verified": True}
        response = api("PUT", f"{url}/api/v1/practices/p-1/users/{user_id}", ADMIN, user)
        assert response.status_code == 201


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every JSON line the server's processes wrote."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]
