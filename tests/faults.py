"""Breaking Redis, the database or Twilio's API under a running app, and what must hold meanwhile.

A ``Scene`` is a practice in the middle of everything: a verification call answered
and waiting for its code, a codeword text waiting for Twilio's delivery report.
``webhook_probes`` and ``api_probes`` are every Twilio webhook and JSON API, as Twilio
and support would send them; ``check_webhook`` and ``check_api_down`` say what each answer
must be while a dependency is down, and ``check_recovered`` that the same app works
again, without a restart, once it is back.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.helpers import (
    ADMIN,
    ADMIN_TOKEN,
    SUPPORT,
    SUPPORT_TOKEN,
    TWILIO_AUTH_TOKEN,
    post_signed,
    put_practice,
    put_user,
)
from tests.twilio_fake import RecordedRequest, TwilioRecorder
from tests.voice import ACCOUNT_SID, CODEWORD, OFFICE, OUR_NUMBER, TwilioCall, path_of, spellings
from tests.workers import work

OAK_CODEWORD = "Cedar-robin-58"
OAK_OFFICE = "+12025550101"
ADMIN_CELL = "+12025550111"
SECOND_ADMIN_CELL = "+12025550112"
STRANGER_CELL = "+12025550199"
# What an answer must never mention: internals a caller has no business learning.
INTERNALS = re.compile(
    r"traceback|exception|redis|sqlalchemy|sqlite|psycopg|postgres|connection|timeout|"
    r"127\.0\.0\.1|localhost",
    re.IGNORECASE,
)
# A webhook must answer this fast (seconds) whatever fails, so callers hear no dead air.
WEBHOOK_BUDGET = 1.0


@dataclass
class Scene:
    """Bright Smiles (p-1) mid-call and mid-text; Oak Dental (p-2) idle."""

    app: Flask
    client: FlaskClient
    sent: TwilioRecorder
    call_id: str
    challenge_code: str
    call: TwilioCall
    message_sid: str
    secret_values: list[str] = field(default_factory=list)

    @property
    def repeat_url(self) -> str:
        """The call's "press 1 to hear it again" URL (same signed token as the code step)."""
        return self.call.keys_url.replace("/ivr/verification/code?", "/ivr/verification/repeat?")


def calls_placed(sent: TwilioRecorder) -> list[RecordedRequest]:
    return [r for r in sent if r.method == "POST" and r.path.endswith("/Calls.json")]


def texts_sent(sent: TwilioRecorder) -> list[RecordedRequest]:
    return [r for r in sent if r.method == "POST" and r.path.endswith("/Messages.json")]


def seed(client: FlaskClient) -> None:
    """Two practices with verified office numbers and codewords; p-1 has two admins."""
    for practice_id, name, office, codeword in [
        ("p-1", "Bright Smiles", "(202) 555-0100", CODEWORD),
        ("p-2", "Oak Dental", "(202) 555-0101", OAK_CODEWORD),
    ]:
        response = put_practice(
            client,
            practice_id,
            name=name,
            office_number=office,
            office_number_verified=True,
            codeword=codeword,
        )
        assert response.status_code == 201, response.get_json()
    for user_id, name, cell in [("u-1", "Dana", ADMIN_CELL), ("u-2", "Sam", SECOND_ADMIN_CELL)]:
        response = put_user(
            client, "p-1", user_id, name=name, cell_number=cell, cell_number_verified=True
        )
        assert response.status_code == 201, response.get_json()


def place_call(
    client: FlaskClient, sent: TwilioRecorder, practice_id: str, to: str
) -> tuple[dict[str, Any], TwilioCall]:
    """Ask for a verification call; return the API's answer and the call as Twilio got it."""
    response = client.post(
        "/api/v1/verification-calls",
        json={"practice_id": practice_id, "requested_by": "Dr. Ana Ruiz"},
        headers=SUPPORT,
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    placed = calls_placed(sent)[-1]
    status = client.get(f"/api/v1/verification-calls/{body['id']}", headers=SUPPORT).get_json()
    call = TwilioCall(
        client, placed.form["Url"], placed.form["StatusCallback"], status["call_sid"], to=to
    )
    return body, call


def set_scene(app: Flask, sent: TwilioRecorder) -> Scene:
    """Seed the directory, start p-1's call (answered, at the code), text p-1's second admin."""
    client = app.test_client()
    seed(client)
    body, call = place_call(client, sent, "p-1", OFFICE)
    call.answer()
    assert call.gather_action is not None
    texted = client.post(
        "/api/v1/codeword-texts",
        json={"practice_id": "p-1", "user_id": "u-2", "requested_by": "Sam"},
        headers=SUPPORT,
    )
    assert texted.status_code == 202, texted.get_json()
    work(app)  # the worker sends it
    events = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT).get_json()
    [message_sid] = [e["reference"] for e in events["events"] if e["outcome"] == "sent"]
    sent.clear()
    config = app.config
    return Scene(
        app=app,
        client=client,
        sent=sent,
        call_id=body["id"],
        challenge_code=body["challenge_code"],
        call=call,
        message_sid=message_sid,
        secret_values=[
            CODEWORD,
            OAK_CODEWORD,
            body["challenge_code"],
            ADMIN_TOKEN,
            SUPPORT_TOKEN,
            TWILIO_AUTH_TOKEN,
            config["SECRET_KEY"],
            *config["CODEWORD_KEYS"],
        ],
    )


# Probes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookProbe:
    """One signed webhook request, as Twilio sends it."""

    name: str
    path: str
    form: dict[str, str]

    @property
    def voice(self) -> bool:
        return self.path.startswith("/ivr/")


def a_wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def inbound_text(sender: str, body: str) -> dict[str, str]:
    """The form of a text to our number, as Twilio posts it."""
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": "SM" + secrets.token_hex(16),
        "From": sender,
        "To": OUR_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


def webhook_probes(scene: Scene) -> list[WebhookProbe]:
    """Every webhook, each the way Twilio would post it in the middle of the scene."""
    call = scene.call
    code_path = path_of(call.keys_url)

    def on_call(**extra: str) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call.sid,
            "From": OUR_NUMBER,
            "To": OFFICE,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            **extra,
        }

    return [
        WebhookProbe(
            "someone calls our number",
            "/ivr/inbound",
            {
                "AccountSid": ACCOUNT_SID,
                "CallSid": "CA" + secrets.token_hex(16),
                "From": STRANGER_CELL,
                "To": OUR_NUMBER,
                "CallStatus": "ringing",
                "Direction": "inbound",
            },
        ),
        WebhookProbe("the call is answered", path_of(call.url), on_call(AnsweredBy="human")),
        WebhookProbe("a wrong code", code_path, on_call(Digits=a_wrong_code(scene.challenge_code))),
        WebhookProbe("silence at the code prompt", code_path, on_call()),
        WebhookProbe("the right code", code_path, on_call(Digits=scene.challenge_code)),
        WebhookProbe("press 1 to hear it again", path_of(scene.repeat_url), on_call(Digits="1")),
        WebhookProbe(
            "the call's status callback",
            path_of(call.status_callback),
            on_call(CallStatus="ringing"),
        ),
        WebhookProbe(
            "an admin texts CODEWORD", "/sms/inbound", inbound_text(ADMIN_CELL, "CODEWORD")
        ),
        WebhookProbe("a stranger texts HELP", "/sms/inbound", inbound_text(STRANGER_CELL, "HELP")),
        WebhookProbe("a stranger texts STOP", "/sms/inbound", inbound_text(STRANGER_CELL, "STOP")),
        WebhookProbe(
            "Twilio reports the codeword text delivered",
            "/sms/status?practice_id=p-1",
            {
                "AccountSid": ACCOUNT_SID,
                "MessageSid": scene.message_sid,
                "SmsSid": scene.message_sid,
                "From": OUR_NUMBER,
                "To": SECOND_ADMIN_CELL,
                "MessageStatus": "delivered",
                "SmsStatus": "delivered",
            },
        ),
    ]


@dataclass(frozen=True)
class ApiProbe:
    """One JSON API request and the status it gets when nothing is wrong."""

    name: str
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    healthy: int
    # What it needs: "redis", "database", "twilio".
    needs: frozenset[str]


def api_probes(scene: Scene) -> list[ApiProbe]:
    """Every JSON API that support and the main application use, plus readiness."""
    return [
        ApiProbe(
            "support asks for a verification call",
            "POST",
            "/api/v1/verification-calls",
            SUPPORT,
            {"practice_id": "p-2", "requested_by": "Dr. Oak"},
            201,
            frozenset({"redis", "database", "twilio"}),
        ),
        ApiProbe(
            "support follows the call",
            "GET",
            f"/api/v1/verification-calls/{scene.call_id}",
            SUPPORT,
            None,
            200,
            frozenset({"redis"}),
        ),
        ApiProbe(
            "support texts the codeword to an admin",
            "POST",
            "/api/v1/codeword-texts",
            SUPPORT,
            {"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"},
            202,
            # Queued for the worker: the request never waits for Twilio.
            frozenset({"redis", "database"}),
        ),
        ApiProbe(
            "the main app reads a practice",
            "GET",
            "/api/v1/practices/p-1",
            ADMIN,
            None,
            200,
            frozenset({"database"}),
        ),
        ApiProbe(
            "support reads the audit trail",
            "GET",
            "/api/v1/practices/p-1/disclosures",
            SUPPORT,
            None,
            200,
            frozenset({"database"}),
        ),
        ApiProbe(
            "the main app calls the office number to verify it",
            "POST",
            "/api/v1/practices/p-2/office-number/verification",
            ADMIN,
            None,
            201,
            frozenset({"redis", "database", "twilio"}),
        ),
        ApiProbe(
            "the main app texts a code to a cell",
            "POST",
            "/api/v1/practices/p-1/users/u-1/cell-verification",
            ADMIN,
            None,
            202,
            frozenset({"redis", "database", "twilio"}),
        ),
        ApiProbe(
            "the main app checks a cell code (none is waiting)",
            "POST",
            "/api/v1/practices/p-1/users/u-1/cell-verification/check",
            ADMIN,
            {"code": "000000"},
            409,
            frozenset({"redis", "database"}),
        ),
        ApiProbe("readiness", "GET", "/readyz", {}, None, 200, frozenset({"redis", "database"})),
    ]


# Checks ---------------------------------------------------------------------------------


def post_webhook(client: FlaskClient, probe: WebhookProbe) -> tuple[TestResponse, float]:
    started = time.perf_counter()
    response = post_signed(client, probe.path, probe.form)
    return response, time.perf_counter() - started


def check_webhook(
    scene: Scene,
    probe: WebhookProbe,
    response: TestResponse,
    elapsed: float,
    budget: float = WEBHOOK_BUDGET,
    codeword_allowed: bool = False,
) -> ET.Element:
    """Valid TwiML, in time, with no secret and nothing about what failed.

    ``codeword_allowed``: the call flow does not need what failed, so the right
    code may read the codeword out as usual.
    """
    what = f"{probe.name}: "
    assert response.status_code == 200, what + str(response.status_code)
    assert response.mimetype == "text/xml", what + response.mimetype
    assert elapsed < budget, what + f"took {elapsed:.2f} s"
    body = response.get_data(as_text=True)
    root = ET.fromstring(body)  # noqa: S314 - our own server's TwiML
    assert root.tag == "Response", what + body
    for value in scene.secret_values:
        assert value not in body, what + "a secret in the answer"
    spoken = " ".join("".join(e.itertext()) for e in root.iter() if e.tag in ("Say", "Message"))
    assert not INTERNALS.search(spoken), what + spoken
    if not probe.voice:
        assert all(child.tag == "Message" for child in root), what + body
    elif not codeword_allowed:
        assert spellings(root) == [], what + "the codeword was read"
    return root


def call_api(client: FlaskClient, probe: ApiProbe) -> TestResponse:
    return client.open(probe.path, method=probe.method, json=probe.body, headers=probe.headers)


def check_api_down(scene: Scene, probe: ApiProbe, response: TestResponse, status: int) -> None:
    """``status`` (502 or 503) with Retry-After and the contract's error body, nothing more."""
    what = f"{probe.name}: "
    assert response.status_code == status, what + f"{response.status_code} {response.data!r}"
    assert int(response.headers["Retry-After"]) > 0, what + "no Retry-After"
    body = response.get_json()
    if probe.path == "/readyz":
        assert body["status"] == "unavailable", what + str(body)
        return
    error = body["error"]
    assert error["code"] == ("carrier_unavailable" if status == 502 else "unavailable")
    assert not INTERNALS.search(error["message"]), what + error["message"]
    text = response.get_data(as_text=True)
    for value in scene.secret_values:
        assert value not in text, what + "a secret in the answer"


def check_recovered(scene: Scene, call_forgotten: bool = False) -> None:
    """The same app, untouched, serves every API again and carries a call and a text through.

    ``call_forgotten``: Redis came back empty, so the scene's call is unknown (404).
    """
    client, sent = scene.client, scene.sent
    sent.clear()
    for probe in api_probes(scene):
        if probe.method == "GET":
            response = call_api(client, probe)
            healthy = 404 if call_forgotten and "/verification-calls/" in probe.path else 200
            assert response.status_code == healthy, f"{probe.name}: {response.data!r}"
    body, call = place_call(client, sent, "p-2", OAK_OFFICE)
    call.answer()
    reading = call.press(body["challenge_code"])
    assert len(spellings(reading)) == 2, "the codeword is read out again"
    call.status("completed")
    sent.clear()
    texted = post_signed(client, "/sms/inbound", inbound_text(ADMIN_CELL, "CODEWORD"))
    assert texted.status_code == 200
    work(scene.app)  # the worker sends it
    [message] = [m for m in texts_sent(sent) if CODEWORD in m.form["Body"]]
    assert message.form["To"] == ADMIN_CELL


# Faults ---------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_paused(url: str, seconds: float) -> Iterator[None]:
    """Redis holds every client's commands for ``seconds`` (CLIENT PAUSE ALL).

    Redis 7.0 holds even CLIENT UNPAUSE, so the pause runs its course; the block
    must end before it does, or what it saw was not a paused Redis.
    """
    # A connection of our own, patient enough to outwait the pause.
    admin = redis.Redis.from_url(url, socket_timeout=seconds + 5)
    admin.execute_command("CLIENT", "PAUSE", str(int(seconds * 1000)), "ALL")
    try:
        with _must_end_within(seconds):
            yield
    finally:
        admin.ping()  # answered once the pause is over, so the next test finds Redis free
        admin.close()


# Keeps Redis's only thread busy until ARGV[1] (seconds since the epoch, as Redis tells time).
_BUSY = """
local deadline = tonumber(ARGV[1])
while true do
  local now = redis.call('TIME')
  if tonumber(now[1]) + tonumber(now[2]) / 1e6 >= deadline then return 1 end
end
"""


@contextlib.contextmanager
def redis_busy(url: str, seconds: float) -> Iterator[None]:
    """Redis runs a slow script for ``seconds``: it reads nothing else meanwhile, then
    runs whatever arrived, even from clients that gave up waiting."""
    # A connection of our own, patient enough to see the script through.
    admin = redis.Redis.from_url(url, socket_timeout=seconds + 5)
    now = admin.time()
    deadline = now[0] + now[1] / 1e6 + seconds
    thread = threading.Thread(target=admin.eval, args=(_BUSY, 0, deadline), daemon=True)
    thread.start()
    time.sleep(0.05)  # let the script start before anything else reaches Redis
    try:
        with _must_end_within(seconds):
            yield
    finally:
        thread.join(seconds + 5)
        admin.close()


@contextlib.contextmanager
def _must_end_within(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    assert took < seconds, f"the fault lasted {seconds} s but the block took {took:.1f} s"
