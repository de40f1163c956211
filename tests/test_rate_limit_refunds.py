"""A reserved slot goes back only when the act it paid for provably did not happen.

Twilio refusing a request, or the service refusing it before asking Twilio, gives the
slot back; Twilio taking a request and not answering in time does not: the call or
text may still go out.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from core import rate_limits
from core.carrier import CarrierTimedOut, PlacedCall, RecipientOptedOut
from core.errors import CarrierUnavailable, Conflict
from store.errors import LimitExceeded
from tests.helpers import ADMIN, SUPPORT, put_practice, put_user
from tests.sms_helpers import text
from tests.voice import CODEWORD

CELL = "+12025550111"


class Carrier:
    """A carrier whose calls and texts fail with ``error`` (the phone network's side)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.asked = 0

    def place_call(self, **_: Any) -> PlacedCall:
        self.asked += 1
        raise self.error

    def send_sms(self, **_: Any) -> str:
        self.asked += 1
        raise self.error


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert put_practice(client, codeword=CODEWORD).status_code == 201
    assert put_user(client, cell_number=CELL, cell_number_verified=True).status_code == 201
    return client


def slots_left(app: Flask, reserve: Any, *args: str) -> int:
    """How many reservations ``reserve(*args)`` still gets (each given back at once)."""
    with app.app_context():
        taken = []
        try:
            for _ in range(100):
                taken.append(reserve(*args))
        except LimitExceeded:
            pass
        for reservation in taken:
            rate_limits.give_back(reservation)
    return len(taken)


@pytest.mark.parametrize(
    "error",
    [
        CarrierUnavailable("twilio answered 500"),
        RecipientOptedOut("twilio answered 21610"),
        Conflict("refused before asking twilio"),
        redis.ConnectionError("redis failed before asking twilio"),
    ],
)
def test_a_failure_that_proves_nothing_went_gives_the_slots_back(
    app: Flask, error: Exception
) -> None:
    with app.app_context():
        reservation = rate_limits.reserve_codeword_text(CELL, "p-1")
        with pytest.raises(type(error)), rate_limits.given_back_on_failure(reservation):
            raise error
    assert slots_left(app, rate_limits.reserve_codeword_text, CELL, "p-1") == 3


@pytest.mark.parametrize(
    "error", [CarrierTimedOut("twilio did not answer in time"), RuntimeError("unknown")]
)
def test_a_failure_that_may_have_let_it_go_keeps_the_slots(app: Flask, error: Exception) -> None:
    with app.app_context():
        reservation = rate_limits.reserve_codeword_text(CELL, "p-1")
        with pytest.raises(type(error)), rate_limits.given_back_on_failure(reservation):
            raise error
    assert slots_left(app, rate_limits.reserve_codeword_text, CELL, "p-1") == 2


def test_a_failure_after_the_act_keeps_the_slots(app: Flask) -> None:
    with app.app_context():
        reservation = rate_limits.reserve_codeword_text(CELL, "p-1")
        with pytest.raises(CarrierUnavailable), rate_limits.given_back_on_failure(reservation):
            reservation.keep()
            raise CarrierUnavailable("the carrier named another call")
    assert slots_left(app, rate_limits.reserve_codeword_text, CELL, "p-1") == 2


def test_a_cell_code_twilio_did_not_confirm_keeps_its_slot(app: Flask, client: FlaskClient) -> None:
    app.extensions["carrier"] = Carrier(CarrierTimedOut("late"))
    response = client.post("/api/v1/practices/p-1/users/u-1/cell-verification", headers=ADMIN)
    assert response.status_code == 502
    assert slots_left(app, rate_limits.reserve_cell_verification_text, "p-1", "u-1") == 2


def test_a_cell_code_twilio_refused_gives_its_slot_back(app: Flask, client: FlaskClient) -> None:
    app.extensions["carrier"] = Carrier(CarrierUnavailable("500"))
    response = client.post("/api/v1/practices/p-1/users/u-1/cell-verification", headers=ADMIN)
    assert response.status_code == 502
    assert slots_left(app, rate_limits.reserve_cell_verification_text, "p-1", "u-1") == 3


def test_an_office_call_twilio_did_not_confirm_keeps_its_slot(
    app: Flask, client: FlaskClient
) -> None:
    carrier = Carrier(CarrierTimedOut("late"))
    app.extensions["carrier"] = carrier
    response = client.post("/api/v1/practices/p-1/office-number/verification", headers=ADMIN)
    assert (response.status_code, carrier.asked) == (502, 1)
    assert slots_left(app, rate_limits.reserve_office_verification, "p-1") == 2


def test_a_call_refused_for_the_live_call_gives_its_slot_back(
    app: Flask, client: FlaskClient
) -> None:
    assert put_practice(client, codeword=CODEWORD, office_number_verified=True).status_code == 200
    body = {"practice_id": "p-1", "requested_by": "Ana"}
    assert client.post("/api/v1/verification-calls", json=body, headers=SUPPORT).status_code == 201
    for _ in range(3):
        refused = client.post("/api/v1/verification-calls", json=body, headers=SUPPORT)
        assert refused.status_code == 409
    assert slots_left(app, rate_limits.reserve_verification_call, "p-1", "helpdesk") == 2


def test_a_keyword_text_of_a_practice_without_a_codeword_gives_its_slot_back(
    app: Flask, client: FlaskClient
) -> None:
    oak = put_practice(client, "p-2", name="Oak Dental", office_number="(202) 555-0101")
    mia = put_user(client, "p-2", "u-9", cell_number="+12025550144", cell_number_verified=True)
    assert (oak.status_code, mia.status_code) == (201, 201)
    assert "has no Practice Codeword" in text(client, "CODEWORD", "+12025550144").get_data(
        as_text=True
    )
    assert slots_left(app, rate_limits.reserve_codeword_text, "+12025550144", "p-2") == 3
