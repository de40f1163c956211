"""The verification call driven as Twilio drives it: signed webhooks, TwiML followed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from devservers.redis_server import RedisProcess
from store import keys
from tests.helpers import ADMIN, METRICS, SUPPORT, post_signed, put_practice
from tests.voice import (
    ACCOUNT_SID,
    CODEWORD,
    CODEWORD_SPOKEN_EN,
    CODEWORD_SPOKEN_ES,
    OFFICE,
    Clock,
    TwilioCall,
    hangs_up,
    last_placed_call,
    path_of,
    request_call,
    said,
    setup_practice,
    spellings,
    start_call,
)

pytestmark = pytest.mark.redis_topologies


@pytest.fixture
def practice(client: FlaskClient) -> None:
    setup_practice(client)


def call_status(client: FlaskClient, call_id: str) -> str:
    response = client.get(f"/api/v1/verification-calls/{call_id}", headers=SUPPORT)
    assert response.status_code == 200
    return str(response.get_json()["status"])


def outcomes(client: FlaskClient) -> list[str]:
    events = client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT).get_json()["events"]
    return [e["outcome"] for e in events if e["channel"] == "voice"]


def a_wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 10**6:06d}"


# The right code ----------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_the_right_code_hears_the_codeword_spelled_out_twice(client: FlaskClient) -> None:
    body, call = start_call(client)

    greeting = call.answer()
    gather = greeting.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "6"
    assert gather.get("actionOnEmptyResult") == "true"
    assert "Bright Smiles" in said(greeting)
    assert spellings(greeting) == []

    reading = call.press(body["challenge_code"])
    assert spellings(reading) == [CODEWORD_SPOKEN_EN, CODEWORD_SPOKEN_EN]
    offer = reading.find("Gather")
    assert offer is not None and offer.get("numDigits") == "1"
    assert "press 1" in said(offer)
    assert call_status(client, body["id"]) == "disclosed"


@pytest.mark.usefixtures("practice")
def test_each_character_is_followed_by_a_pause(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    reading = call.press(body["challenge_code"])
    spelled = next(say for say in reading.iter("Say") if say.find("say-as") is not None)
    assert len(spelled.findall("break")) == len(CODEWORD)


@pytest.mark.usefixtures("practice")
def test_pressing_1_repeats_the_codeword_a_couple_of_times_at_most(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    call.press(body["challenge_code"])
    repeat_url = call.gather_action
    assert repeat_url is not None

    first = call.press("1")
    assert spellings(first) == [CODEWORD_SPOKEN_EN]
    assert first.find("Gather") is not None
    second = call.press("1")
    assert spellings(second) == [CODEWORD_SPOKEN_EN]
    assert second.find("Gather") is None and hangs_up(second)

    third = call.post(repeat_url, Digits="1")
    assert spellings(third) == []
    assert hangs_up(third)


@pytest.mark.usefixtures("practice")
def test_any_other_key_after_the_codeword_says_goodbye(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    call.press(body["challenge_code"])
    goodbye = call.press("9")
    assert spellings(goodbye) == []
    assert "Goodbye" in said(goodbye) and hangs_up(goodbye)


# Wrong codes, silence, machines ------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_a_wrong_code_is_told_so_and_asked_again(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    again = call.press(a_wrong_code(body["challenge_code"]))
    assert "not correct" in said(again)
    assert again.find("Gather") is not None
    assert spellings(again) == []
    assert call_status(client, body["id"]) == "in-progress"

    reading = call.press(body["challenge_code"])
    assert spellings(reading) == [CODEWORD_SPOKEN_EN, CODEWORD_SPOKEN_EN]


@pytest.mark.usefixtures("practice")
def test_three_wrong_codes_lock_the_call(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    wrong = a_wrong_code(body["challenge_code"])
    call.press(wrong)
    code_url = call.keys_url
    call.press(wrong)
    locked = call.press(wrong)
    assert "locked" in said(locked)
    # The caller learns how to start again.
    assert "contact support at practicebynumbers.com and ask for a new" in said(locked)
    assert hangs_up(locked) and locked.find("Gather") is None
    assert call_status(client, body["id"]) == "locked"

    # The right code on the same call, afterwards, is worth nothing.
    late = call.post(code_url, Digits=body["challenge_code"])
    assert spellings(late) == [] and hangs_up(late)
    assert call_status(client, body["id"]) == "locked"
    assert outcomes(client) == ["locked"]


@pytest.mark.usefixtures("practice")
def test_silence_is_met_with_two_reprompts_then_the_call_ends(client: FlaskClient) -> None:
    _body, call = start_call(client)
    call.answer()
    for _ in range(2):
        reprompt = call.stay_silent()
        assert "did not hear a code" in said(reprompt)
        assert reprompt.find("Gather") is not None
    ended = call.stay_silent()
    assert hangs_up(ended) and ended.find("Gather") is None
    assert spellings(ended) == []


@pytest.mark.usefixtures("practice")
def test_silence_does_not_use_up_the_three_tries(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    wrong = a_wrong_code(body["challenge_code"])
    call.stay_silent()
    call.press(wrong)
    call.stay_silent()
    call.press(wrong)
    reading = call.press(body["challenge_code"])
    assert spellings(reading) == [CODEWORD_SPOKEN_EN, CODEWORD_SPOKEN_EN]


@pytest.mark.parametrize("answered_by", ["machine_start", "machine_end_beep", "fax"])
@pytest.mark.usefixtures("practice")
def test_a_machine_hears_a_short_message_with_no_secret(
    client: FlaskClient, answered_by: str
) -> None:
    body, call = start_call(client)
    message = call.answer(answered_by=answered_by)
    assert message.find("Gather") is None and hangs_up(message)
    assert "Bright Smiles" in said(message)
    assert "code" not in said(message).lower()
    assert call_status(client, body["id"]) == "voicemail"
    assert outcomes(client) == ["voicemail"]


@pytest.mark.usefixtures("practice")
def test_after_a_machine_answered_the_code_is_worth_nothing(client: FlaskClient) -> None:
    body, call = start_call(client)
    greeting_url = call.url
    call.answer(answered_by="machine_end_beep")
    # Even a signed request for the code step, with the right code, reads nothing.
    code_url = greeting_url.replace("/answer?", "/code?")
    late = call.post(code_url, Digits=body["challenge_code"])
    assert spellings(late) == []
    assert call_status(client, body["id"]) == "voicemail"


# Replays, other calls, forged tokens ---------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_a_request_replayed_after_the_call_ended_discloses_nothing(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    code_url = call.keys_url
    call.press(body["challenge_code"])
    call.status("completed")

    replay = call.post(code_url, Digits=body["challenge_code"])
    assert spellings(replay) == []
    assert hangs_up(replay)


@pytest.mark.usefixtures("practice")
def test_a_code_keyed_in_after_the_call_was_hung_up_discloses_nothing(
    client: FlaskClient,
) -> None:
    body, call = start_call(client)
    call.answer()
    code_url = call.keys_url
    call.status("completed")
    late = call.post(code_url, Digits=body["challenge_code"])
    assert spellings(late) == []
    assert call_status(client, body["id"]) == "completed"


@pytest.mark.usefixtures("practice")
def test_the_same_right_code_works_once(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    code_url = call.keys_url
    assert spellings(call.press(body["challenge_code"]))
    again = call.post(code_url, Digits=body["challenge_code"])
    assert spellings(again) == []


@pytest.mark.usefixtures("practice")
def test_a_callback_url_used_with_another_call_sid_discloses_nothing(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    code_url = call.keys_url
    other = TwilioCall(client, call.url, call.status_callback, sid="CA" + "9" * 32)

    assert other.answer().find("Gather") is None
    stolen = other.post(code_url, Digits=body["challenge_code"])
    assert spellings(stolen) == []
    assert "sorry" in said(stolen).lower()
    other.status("completed")
    # The real call is untouched: still live, the code still works.
    assert call_status(client, body["id"]) == "in-progress"
    assert spellings(call.press(body["challenge_code"])) == [CODEWORD_SPOKEN_EN] * 2


@pytest.mark.usefixtures("practice")
def test_a_callback_naming_another_number_discloses_nothing(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    code_url = call.keys_url
    elsewhere = TwilioCall(client, call.url, call.status_callback, sid=call.sid, to="+12025550199")
    stolen = elsewhere.post(code_url, Digits=body["challenge_code"])
    assert spellings(stolen) == []


@pytest.mark.usefixtures("practice")
def test_a_callback_from_another_twilio_account_discloses_nothing(
    app: Flask, client: FlaskClient
) -> None:
    app.config["TWILIO_ACCOUNT_SID"] = ACCOUNT_SID
    body, call = start_call(client)
    call.answer()
    code_url = call.keys_url
    foreign = TwilioCall(
        client, call.url, call.status_callback, sid=call.sid, account_sid="AC" + "1" * 32
    )
    stolen = foreign.post(code_url, Digits=body["challenge_code"])
    assert spellings(stolen) == []
    assert spellings(call.press(body["challenge_code"])) == [CODEWORD_SPOKEN_EN] * 2


@pytest.mark.usefixtures("practice")
def test_an_altered_callback_token_is_refused(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    code_url = call.keys_url
    tampered = code_url[:-2] + ("AA" if not code_url.endswith("AA") else "BB")
    refused = call.post(tampered, Digits=body["challenge_code"])
    assert spellings(refused) == [] and hangs_up(refused)


@pytest.mark.usefixtures("practice")
def test_an_unsigned_webhook_is_refused(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    response = client.post(
        path_of(call.keys_url),
        data={"CallSid": call.sid, "To": OFFICE, "Digits": body["challenge_code"]},
    )
    assert response.status_code == 403
    assert b"say-as" not in response.data


@pytest.mark.usefixtures("practice")
def test_an_expired_callback_token_discloses_nothing(client: FlaskClient, clock: Clock) -> None:
    body, call = start_call(client)
    call.answer()
    clock.advance(2 * 3600)
    late = call.press(body["challenge_code"])
    assert spellings(late) == [] and hangs_up(late)


# Expiry ------------------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_a_session_past_its_expiry_reads_expired_and_takes_no_code(
    client: FlaskClient, clock: Clock
) -> None:
    body, call = start_call(client)
    call.answer()
    clock.advance(10 * 60)
    late = call.press(body["challenge_code"])
    assert "expired" in said(late)
    assert spellings(late) == []
    assert call_status(client, body["id"]) == "expired"


@pytest.mark.usefixtures("practice")
def test_the_code_still_works_just_before_its_ten_minutes_are_up(
    client: FlaskClient, clock: Clock
) -> None:
    body, call = start_call(client)
    call.answer()
    clock.advance(10 * 60 - 1)
    assert spellings(call.press(body["challenge_code"])) == [CODEWORD_SPOKEN_EN] * 2


@pytest.mark.usefixtures("practice")
def test_answering_after_the_expiry_asks_for_nothing(client: FlaskClient, clock: Clock) -> None:
    _body, call = start_call(client)
    clock.advance(11 * 60)
    late = call.answer()
    assert late.find("Gather") is None and hangs_up(late)


@pytest.mark.usefixtures("practice")
def test_every_key_of_a_call_expires(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = request_call(client, headers={"Idempotency-Key": "k-1"}).get_json()
    session_ttl = redis_client.ttl(keys.call_session(body["id"]))
    live_ttl = redis_client.ttl(keys.live_call("p-1"))
    idem_ttl = redis_client.ttl(keys.idempotency("p-1", "helpdesk", "k-1"))
    assert 0 < live_ttl <= 600
    assert 600 < session_ttl <= 24 * 3600
    assert 600 < idem_ttl <= 24 * 3600


@pytest.mark.usefixtures("practice")
def test_the_code_is_kept_only_as_a_hash(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = request_call(client).get_json()
    stored = redis_client.hgetall(keys.call_session(body["id"]))
    assert body["challenge_code"] not in " ".join([*stored.keys(), *stored.values()])


# Status callbacks --------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_status_callbacks_follow_the_call_and_never_go_back(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.status("initiated")
    assert call_status(client, body["id"]) == "queued"
    call.status("ringing")
    assert call_status(client, body["id"]) == "ringing"
    call.status("in-progress")
    assert call_status(client, body["id"]) == "in-progress"
    call.status("ringing")  # delivered late
    assert call_status(client, body["id"]) == "in-progress"
    call.status("completed")
    assert call_status(client, body["id"]) == "completed"
    assert outcomes(client) == ["completed"]


@pytest.mark.usefixtures("practice")
def test_the_final_status_never_overwrites_disclosed(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    call.press(body["challenge_code"])
    call.status("completed")
    assert call_status(client, body["id"]) == "disclosed"
    assert outcomes(client) == ["disclosed"]


@pytest.mark.usefixtures("practice")
def test_the_final_status_never_overwrites_locked(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    for _ in range(3):
        call.press(a_wrong_code(body["challenge_code"]))
    call.status("completed")
    assert call_status(client, body["id"]) == "locked"


@pytest.mark.parametrize("twilio_status", ["no-answer", "busy", "failed", "canceled"])
@pytest.mark.usefixtures("practice")
def test_an_unanswered_call_ends_with_its_outcome_recorded(
    client: FlaskClient, twilio_status: str
) -> None:
    body, call = start_call(client)
    call.status("ringing")
    call.status(twilio_status)
    assert call_status(client, body["id"]) == twilio_status
    assert outcomes(client) == [twilio_status]
    # The practice is free for another call.
    assert request_call(client).status_code == 201


@pytest.mark.usefixtures("practice")
def test_the_practice_is_busy_until_the_final_status_callback(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    call.press(body["challenge_code"])
    busy = request_call(client)
    assert busy.status_code == 409
    assert busy.get_json()["error"]["live_call_id"] == body["id"]
    call.status("completed")
    assert request_call(client).status_code == 201


@pytest.mark.usefixtures("practice")
def test_a_status_callback_with_another_call_sid_changes_nothing(client: FlaskClient) -> None:
    body, call = start_call(client)
    other = TwilioCall(client, call.url, call.status_callback, sid="CA" + "8" * 32)
    other.status("busy")
    assert call_status(client, body["id"]) == "queued"
    assert outcomes(client) == []


def metric(client: FlaskClient, name: str) -> float:
    for line in client.get("/metrics", headers=METRICS).get_data(as_text=True).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.usefixtures("practice")
def test_disclosures_and_lockouts_are_counted_in_the_metrics(client: FlaskClient) -> None:
    disclosures = 'codeword_disclosures_total{channel="voice"}'
    before = metric(client, disclosures), metric(client, "codeword_lockouts_total")
    body, call = start_call(client)
    call.answer()
    call.press(body["challenge_code"])
    call.status("completed")
    body, call = start_call(client)
    call.answer()
    for _ in range(3):
        call.press(a_wrong_code(body["challenge_code"]))
    after = metric(client, disclosures), metric(client, "codeword_lockouts_total")
    assert after == (before[0] + 1, before[1] + 1)


@pytest.mark.usefixtures("practice")
def test_each_webhook_step_is_one_redis_round_trip(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[object] = []
    send = redis.connection.Connection.send_packed_command

    def counting_send(self: redis.connection.Connection, *args: object, **kwargs: object) -> None:
        sent.append(args)
        send(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting_send)
    # A first call loads the scripts into Redis; the second one is measured.
    body, call = start_call(client)
    call.answer()
    call.press(a_wrong_code(body["challenge_code"]))
    call.stay_silent()
    call.press(body["challenge_code"])
    call.press("1")
    call.status("completed")
    body, call = start_call(client)

    # A keyed code also waits for a replica to hold it, where one must (Sentinel's default).
    wait = 1 if client.application.config["REDIS_REPLICA_ACKS"] else 0
    steps = [
        (lambda: call.status("ringing"), 1),
        (call.answer, 1),
        (lambda: call.press(a_wrong_code(body["challenge_code"])), 1 + wait),
        (call.stay_silent, 1),
        (lambda: call.press(body["challenge_code"]), 1 + wait),
        (lambda: call.press("1"), 1),
        (lambda: call.status("completed"), 1),
    ]
    for step, round_trips in steps:
        sent.clear()
        step()
        assert len(sent) == round_trips


# The audit trail ----------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_a_disclosure_is_recorded_with_who_asked_where_and_which_call(
    client: FlaskClient,
) -> None:
    body, call = start_call(client)
    call.answer()
    call.press(body["challenge_code"])
    events = client.get("/api/v1/practices/p-1/disclosures", headers=ADMIN).get_json()["events"]
    voice = [e for e in events if e["channel"] == "voice"]
    assert len(voice) == 1
    event = voice[0]
    assert event["outcome"] == "disclosed"
    assert event["actor"] == "helpdesk"
    assert event["requested_by"] == "Dr. Ana Ruiz (owner)"
    assert event["to"] == "+1******0100"
    assert event["reference"] == call.sid


# Languages ---------------------------------------------------------------------------


def test_a_spanish_practice_hears_spanish(client: FlaskClient) -> None:
    setup_practice(client, language="es")
    body, call = start_call(client)
    greeting = call.answer()
    assert "Hola" in said(greeting)
    assert {say.get("language") for say in greeting.iter("Say")} == {"es-US"}
    wrong = call.press(a_wrong_code(body["challenge_code"]))
    assert "no es correcto" in said(wrong)
    reading = call.press(body["challenge_code"])
    assert spellings(reading) == [CODEWORD_SPOKEN_ES, CODEWORD_SPOKEN_ES]
    assert "palabra clave" in said(reading)


# Failures mid-call -------------------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_redis_stopped_mid_call_gets_an_apology_and_no_secret(
    client: FlaskClient, redis_process: RedisProcess
) -> None:
    body, call = start_call(client)
    call.answer()
    redis_process.stop()
    apology = call.press(body["challenge_code"])
    assert "sorry" in said(apology).lower()
    assert hangs_up(apology) and spellings(apology) == []
    status = post_signed(
        client,
        path_of(call.status_callback),
        {"CallSid": call.sid, "To": OFFICE, "CallStatus": "completed"},
    )
    assert status.status_code == 200


@pytest.mark.usefixtures("practice")
def test_redis_stopped_before_the_answer_gets_an_apology_in_the_practice_language(
    client: FlaskClient, redis_process: RedisProcess
) -> None:
    put_practice(client, language="es", office_number_verified=True)
    _body, call = start_call(client)
    redis_process.stop()
    apology = call.answer()
    assert "Lo sentimos" in said(apology) and hangs_up(apology)


@pytest.mark.usefixtures("practice")
def test_the_database_lost_at_disclosure_reads_nothing_and_fails_the_call(
    app: Flask, client: FlaskClient
) -> None:
    body, call = start_call(client)
    call.answer()
    database = Path(app.extensions["directory"].engine.url.database)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            os.remove(path)
    app.extensions["directory"].engine.dispose()

    apology = call.press(body["challenge_code"])
    assert "sorry" in said(apology).lower()
    assert spellings(apology) == []
    assert call_status(client, body["id"]) == "failed"


@pytest.mark.usefixtures("practice")
def test_an_office_number_changed_mid_call_hears_no_codeword(client: FlaskClient) -> None:
    body, call = start_call(client)
    call.answer()
    put_practice(client, office_number="(202) 555-0142")
    refused = call.press(body["challenge_code"])
    assert spellings(refused) == []
    assert call_status(client, body["id"]) == "failed"
    assert outcomes(client) == ["failed"]


# The codeword goes nowhere else --------------------------------------------------------


@pytest.mark.usefixtures("practice")
def test_the_codeword_appears_only_in_the_post_challenge_twiml(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"Idempotency-Key": "once"}
    created = request_call(client, headers=headers)
    body = created.get_json()
    replayed = request_call(client, headers=headers)
    call = last_placed_call(client)
    call.status("ringing")
    call.answer()
    call.stay_silent()
    call.press(a_wrong_code(body["challenge_code"]))
    call.press(body["challenge_code"])
    call.press("1")
    call.status("completed")
    after = [
        client.get(f"/api/v1/verification-calls/{body['id']}", headers=SUPPORT),
        client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT),
        client.get("/api/v1/practices/p-1", headers=ADMIN),
    ]

    spelled = [doc for doc in call.documents if "say-as" in doc]
    assert len(spelled) == 2  # the reading after the right code, and the repeat
    assert all(doc in call.documents[-2:] for doc in spelled)
    others = [created, replayed, *after]
    texts = [r.get_data(as_text=True) for r in others] + [
        doc for doc in call.documents if doc not in spelled
    ]
    logs = caplog.text + capfd.readouterr().err
    assert "ivr.verification_code" in logs and "codeword disclosed" in logs  # logs were caught
    for text in [*texts, logs]:
        assert CODEWORD not in text
        assert CODEWORD.lower() not in text.lower()
        assert "say-as" not in text
    # The challenge code is only ever in the support API's answer to its creation.
    assert body["challenge_code"] not in logs
    assert "?t=" not in logs  # nor are the callback tokens
    assert all(body["challenge_code"] not in doc for doc in call.documents)


def test_the_inbound_line_never_leads_to_the_codeword(client: FlaskClient) -> None:
    setup_practice(client)
    response = post_signed(
        client, "/ivr/inbound", {"CallSid": "CA" + "3" * 32, "From": OFFICE, "To": "+15005550006"}
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<Gather" not in body and "<Redirect" not in body and "<Hangup" in body
    assert "say-as" not in body
