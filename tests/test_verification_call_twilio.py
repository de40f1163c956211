"""The verification call through Twilio's real client, against Prism serving Twilio's API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from core.carrier import PlacedCall, TwilioCarrier
from devservers.prism_server import prism
from store import keys
from tests.helpers import SUPPORT, TWILIO_AUTH_TOKEN
from tests.twilio_fake import RecordedRequest, TwilioRecorder, recording_fake
from tests.voice import (
    ACCOUNT_SID,
    CODEWORD_SPOKEN_EN,
    OFFICE,
    TwilioCall,
    request_call,
    setup_practice,
    spellings,
)


class RecordingCarrier:
    """The real carrier, remembering what it was asked to do."""

    def __init__(self, carrier: TwilioCarrier) -> None:
        self.carrier = carrier
        self.calls: list[dict[str, Any]] = []

    def place_call(self, **kwargs: Any) -> PlacedCall:
        placed = self.carrier.place_call(**kwargs)
        self.calls.append({**kwargs, "sid": placed.sid})
        return placed


@pytest.fixture(scope="module")
def twilio_fake() -> Iterator[tuple[str, TwilioRecorder]]:
    """Prism checking each request against Twilio's spec, in front of a recording fake."""
    with (
        recording_fake() as (fake_url, recorder),
        prism(mode="proxy", upstream=fake_url) as proxy_url,
    ):
        yield proxy_url, recorder


@pytest.fixture
def proxied_app(make_app: Callable[..., Flask], twilio_fake: tuple[str, TwilioRecorder]) -> Flask:
    proxy_url, recorder = twilio_fake
    recorder.clear()
    while recorder.next_canned() is not None:
        pass
    return make_app(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE_URL=proxy_url)


def calls_sent(recorder: TwilioRecorder) -> list[RecordedRequest]:
    return [r for r in recorder if r.method == "POST" and r.path.endswith("/Calls.json")]


def test_the_call_is_placed_through_twilios_api(twilio_app: Flask) -> None:
    """Happy path against Prism's mock of Twilio: placed, answered, code keyed, codeword read."""
    client = twilio_app.test_client()
    recording = RecordingCarrier(twilio_app.extensions["carrier"])
    twilio_app.extensions["carrier"] = recording
    setup_practice(client)

    response = request_call(client)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    [placed] = recording.calls
    assert placed["sid"].startswith("CA")
    status = client.get(f"/api/v1/verification-calls/{body['id']}", headers=SUPPORT).get_json()
    assert status["call_sid"] == placed["sid"]

    call = TwilioCall(client, placed["url"], placed["status_callback"], sid=placed["sid"])
    call.status("initiated")
    call.status("ringing")
    call.answer()
    reading = call.press(body["challenge_code"])
    assert spellings(reading) == [CODEWORD_SPOKEN_EN, CODEWORD_SPOKEN_EN]
    call.status("completed")
    status = client.get(f"/api/v1/verification-calls/{body['id']}", headers=SUPPORT).get_json()
    assert status["status"] == "disclosed"


def test_twilio_is_asked_for_a_timed_machine_detected_call_with_status_events(
    proxied_app: Flask, twilio_fake: tuple[str, TwilioRecorder]
) -> None:
    _, recorder = twilio_fake
    client = proxied_app.test_client()
    setup_practice(client)
    response = request_call(client)
    assert response.status_code == 201, response.get_json()

    [sent] = calls_sent(recorder)
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    form = sent.form
    assert form["To"] == OFFICE
    assert form["From"] == "+15005550006"
    assert form["Url"].startswith("https://codeword.example.com/ivr/verification/answer?t=")
    assert form["StatusCallback"].startswith(
        "https://codeword.example.com/ivr/verification/status?t="
    )
    assert sent.form_lists["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    assert form["Method"] == form["StatusCallbackMethod"] == "POST"
    assert form["MachineDetection"] == "Enable"
    assert 0 < int(form["Timeout"]) <= 60
    assert 0 < int(form["TimeLimit"]) <= 600
    assert response.get_json()["challenge_code"] not in sent.body.decode()


def test_the_call_twilio_placed_runs_end_to_end(
    proxied_app: Flask, twilio_fake: tuple[str, TwilioRecorder]
) -> None:
    _, recorder = twilio_fake
    client = proxied_app.test_client()
    setup_practice(client)
    body = request_call(client).get_json()
    [sent] = calls_sent(recorder)
    sid = client.get(f"/api/v1/verification-calls/{body['id']}", headers=SUPPORT).get_json()[
        "call_sid"
    ]
    call = TwilioCall(client, sent.form["Url"], sent.form["StatusCallback"], sid=sid)
    call.answer()
    assert spellings(call.press(body["challenge_code"])) == [CODEWORD_SPOKEN_EN] * 2
    call.status("completed")
    # The practice is free again.
    assert request_call(client).status_code == 201


def _leaves_nothing_behind(
    client: FlaskClient,
    redis_client: redis.Redis,
    recorder: TwilioRecorder,
    slots_left: int = 3,
) -> None:
    assert redis_client.keys(keys.ALL_CALL_SESSIONS) == []
    assert redis_client.keys(keys.ALL_LIVE_CALLS) == []
    assert redis_client.keys(keys.every_idempotency_key()) == []
    # Only a call that may have gone spent a rate-limit slot; the rest still go this hour.
    for _ in range(slots_left):
        response = request_call(client)
        assert response.status_code == 201, response.get_json()
        sent = calls_sent(recorder)[-1]
        sid = redis_client.hget(keys.call_session(response.get_json()["id"]), "call_sid")
        TwilioCall(client, sent.form["Url"], sent.form["StatusCallback"], sid=sid).status(
            "completed"
        )
    assert request_call(client).status_code == 429


@pytest.mark.parametrize("status", [500, 503, 429])
def test_twilio_failing_is_502_and_leaves_nothing_behind(
    proxied_app: Flask,
    twilio_fake: tuple[str, TwilioRecorder],
    redis_client: redis.Redis,
    status: int,
) -> None:
    _, recorder = twilio_fake
    client = proxied_app.test_client()
    setup_practice(client)
    recorder.queue_error(status=status, code=20500, message="Internal Server Error")
    response = request_call(client, headers={"Idempotency-Key": "k"})
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "carrier_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert len(calls_sent(recorder)) == 1
    _leaves_nothing_behind(client, redis_client, recorder)


def test_twilio_not_answering_in_time_is_502_leaves_no_call_and_keeps_its_slot(
    proxied_app: Flask,
    twilio_fake: tuple[str, TwilioRecorder],
    redis_client: redis.Redis,
) -> None:
    proxy_url, recorder = twilio_fake
    proxied_app.extensions["carrier"] = TwilioCarrier(
        ACCOUNT_SID, TWILIO_AUTH_TOKEN, "+15005550006", proxy_url, timeout=0.5
    )
    client = proxied_app.test_client()
    setup_practice(client)
    recorder.queue_response(201, {}, delay=2)
    response = request_call(client)
    assert response.status_code == 502
    # Twilio may have placed it: the slot it took stays spent.
    _leaves_nothing_behind(client, redis_client, recorder, slots_left=2)
