"""The terminal phone drives the running service (gunicorn) with signed webhooks, as Twilio.

The service here is the real app plus the small TwiML flows of ``tests/phone_flows.py``;
requests are signed for PUBLIC_BASE_URL and sent to where gunicorn actually listens.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from flask import Flask
from flask.cli import FlaskGroup
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from core.simulated_carrier import SIMULATED_ACCOUNT_SID, SimulatedCarrier
from devservers.gunicorn_server import gunicorn_server
from devservers.processes import REPO
from devservers.redis_server import RedisProcess
from phone.call import GatherPrompt, keyed_digits, spoken_text
from phone.network import PhoneNetwork
from phone.webhooks import Webhooks
from store.redis_client import connect
from tests.helpers import (
    ADMIN,
    ADMIN_TOKEN,
    PUBLIC_BASE_URL,
    SUPPORT,
    SUPPORT_TOKEN,
    TWILIO_AUTH_TOKEN,
)
from tests.phone_flows import SECRET, received
from tests.workers import worker_process

OFFICE = "+12025550100"
ADMIN_CELL = "+12025550111"
SERVICE_NUMBER = "+15005550006"


@pytest.fixture(scope="module")
def service_env(
    redis_process: RedisProcess, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """One environment for the service under gunicorn and the phone in the test."""
    tmp = tmp_path_factory.mktemp("phone")
    return {
        "INSTANCE_PATH": str(tmp / "instance"),
        "SECRET_KEY": "test-secret-key",
        "CODEWORD_KEYS": Fernet.generate_key().decode(),
        "REDIS_URL": redis_process.url,
        "DATABASE_URL": f"sqlite:///{tmp / 'directory.sqlite3'}",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": SERVICE_NUMBER,
        "ADMIN_TOKENS": f"mainapp={ADMIN_TOKEN}",
        "SUPPORT_TOKENS": f"helpdesk={SUPPORT_TOKEN}",
        "WEB_CONCURRENCY": "2",
    }


@pytest.fixture(scope="module")
def service(service_env: dict[str, str]) -> Iterator[str]:
    """The service and the test flows under gunicorn; where it listens."""
    if not REPO.joinpath("tests", "phone_flows.py").exists():
        pytest.skip("test flows missing")
    with (
        gunicorn_server(service_env, app="tests.phone_flows:app") as url,
        worker_process(service_env),  # it sends the codeword texts
    ):
        yield url


@pytest.fixture
def phone_app(make_app: Callable[..., Flask], service_env: dict[str, str], redis_url: str) -> Flask:
    """The app as ``flask phone`` builds it, in the service's environment."""
    return make_app(**{name: service_env[name] for name in service_env if name != "PORT"})


def place_call(app: Flask, flow: str = "verify", machine_detection: bool = False) -> str:
    """Have the simulated carrier place a call whose answer URL is a test flow."""
    carrier: SimulatedCarrier = app.extensions["carrier"]
    placed = carrier.place_call(
        to=OFFICE,
        url=f"{PUBLIC_BASE_URL}/flows/{flow}",
        status_callback=f"{PUBLIC_BASE_URL}/flows/status",
        timeout=30,
        time_limit=600,
        machine_detection=machine_detection,
    )
    return placed.sid


def flask_cli(app: Flask, *args: str, input: str | None = None) -> Any:
    """Run ``flask ARGS`` on ``app`` as the ``flask`` command does: with the commands
    installed packages register (``flask phone`` is one), not only the app's own."""
    cli = FlaskGroup(load_dotenv=False, set_debug_flag=False)
    return app.test_cli_runner().invoke(cli, args=list(args), input=input)


def phone(app: Flask, service: str, *args: str, input: str | None = None) -> Any:
    """Run ``flask phone ARGS --url SERVICE`` (``calls`` only reads Redis: no --url)."""
    where = [] if args[0] == "calls" else ["--url", service]
    return flask_cli(app, "phone", *args, *where, input=input)


def forms(redis_client: redis.Redis, path: str) -> list[dict[str, str]]:
    """The forms a test flow received at ``path``, oldest first."""
    return [entry["form"] for entry in received(redis_client) if entry["path"] == path]  # type: ignore[misc]


def statuses(redis_client: redis.Redis) -> list[str]:
    return [form["CallStatus"] for form in forms(redis_client, "/flows/status")]


# --- calls the service places ---------------------------------------------------------


def test_answering_a_call_hears_the_prompts_keys_the_code_and_hears_the_result(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    sid = place_call(phone_app)

    result = phone(phone_app, service, "answer", "--latest", input="123456\n")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    said = [line.split(None, 1)[1] for line in lines if line.strip().startswith("SAY")]
    assert said == ["Welcome to the test line.", "Enter your code.", f"The codeword is {SECRET}."]
    assert any(line.strip().startswith("PAUSE") for line in lines)
    assert "the service hung up" in result.output
    check = forms(redis_client, "/flows/check")
    assert [form["Digits"] for form in check] == ["123456"]
    assert check[0]["CallSid"] == sid


def test_every_call_webhook_carries_the_fields_twilio_sends(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    sid = place_call(phone_app)

    phone(phone_app, service, "answer", sid, input="123456\n")

    answer = forms(redis_client, "/flows/verify")[0]
    assert answer == {
        "AccountSid": SIMULATED_ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": "in-progress",
        "Called": OFFICE,
        "Caller": SERVICE_NUMBER,
        "Direction": "outbound-api",
        "From": SERVICE_NUMBER,
        "To": OFFICE,
    }


def test_answering_reports_initiated_ringing_in_progress_then_completed_with_duration(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    place_call(phone_app)

    phone(phone_app, service, "answer", "--latest", input="123456\n")

    assert statuses(redis_client) == ["initiated", "ringing", "in-progress", "completed"]
    callbacks = forms(redis_client, "/flows/status")
    assert [form["SequenceNumber"] for form in callbacks] == ["0", "1", "2", "3"]
    assert int(callbacks[-1]["CallDuration"]) >= 0
    assert "CallDuration" not in callbacks[0]


def test_a_wrong_code_follows_the_redirect_back_to_the_prompt(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    place_call(phone_app)

    result = phone(phone_app, service, "answer", "--latest", input="111111\n123456\n")

    assert result.exit_code == 0, result.output
    assert "That code is wrong." in result.output
    assert result.output.count("Welcome to the test line.") == 2
    assert [f["Digits"] for f in forms(redis_client, "/flows/check")] == ["111111", "123456"]


def test_silence_posts_empty_digits_when_the_gather_asks_for_it(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    """An empty line is silence; the relative <Redirect> then replays the prompt."""
    place_call(phone_app)

    result = phone(phone_app, service, "answer", "--latest", input="\n123456\n")

    assert result.exit_code == 0, result.output
    assert [f["Digits"] for f in forms(redis_client, "/flows/check")] == ["", "123456"]
    assert "We did not hear anything." in result.output
    assert f"The codeword is {SECRET}." in result.output


def test_silence_carries_on_to_the_next_verb_without_action_on_empty_result(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    place_call(phone_app, flow="quiet")

    result = phone(phone_app, service, "answer", "--latest", input="\n")

    assert result.exit_code == 0, result.output
    assert "No keys, so on to the next verb." in result.output
    assert forms(redis_client, "/flows/never") == []
    assert "the TwiML ran out" in result.output
    assert statuses(redis_client)[-1] == "completed"


def test_end_of_input_hangs_up_and_reports_the_call_completed(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    place_call(phone_app)

    result = phone(phone_app, service, "answer", "--latest", input="")

    assert result.exit_code == 0, result.output
    assert "the phone hung up" in result.output
    assert forms(redis_client, "/flows/check") == []
    assert statuses(redis_client)[-1] == "completed"


def test_an_answered_call_is_no_longer_listed_nor_answerable(
    phone_app: Flask, service: str
) -> None:
    sid = place_call(phone_app)
    assert sid in phone(phone_app, service, "calls").output

    phone(phone_app, service, "answer", sid, input="123456\n")

    assert phone(phone_app, service, "calls").output.strip() == "no calls ringing"
    again = phone(phone_app, service, "answer", sid, input="123456\n")
    assert again.exit_code != 0
    assert "no longer ringing" in again.output


def test_latest_answers_the_newest_call_still_ringing(phone_app: Flask, service: str) -> None:
    older = place_call(phone_app)
    newer = place_call(phone_app, flow="quiet")

    result = phone(phone_app, service, "answer", "--latest", input="\n")

    assert f"Call {newer}" in result.output
    assert older in phone(phone_app, service, "calls").output


def test_a_machine_answering_is_reported_as_machine_start_and_keys_nothing(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    place_call(phone_app, machine_detection=True)

    result = phone(phone_app, service, "answer", "--latest", "--machine", input="123456\n")

    assert "codeword is" not in result.output
    assert forms(redis_client, "/flows/verify")[0]["AnsweredBy"] == "machine_start"
    assert forms(redis_client, "/flows/check")[0]["Digits"] == ""
    assert forms(redis_client, "/flows/status")[-1]["AnsweredBy"] == "machine_start"


def test_a_person_answering_a_call_that_detects_machines_is_reported_human(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    place_call(phone_app, machine_detection=True)

    phone(phone_app, service, "answer", "--latest", input="123456\n")

    assert forms(redis_client, "/flows/verify")[0]["AnsweredBy"] == "human"


def test_a_phone_signing_with_another_token_is_refused_and_the_call_fails(
    make_app: Callable[..., Flask],
    service_env: dict[str, str],
    service: str,
    redis_client: redis.Redis,
) -> None:
    app = make_app(**{**service_env, "TWILIO_AUTH_TOKEN": "not-the-service-token"})
    place_call(app)

    result = phone(app, service, "answer", "--latest", input="123456\n")

    assert result.exit_code != 0
    assert "HTTP 403" in result.output
    assert "codeword is" not in result.output


def test_a_flow_that_redirects_forever_is_hung_up(phone_app: Flask, service: str) -> None:
    place_call(phone_app, flow="loop")

    result = phone(phone_app, service, "answer", "--latest")

    assert result.exit_code != 0
    assert "50 webhooks on one call" in result.output


def test_declining_a_call_reports_it_busy(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    place_call(phone_app)

    result = phone(phone_app, service, "decline", "--latest", "--as", "busy")

    assert result.exit_code == 0, result.output
    assert statuses(redis_client) == ["initiated", "busy"]
    assert forms(redis_client, "/flows/status")[-1]["CallDuration"] == "0"
    assert forms(redis_client, "/flows/verify") == []
    assert phone(phone_app, service, "calls").output.strip() == "no calls ringing"


def test_answer_needs_a_call_sid_or_latest(phone_app: Flask, service: str) -> None:
    place_call(phone_app)

    result = phone(phone_app, service, "answer")

    assert result.exit_code == 2
    assert "--latest" in result.output


def test_the_phone_refuses_a_service_set_up_with_a_real_twilio_account(
    make_app: Callable[..., Flask], service_env: dict[str, str]
) -> None:
    app = make_app(**service_env, TWILIO_ACCOUNT_SID="AC" + "1" * 32)

    result = flask_cli(app, "phone", "calls")

    assert result.exit_code != 0
    assert "real phones" in result.output


# --- texts ------------------------------------------------------------------------------


def network(app: Flask, service: str, clock: Callable[[], float] = time.time) -> PhoneNetwork:
    webhooks = Webhooks(PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN, service)
    return PhoneNetwork(app.extensions["carrier"], webhooks, clock=clock)


def test_a_text_gets_the_twiml_reply_and_the_texts_sent_meanwhile_through_the_carrier(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    exchange = network(phone_app, service).send_text(ADMIN_CELL, "CODEWORD", path="/flows/sms")

    assert [(r.to_number, r.body) for r in exchange.replies] == [(ADMIN_CELL, "You said CODEWORD.")]
    assert [t.body for t in exchange.texts] == [f"By the carrier: {SECRET}"]
    assert exchange.texts[0].status == "delivered"
    assert exchange.problems == []
    inbound = forms(redis_client, "/flows/sms")[0]
    assert inbound["AccountSid"] == SIMULATED_ACCOUNT_SID
    assert inbound["MessageSid"] == inbound["SmsSid"] == exchange.sid
    assert (inbound["From"], inbound["To"], inbound["Body"]) == (
        ADMIN_CELL,
        SERVICE_NUMBER,
        "CODEWORD",
    )
    assert inbound["NumMedia"] == "0"


def test_delivering_a_text_reports_sent_then_delivered_and_the_service_can_redact_it(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    net = network(phone_app, service)
    exchange = net.send_text(ADMIN_CELL, "CODEWORD", path="/flows/sms")

    callbacks = forms(redis_client, "/flows/message-status")
    assert [f["MessageStatus"] for f in callbacks] == ["sent", "delivered"]
    assert {f["MessageSid"] for f in callbacks} == {exchange.texts[0].sid}
    assert net.texts(ADMIN_CELL)[0].redacted


def test_a_text_older_than_its_validity_period_fails_instead_of_arriving(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    phone_app.extensions["carrier"].send_sms(
        to=ADMIN_CELL,
        body="too late",
        status_callback=f"{PUBLIC_BASE_URL}/flows/message-status",
        validity_period=600,
    )
    an_hour_later = network(phone_app, service, clock=lambda: time.time() + 3600)

    problems = an_hour_later.deliver(an_hour_later.texts(ADMIN_CELL))

    assert problems == []
    callbacks = forms(redis_client, "/flows/message-status")
    assert [(f["MessageStatus"], f.get("ErrorCode")) for f in callbacks] == [("failed", "30036")]
    assert an_hour_later.texts(ADMIN_CELL)[0].status == "failed"


def test_flask_phone_texts_lists_texts_to_a_number_newest_first_and_delivers_them(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    carrier = phone_app.extensions["carrier"]
    status_callback = f"{PUBLIC_BASE_URL}/flows/message-status"
    carrier.send_sms(to=ADMIN_CELL, body="first", status_callback=status_callback)
    carrier.send_sms(to="+12025550122", body="someone else's", status_callback=status_callback)
    carrier.send_sms(to=ADMIN_CELL, body="second", status_callback=status_callback)

    result = phone(phone_app, service, "texts", "--to", "(202) 555-0111")

    assert result.exit_code == 0, result.output
    bodies = [line.strip() for line in result.output.splitlines() if line.startswith("    ")]
    assert bodies == ["second", "first"]
    assert "delivered, body since redacted at the carrier" in result.output
    delivered = [f["To"] for f in forms(redis_client, "/flows/message-status")]
    assert delivered.count(ADMIN_CELL) == 4  # sent + delivered, twice
    assert "+12025550122" not in delivered


def test_a_call_past_its_time_limit_ends_before_the_keys_reach_the_service(
    phone_app: Flask, service: str, redis_client: redis.Redis
) -> None:
    sid = place_call(phone_app)  # time_limit=600
    now = [time.time()]

    def slow_keypad(prompt: GatherPrompt) -> str:
        now[0] += 601
        return "123456"

    net = network(phone_app, service, clock=lambda: now[0])
    outcome = net.answer(net.find_call(sid), slow_keypad)

    assert outcome.ended_by == "time-limit"
    assert forms(redis_client, "/flows/check") == []
    assert forms(redis_client, "/flows/status")[-1]["CallDuration"] == "601"


def test_the_phone_says_plainly_when_redis_is_down(
    phone_app: Flask, redis_process: RedisProcess
) -> None:
    redis_process.stop()

    result = flask_cli(phone_app, "phone", "calls")

    assert result.exit_code == 1
    assert "cannot reach the simulated carrier's Redis" in result.output
    assert "Traceback" not in result.output


# --- the service's own number -----------------------------------------------------------


def test_dialling_the_service_number_plays_ivr_inbound(phone_app: Flask, service: str) -> None:
    result = phone(phone_app, service, "dial", "--from", "+1 202 555 0199")

    assert result.exit_code == 0, result.output
    assert "verification line" in result.output
    assert "the service hung up" in result.output


# --- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "num_digits", "expected"),
    [
        ("123456", 6, ("123456", "")),
        ("12 34 56", 6, ("123456", "")),
        ("1234567", 6, ("123456", "")),
        ("12#34", None, ("12", "#")),
        ("12x3", None, ("123", "")),
        ("", 6, ("", "")),
    ],
)
def test_keys_are_collected_as_twilio_gathers_them(
    keys: str, num_digits: int | None, expected: tuple[str, str]
) -> None:
    prompt = GatherPrompt(num_digits=num_digits, finish_on_key="#", timeout=5)
    assert keyed_digits(keys, prompt) == expected


def test_webhooks_are_signed_for_the_public_url_and_sent_where_the_service_listens() -> None:
    webhooks = Webhooks(PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN, "http://127.0.0.1:9999")
    url = f"{PUBLIC_BASE_URL}/ivr/call/abc?step=2"

    assert webhooks.destination(url) == "http://127.0.0.1:9999/ivr/call/abc?step=2"
    assert webhooks.destination("https://elsewhere.example/x") == "https://elsewhere.example/x"
    assert RequestValidator(TWILIO_AUTH_TOKEN).validate(
        url, {"A": "1"}, webhooks.validator.compute_signature(url, {"A": "1"})
    )


def test_spelled_out_ssml_is_heard_a_character_at_a_time() -> None:
    response = VoiceResponse()
    say = response.say()
    say.nest("The codeword is: capital ")
    say.say_as("Ma", interpret_as="spell-out")
    say.break_(time="400ms")
    say.nest(" dash ")
    say.say_as("47", interpret_as="spell-out")
    say.break_(time="400ms")
    say.emphasis("now")

    root = ET.fromstring(str(response))  # noqa: S314

    assert spoken_text(root.find("Say")) == "The codeword is: capital M a dash 4 7 now"


# --- the service's own flows, end to end -----------------------------------------------------

CODEWORD = "maple-otter-47"
CODEWORD_HEARD = "m a p l e dash o t t e r dash 4 7"
_numbers = itertools.count(10)


def demo_practice(service: str, admins: int = 1) -> tuple[str, str, list[str]]:
    """A practice with a verified office number, a codeword and admins with verified cells.

    Numbers differ from test to test: the service's directory lives for the whole module.
    """
    practice_id = f"p-{next(_numbers)}"
    office = f"+120255501{next(_numbers):02d}"
    created = requests.put(
        f"{service}/api/v1/practices/{practice_id}",
        json={
            "name": "Bright Smiles Dental",
            "office_number": office,
            "office_number_verified": True,
            "codeword": CODEWORD,
        },
        headers=ADMIN,
        timeout=5,
    )
    assert created.status_code == 201, created.text
    cells = []
    for n in range(admins):
        cell = f"+120255501{next(_numbers):02d}"
        user = requests.put(
            f"{service}/api/v1/practices/{practice_id}/users/admin-{n}",
            json={
                "name": f"Admin {n}",
                "role": "admin",
                "cell_number": cell,
                "cell_number_verified": True,
            },
            headers=ADMIN,
            timeout=5,
        )
        assert user.status_code == 201, user.text
        cells.append(cell)
    return practice_id, office, cells


def request_verification_call(service: str, practice_id: str) -> requests.Response:
    return requests.post(
        f"{service}/api/v1/verification-calls",
        json={"practice_id": practice_id, "requested_by": "Dana at the front desk"},
        headers=SUPPORT,
        timeout=5,
    )


def verification_call_status(service: str, call_id: str) -> str:
    response = requests.get(
        f"{service}/api/v1/verification-calls/{call_id}", headers=SUPPORT, timeout=5
    )
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_support_rings_the_office_and_the_right_code_hears_the_codeword(
    phone_app: Flask, service: str
) -> None:
    practice_id, office, _ = demo_practice(service)
    created = request_verification_call(service, practice_id)
    assert created.status_code == 201, created.text
    call = created.json()
    assert office in phone(phone_app, service, "calls").output

    result = phone(phone_app, service, "answer", "--latest", input=f"{call['challenge_code']}\n")

    assert result.exit_code == 0, result.output
    assert result.output.count(CODEWORD_HEARD) == 2
    assert verification_call_status(service, call["id"]) == "disclosed"
    # Hanging up sent the final status callback: the practice may be called again.
    assert request_verification_call(service, practice_id).status_code == 201


def test_three_wrong_codes_lock_the_call_and_the_codeword_is_never_heard(
    phone_app: Flask, service: str
) -> None:
    practice_id, _, _ = demo_practice(service)
    call = request_verification_call(service, practice_id).json()
    wrong = "000000" if call["challenge_code"] != "000000" else "111111"

    result = phone(phone_app, service, "answer", "--latest", input=f"{wrong}\n" * 3)

    assert result.exit_code == 0, result.output
    assert "m a p l e" not in result.output
    assert "the service hung up" in result.output
    assert verification_call_status(service, call["id"]) == "locked"


def test_a_voicemail_answering_the_verification_call_hears_no_codeword(
    phone_app: Flask, service: str
) -> None:
    practice_id, _, _ = demo_practice(service)
    call = request_verification_call(service, practice_id).json()

    result = phone(phone_app, service, "answer", "--latest", "--machine")

    assert result.exit_code == 0, result.output
    assert "m a p l e" not in result.output
    assert verification_call_status(service, call["id"]) == "voicemail"


def test_an_office_that_does_not_answer_frees_the_practice_for_another_call(
    phone_app: Flask, service: str
) -> None:
    practice_id, _, _ = demo_practice(service)
    call = request_verification_call(service, practice_id).json()
    assert request_verification_call(service, practice_id).status_code == 409

    result = phone(phone_app, service, "decline", "--latest", "--as", "no-answer")

    assert result.exit_code == 0, result.output
    assert verification_call_status(service, call["id"]) == "no-answer"
    assert request_verification_call(service, practice_id).status_code == 201


def test_texting_the_keyword_from_an_admin_cell_brings_the_codeword_then_it_is_redacted(
    phone_app: Flask, service: str
) -> None:
    _, _, [cell] = demo_practice(service)

    result = phone(phone_app, service, "text", "--from", cell, " codeword ")

    assert result.exit_code == 0, result.output
    [codeword_text] = [line for line in result.output.splitlines() if line.startswith("text ")]
    assert "(delivered)" in codeword_text and CODEWORD in codeword_text
    # The worker redacts it once the phone has reported it delivered.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = phone(phone_app, service, "texts", "--to", cell).output
        if "delivered, body since redacted at the carrier" in listed:
            break
        time.sleep(0.1)
    assert "delivered, body since redacted at the carrier" in listed


def test_texting_the_keyword_from_an_unknown_number_brings_no_codeword(
    phone_app: Flask, service: str
) -> None:
    demo_practice(service)

    result = phone(phone_app, service, "text", "--from", "+12025550198", "CODEWORD")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].startswith("reply: ")
    assert CODEWORD not in result.output
    assert phone(phone_app, service, "texts", "--to", "+12025550198").output.strip() == (
        "no texts to +12025550198"
    )


def test_the_demo_session_runs_on_nothing_but_the_instance_folder(
    tmp_path: Path, redis_url: str
) -> None:
    """As docs/phone.md tells it, with no TWILIO_* set: the service and the phone in two
    processes share the auth token generated into instance/dev-secrets.json."""
    # A Redis database of its own: this module's service runs a worker on the queue of
    # database 0, which would take this session's jobs and find nothing of them in its own
    # directory.
    session_redis = redis_url.rsplit("/", 1)[0] + "/1"
    connect(session_redis).flushdb()
    env = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "REDIS_URL": session_redis,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'directory.sqlite3'}",
        "SUPPORT_TOKENS": f"demo={SUPPORT_TOKEN}",
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FLASK_SKIP_DOTENV": "1",
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]

    def run(*args: str, stdin: str = "", port: str = "8000") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*flask, *args],
            cwd=REPO,
            env={**env, "PORT": port},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("seed-demo").returncode == 0
    with gunicorn_server(env) as url:
        # PUBLIC_BASE_URL defaults to the service's own port, which the phone is told,
        # and the worker too (it builds the codeword text's status callback).
        port = url.rsplit(":", 1)[1]
        with worker_process({**env, "PORT": port}):
            call = request_verification_call(url, "demo-practice").json()
            answered = run(
                "phone", "answer", "--latest", stdin=f"{call['challenge_code']}\n", port=port
            )
            texted = run(
                "phone", "text", "--from", "+12025550111", "CODEWORD", "--wait", "30", port=port
            )

    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert CODEWORD_HEARD in answered.stdout
    assert texted.returncode == 0, texted.stdout + texted.stderr
    assert CODEWORD in texted.stdout


def test_a_number_the_phone_cannot_read_is_refused_naming_the_option_and_the_format(
    phone_app: Flask,
) -> None:
    result = flask_cli(phone_app, "phone", "text", "--from", "12345", "HI")
    assert result.exit_code == 2
    assert "Invalid value for '--from': '12345' is not a valid phone number." in result.output
    assert "e.g. +12025550111" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("keyword", ["STOP", "start"])
def test_the_phone_says_why_stop_and_start_get_no_reply(
    phone_app: Flask, service: str, keyword: str
) -> None:
    result = phone(phone_app, service, "text", "--from", "+12025550177", keyword)
    assert result.exit_code == 0, result.output
    assert "Twilio itself answers STOP, START" in result.output.splitlines()[1]


def test_any_other_text_without_an_answer_is_just_no_reply() -> None:
    from phone.cli import no_reply_because

    assert no_reply_because("hello") == "(no reply)"
