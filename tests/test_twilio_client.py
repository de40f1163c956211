"""Our REST calls to Twilio, checked against Twilio's own OpenAPI description (Prism)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask

from core.carrier import CarrierTimedOut, RecipientOptedOut, TwilioCarrier
from core.errors import CarrierUnavailable
from core.simulated_carrier import SimulatedCarrier
from devservers.prism_server import prism
from devservers.processes import free_port
from tests.twilio_fake import TwilioRecorder, recording_fake

ACCOUNT_SID = "AC" + "0" * 32


@pytest.fixture(scope="module")
def recorded_twilio() -> Iterator[tuple[str, TwilioRecorder]]:
    """Prism validating requests against the spec, forwarding them to a recording fake."""
    with recording_fake() as (fake_url, sent), prism("proxy", fake_url) as url:
        yield url, sent


@pytest.fixture
def carrier(recorded_twilio: tuple[str, TwilioRecorder]) -> TwilioCarrier:
    recorded_twilio[1].clear()
    return TwilioCarrier(ACCOUNT_SID, "token", "+15005550006", recorded_twilio[0])


def test_a_call_is_accepted_by_twilios_contract(prism_url: str) -> None:
    carrier = TwilioCarrier(ACCOUNT_SID, "token", "+15005550006", prism_url)
    call = carrier.place_call(
        to="+12025550100",
        url="https://codeword.example.com/ivr/answer?t=abc",
        status_callback="https://codeword.example.com/ivr/status?t=abc",
        timeout=25,
        time_limit=240,
        machine_detection=True,
    )
    assert call.sid.startswith("CA")


def test_a_text_and_its_redaction_are_accepted_by_twilios_contract(prism_url: str) -> None:
    carrier = TwilioCarrier(ACCOUNT_SID, "token", "+15005550006", prism_url)
    sid = carrier.send_sms(
        to="+12025550111",
        body="hello",
        status_callback="https://codeword.example.com/sms/status",
        validity_period=900,
    )
    assert sid.startswith("SM")
    carrier.redact_message(sid)


def test_a_call_sends_what_the_call_flow_needs(
    carrier: TwilioCarrier, recorded_twilio: tuple[str, TwilioRecorder]
) -> None:
    carrier.place_call(
        to="+12025550100",
        url="https://codeword.example.com/ivr/answer?t=abc",
        status_callback="https://codeword.example.com/ivr/status?t=abc",
        timeout=25,
        time_limit=240,
        machine_detection=True,
    )
    (request,) = recorded_twilio[1]
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert request.form["To"] == "+12025550100"
    assert request.form["From"] == "+15005550006"
    assert request.form["Url"] == "https://codeword.example.com/ivr/answer?t=abc"
    assert request.form["MachineDetection"] == "Enable"
    assert request.form["Timeout"] == "25"
    assert request.form["TimeLimit"] == "240"
    assert request.form_lists["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]


def test_a_redaction_posts_an_empty_body_to_the_message(
    carrier: TwilioCarrier, recorded_twilio: tuple[str, TwilioRecorder]
) -> None:
    sid = "SM" + "a" * 32
    carrier.redact_message(sid)
    (request,) = recorded_twilio[1]
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"
    assert request.form_lists == {"Body": [""]}


def test_an_opted_out_recipient_is_a_clear_conflict(
    carrier: TwilioCarrier, recorded_twilio: tuple[str, TwilioRecorder]
) -> None:
    recorded_twilio[1].queue_error(400, 21610)
    with pytest.raises(RecipientOptedOut) as raised:
        carrier.send_sms(to="+12025550111", body="hello")
    assert raised.value.status == 409


def test_twilio_failing_is_reported_as_carrier_unavailable(
    carrier: TwilioCarrier, recorded_twilio: tuple[str, TwilioRecorder]
) -> None:
    recorded_twilio[1].queue_error(500, 20500, "Internal Server Error")
    with pytest.raises(CarrierUnavailable) as raised:
        carrier.send_sms(to="+12025550111", body="hello")
    assert raised.value.status == 502
    assert raised.value.retry_after
    # Twilio refused it with an error answer: nothing was sent.
    assert not isinstance(raised.value, CarrierTimedOut)


def test_twilio_unreachable_is_reported_as_carrier_unavailable() -> None:
    """Nothing was sent: not a CarrierTimedOut, which would keep the rate-limit slot."""
    carrier = TwilioCarrier(ACCOUNT_SID, "token", "+15005550006", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(CarrierUnavailable) as raised:
        carrier.send_sms(to="+12025550111", body="hello")
    assert not isinstance(raised.value, CarrierTimedOut)


@contextlib.contextmanager
def hanging_up_after_the_request() -> Iterator[str]:
    """A server that reads one request and closes the connection without an answer."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        thread.join(5)
        listener.close()


def test_a_connection_dropped_once_the_request_went_may_have_sent_it() -> None:
    """Twilio may have taken it: reported like a late answer, so its slot stays spent."""
    with hanging_up_after_the_request() as url:
        carrier = TwilioCarrier(ACCOUNT_SID, "token", "+15005550006", url)
        with pytest.raises(CarrierTimedOut):
            carrier.send_sms(to="+12025550111", body="hello")


def test_without_twilio_credentials_the_simulated_carrier_records_instead(app: Flask) -> None:
    carrier = app.extensions["carrier"]
    assert isinstance(carrier, SimulatedCarrier)
    sid = carrier.send_sms(to="+12025550111", body="hello", validity_period=900)
    call = carrier.place_call(
        to="+12025550100",
        url="https://codeword.example.com/a",
        status_callback="https://codeword.example.com/s",
        timeout=25,
        time_limit=240,
        machine_detection=True,
    )
    assert carrier.recorded("messages")[0]["sid"] == sid
    assert carrier.recorded("messages")[0]["body"] == "hello"
    assert carrier.recorded("calls")[0]["sid"] == call.sid


def test_with_twilio_credentials_the_real_client_is_used(twilio_app: Flask) -> None:
    assert isinstance(twilio_app.extensions["carrier"], TwilioCarrier)
