"""Office number verification: the admin API asks, the office is called, the right code verifies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from core.carrier import PlacedCall
from core.errors import CarrierUnavailable
from devservers.redis_server import RedisProcess
from store import keys
from tests.helpers import ADMIN, PUBLIC_BASE_URL, SUPPORT, put_practice
from tests.redis_topologies import all_keys
from tests.twilio_fake import TwilioRecorder
from tests.voice import (
    ACCOUNT_SID,
    CODEWORD,
    OFFICE,
    Clock,
    TwilioCall,
    hangs_up,
    last_placed_call,
    request_call,
    said,
    setup_practice,
    spellings,
)

pytestmark = pytest.mark.redis_topologies

NEW_OFFICE = "+12025550142"


@pytest.fixture
def practice(client: FlaskClient) -> None:
    """Bright Smiles with an office number not yet verified, and a codeword."""
    assert put_practice(client, codeword=CODEWORD).status_code == 201


def ask(client: FlaskClient, practice_id: str = "p-1", **kwargs: Any) -> Any:
    return client.post(
        f"/api/v1/practices/{practice_id}/office-number/verification",
        headers=kwargs.pop("headers", ADMIN),
        **kwargs,
    )


def start(client: FlaskClient, practice_id: str = "p-1") -> tuple[dict[str, Any], TwilioCall]:
    response = ask(client, practice_id)
    assert response.status_code == 201, response.get_json()
    return response.get_json(), last_placed_call(client)


def status_of(client: FlaskClient, verification_id: str, practice_id: str = "p-1") -> str:
    response = client.get(
        f"/api/v1/practices/{practice_id}/office-number/verification/{verification_id}",
        headers=ADMIN,
    )
    assert response.status_code == 200
    return str(response.get_json()["status"])


def office_verified(client: FlaskClient, practice_id: str = "p-1") -> bool:
    practice = client.get(f"/api/v1/practices/{practice_id}", headers=ADMIN).get_json()
    return bool(practice["office_number_verified"])


def voice_events(client: FlaskClient) -> list[dict[str, Any]]:
    events = client.get("/api/v1/practices/p-1/disclosures", headers=ADMIN).get_json()["events"]
    return [e for e in events if e["channel"] == "voice"]


def a_wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 10**6:06d}"


def placed_calls(client: FlaskClient) -> list[dict[str, Any]]:
    return list(client.application.extensions["carrier"].recorded("calls"))


# The call, walked as Twilio walks it ---------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_the_right_code_on_the_office_phone_verifies_the_office_number(
    client: FlaskClient,
) -> None:
    response = ask(client)
    assert response.status_code == 201
    body = response.get_json()
    assert re.fullmatch(r"[0-9]{6}", body["code"])
    assert body["status"] == "queued"
    assert body["id"].startswith("VC")
    assert body["expires_at"].endswith("+00:00")
    assert response.headers["Location"] == (
        f"/api/v1/practices/p-1/office-number/verification/{body['id']}"
    )
    (placed,) = placed_calls(client)
    assert placed["to"] == OFFICE
    assert placed["machine_detection"] is True
    assert placed["url"].startswith(f"{PUBLIC_BASE_URL}/ivr/verification/answer?t=")
    assert not office_verified(client)

    call = last_placed_call(client)
    call.status("ringing")
    assert status_of(client, body["id"]) == "ringing"
    greeting = call.answer()
    assert "office number of Bright Smiles" in said(greeting)
    gather = greeting.find("Gather")
    assert gather is not None and gather.get("numDigits") == "6"
    assert status_of(client, body["id"]) == "in-progress"

    done = call.press(body["code"])
    assert "now verified as the office number of Bright Smiles" in said(done)
    assert hangs_up(done) and done.find("Gather") is None
    assert office_verified(client)
    assert status_of(client, body["id"]) == "verified"
    call.status("completed")
    assert status_of(client, body["id"]) == "verified"

    (event,) = voice_events(client)
    assert event["outcome"] == "office_number_verified"
    assert event["actor"] == "mainapp"
    assert event["to"] == "+1******0100"
    assert event["reference"] == call.sid


@pytest.mark.usefixtures("practice")
def test_the_office_number_call_never_reads_the_codeword(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = app.extensions["directory"]

    def no_codeword(*_: object) -> str:
        raise AssertionError("the codeword was read")

    monkeypatch.setattr(store, "read_codeword", no_codeword)
    monkeypatch.setattr(store, "read_codeword_for_office", no_codeword)
    body, call = start(client)
    call.answer()
    done = call.press(body["code"])
    assert office_verified(client)
    assert spellings(done) == []
    for document in call.documents:
        assert CODEWORD.lower() not in document.lower()
        assert body["code"] not in document


def test_a_practice_without_a_codeword_can_verify_its_office_number(
    client: FlaskClient,
) -> None:
    put_practice(client)
    body, call = start(client)
    call.answer()
    call.press(body["code"])
    assert office_verified(client)


@pytest.mark.usefixtures("practice")
def test_a_wrong_code_asks_again_and_the_right_one_still_verifies(client: FlaskClient) -> None:
    body, call = start(client)
    call.answer()
    again = call.press(a_wrong_code(body["code"]))
    assert "not correct" in said(again) and "2 more tries" in said(again)
    assert not office_verified(client)
    call.press(body["code"])
    assert office_verified(client)


@pytest.mark.usefixtures("practice")
def test_three_wrong_codes_lock_the_office_verification(client: FlaskClient) -> None:
    body, call = start(client)
    call.answer()
    call.press(a_wrong_code(body["code"]))
    call.press(a_wrong_code(body["code"]))
    locked = call.press(a_wrong_code(body["code"]))
    assert "locked" in said(locked) and hangs_up(locked)
    assert status_of(client, body["id"]) == "locked"
    assert not office_verified(client)
    assert [e["outcome"] for e in voice_events(client)] == ["office_verification_locked"]

    # The right code is no use any more, even replayed on the same Gather.
    assert call.gather_action is None
    late = call.post(call.url.replace("/answer", "/code"), Digits=body["code"])
    assert hangs_up(late)
    assert not office_verified(client)


@pytest.mark.usefixtures("practice")
def test_the_code_expires_after_ten_minutes(client: FlaskClient, clock: Clock) -> None:
    body, call = start(client)
    call.answer()
    clock.advance(10 * 60)
    late = call.press(body["code"])
    assert "expired" in said(late) and hangs_up(late)
    assert not office_verified(client)
    assert status_of(client, body["id"]) == "expired"


@pytest.mark.usefixtures("practice")
def test_a_number_changed_during_the_call_is_not_verified(client: FlaskClient) -> None:
    body, call = start(client)
    call.answer()
    put_practice(client, office_number=NEW_OFFICE)
    refused = call.press(body["code"])
    assert "sorry" in said(refused).lower() and hangs_up(refused)
    assert not office_verified(client)
    assert status_of(client, body["id"]) == "failed"
    assert [e["outcome"] for e in voice_events(client)] == ["office_verification_failed"]


@pytest.mark.usefixtures("practice")
def test_a_code_used_once_verifies_nothing_more(client: FlaskClient) -> None:
    body, call = start(client)
    call.answer()
    code_url = call.keys_url
    call.press(body["code"])
    put_practice(client, office_number_verified=False)
    assert not office_verified(client)
    replay = call.post(code_url, Digits=body["code"])
    assert hangs_up(replay)
    assert not office_verified(client)


@pytest.mark.usefixtures("practice")
def test_a_machine_hears_no_question_and_nothing_is_verified(client: FlaskClient) -> None:
    body, call = start(client)
    machine = call.answer("machine_start")
    assert machine.find("Gather") is None and hangs_up(machine)
    assert status_of(client, body["id"]) == "voicemail"
    assert [e["outcome"] for e in voice_events(client)] == ["office_verification_voicemail"]


@pytest.mark.usefixtures("practice")
def test_an_unanswered_call_reads_no_answer_and_is_audited(client: FlaskClient) -> None:
    body, call = start(client)
    call.status("no-answer")
    assert status_of(client, body["id"]) == "no-answer"
    assert [e["outcome"] for e in voice_events(client)] == ["office_verification_no-answer"]
    assert not office_verified(client)


def test_a_spanish_practice_hears_spanish(client: FlaskClient) -> None:
    put_practice(client, language="es")
    body, call = start(client)
    greeting = call.answer()
    assert "número de la oficina de Bright Smiles" in said(greeting)
    assert {say.get("language") for say in greeting.iter("Say")} == {"es-US"}
    wrong = call.press(a_wrong_code(body["code"]))
    assert "no es correcto" in said(wrong)
    done = call.press(body["code"])
    assert "queda verificado" in said(done)
    assert {say.get("language") for say in done.iter("Say")} == {"es-US"}
    assert office_verified(client)


@pytest.mark.usefixtures("practice")
def test_a_forged_webhook_is_refused_and_verifies_nothing(client: FlaskClient) -> None:
    body, call = start(client)
    call.answer()
    assert call.gather_action is not None
    path = call.gather_action[len(PUBLIC_BASE_URL) :]
    form = {"CallSid": call.sid, "To": OFFICE, "AccountSid": ACCOUNT_SID, "Digits": body["code"]}
    assert client.post(path, data=form).status_code == 403
    assert client.post(path, data=form, headers={"X-Twilio-Signature": "x"}).status_code == 403
    assert not office_verified(client)


# The admin API -------------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_the_status_never_shows_the_code(client: FlaskClient) -> None:
    body, _call = start(client)
    response = client.get(
        f"/api/v1/practices/p-1/office-number/verification/{body['id']}", headers=ADMIN
    )
    shown = response.get_json()
    assert shown["id"] == body["id"]
    assert shown["to"] == "+1******0100"
    assert body["code"] not in response.get_data(as_text=True)


@pytest.mark.usefixtures("practice")
def test_an_optional_requester_is_recorded(client: FlaskClient) -> None:
    response = ask(client, json={"requested_by": "Dana (admin)"})
    assert response.status_code == 201
    call = last_placed_call(client)
    call.status("busy")
    (event,) = voice_events(client)
    assert (event["outcome"], event["requested_by"]) == ("office_verification_busy", "Dana (admin)")


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize("body", [[], {"requested_by": ""}, {"requested_by": 7}])
def test_bad_input_is_422(client: FlaskClient, body: Any) -> None:
    response = ask(client, json=body)
    assert response.status_code == 422
    assert placed_calls(client) == []


def test_an_unknown_practice_is_404(client: FlaskClient) -> None:
    response = ask(client, "p-404")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("practice")
def test_only_an_admin_token_may_ask_or_look(client: FlaskClient) -> None:
    assert ask(client, headers={}).status_code == 401
    assert ask(client, headers=SUPPORT).status_code == 403
    body, _call = start(client)
    path = f"/api/v1/practices/p-1/office-number/verification/{body['id']}"
    assert client.get(path, headers=SUPPORT).status_code == 403
    assert client.get(path).status_code == 401


@pytest.mark.usefixtures("practice")
def test_an_unknown_or_foreign_verification_is_404(client: FlaskClient) -> None:
    put_practice(client, "p-2", office_number="(202) 555-0101")
    body, _call = start(client)
    other = client.get(
        f"/api/v1/practices/p-2/office-number/verification/{body['id']}", headers=ADMIN
    )
    assert other.status_code == 404
    unknown = client.get(
        "/api/v1/practices/p-1/office-number/verification/VC" + "0" * 32, headers=ADMIN
    )
    assert unknown.status_code == 404
    # Support's API does not show office number calls.
    assert client.get(f"/api/v1/verification-calls/{body['id']}", headers=SUPPORT).status_code == (
        404
    )


def test_a_codeword_call_is_not_an_office_verification(client: FlaskClient) -> None:
    setup_practice(client)
    call_id = request_call(client).get_json()["id"]
    response = client.get(
        f"/api/v1/practices/p-1/office-number/verification/{call_id}", headers=ADMIN
    )
    assert response.status_code == 404


@pytest.mark.usefixtures("practice")
def test_one_call_to_the_office_at_a_time(client: FlaskClient) -> None:
    body, call = start(client)
    second = ask(client)
    assert second.status_code == 409
    error = second.get_json()["error"]
    assert (error["code"], error["live_call_id"]) == ("call_in_progress", body["id"])
    call.status("completed")
    assert ask(client).status_code == 201


def test_a_live_codeword_call_holds_off_an_office_verification(client: FlaskClient) -> None:
    setup_practice(client)
    call_id = request_call(client).get_json()["id"]
    response = ask(client)
    assert response.status_code == 409
    assert response.get_json()["error"]["live_call_id"] == call_id


@pytest.mark.usefixtures("practice")
def test_a_fourth_verification_within_the_hour_is_429(client: FlaskClient) -> None:
    for _ in range(3):
        _body, call = start(client)
        call.status("completed")
    limited = ask(client)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 3000 < int(limited.headers["Retry-After"]) <= 3600
    assert limited.get_json()["error"]["limit"] == "office_verifications_per_practice"
    assert limited.get_json()["error"]["retry_after"] == int(limited.headers["Retry-After"])
    assert len(placed_calls(client)) == 3
    # Support's codeword calls have limits of their own.
    put_practice(client, office_number_verified=True)
    assert request_call(client).status_code == 201


class FailingCarrier:
    """The phone network refusing every call (Twilio down)."""

    def place_call(self, **_: Any) -> PlacedCall:
        raise CarrierUnavailable("the phone carrier is unavailable, try again")


@pytest.mark.usefixtures("practice")
def test_a_carrier_failure_is_502_and_leaves_nothing_behind(
    app: Flask, client: FlaskClient, redis_client: redis.Redis
) -> None:
    working = app.extensions["carrier"]
    app.extensions["carrier"] = FailingCarrier()
    for _ in range(4):
        response = ask(client)
        assert response.status_code == 502
        assert response.get_json()["error"]["code"] == "carrier_unavailable"
        assert int(response.headers["Retry-After"]) > 0
    assert all_keys(redis_client, keys.ALL_CALL_SESSIONS) == []
    assert all_keys(redis_client, keys.ALL_LIVE_CALLS) == []

    app.extensions["carrier"] = working
    for _ in range(3):
        _body, call = start(client)
        call.status("completed")


@pytest.mark.usefixtures("practice")
def test_redis_down_is_503_and_places_no_call(
    app: Flask, client: FlaskClient, redis_process: RedisProcess
) -> None:
    placed: list[dict[str, Any]] = []

    class CountingCarrier:
        def place_call(self, **kwargs: Any) -> PlacedCall:
            placed.append(kwargs)
            return PlacedCall(sid="CA" + "4" * 32, status="queued")

    app.extensions["carrier"] = CountingCarrier()
    redis_process.stop()
    response = ask(client)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert placed == []
    status = client.get(
        "/api/v1/practices/p-1/office-number/verification/VC" + "0" * 32, headers=ADMIN
    )
    assert status.status_code == 503


@pytest.mark.usefixtures("practice")
def test_the_database_lost_at_the_right_code_verifies_nothing(
    app: Flask, client: FlaskClient
) -> None:
    body, call = start(client)
    call.answer()
    database = Path(app.extensions["directory"].engine.url.database)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            path.unlink()
    app.extensions["directory"].engine.dispose()
    apology = call.press(body["code"])
    assert "sorry" in said(apology).lower() and hangs_up(apology)
    assert status_of(client, body["id"]) == "failed"


# Against Twilio's contract -------------------------------------------------------------


def test_twilio_is_asked_to_call_the_office_with_our_callbacks(
    recorded_app: Flask, twilio_recorder: tuple[str, TwilioRecorder]
) -> None:
    client = recorded_app.test_client()
    assert put_practice(client).status_code == 201
    response = ask(client)
    assert response.status_code == 201
    (request,) = twilio_recorder[1]
    assert (request.method, request.path) == (
        "POST",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
    )
    assert request.form["To"] == OFFICE
    assert request.form["From"] == "+15005550006"
    assert request.form["Url"].startswith(f"{PUBLIC_BASE_URL}/ivr/verification/answer?t=")
    assert request.form["StatusCallback"].startswith(
        f"{PUBLIC_BASE_URL}/ivr/verification/status?t="
    )
    assert request.form["MachineDetection"] == "Enable"
    assert response.get_json()["code"] not in str(request.form)
