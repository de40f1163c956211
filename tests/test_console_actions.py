"""Calling the office and texting the codeword from the console: the flows the API uses,
refusals in sentences, and a call's status as the page polls it."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.extensions import directory
from tests.console_client import (
    ADMIN_CELL,
    get,
    place_call,
    post,
    practice_form,
    setup_practice,
    sign_in,
    text_of,
)
from tests.voice import CODEWORD, Clock, last_placed_call

# Console sessions live in Redis: they hold on a cluster and through Sentinel too.
pytestmark = pytest.mark.redis_topologies

CHALLENGE_CODE = re.compile(r'data-testid="challenge-code"[^>]*>((?:<span>\d</span>){6})</p>')


def challenge_code(page: str) -> str:
    found = CHALLENGE_CODE.search(page)
    assert found, "no challenge code on the page"
    return re.sub(r"\D", "", found.group(1))


def call_id_of(page: str) -> str:
    return page.split('data-status-url="/console/calls/')[1].split("/")[0]


@pytest.fixture
def agent(client: FlaskClient) -> FlaskClient:
    setup_practice(client)
    sign_in(client)
    return client


def status(agent: FlaskClient, call_id: str) -> dict[str, object]:
    response = get(agent, f"/console/calls/{call_id}/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, object] = response.get_json()
    return body


def test_calling_the_office_shows_the_code_once_then_only_its_status(
    agent: FlaskClient, app: Flask
) -> None:
    called = place_call(agent, requested_by="Dana Admin (owner)")
    assert called.status_code == 201
    page = called.get_data(as_text=True)
    code = challenge_code(page)
    text = text_of(called)
    assert "Verification call to Bright Smiles Dental" in text
    assert "To +1******0100 · at Dana Admin (owner)’s request · by helpdesk" in text
    assert 'data-testid="call-status">queued<' in page
    assert "Expires in 10:00" in text or "Expires in 9:59" in text

    placed = app.extensions["carrier"].recorded("calls")
    assert len(placed) == 1 and placed[0]["to"] == "+12025550100"
    call_id = call_id_of(page)
    state = status(agent, call_id)
    assert state["status"] == "queued" and state["final"] is False
    assert code not in str(state)

    again = get(agent, f"/console/calls/{call_id}")
    assert again.status_code == 200
    assert code not in again.get_data(as_text=True)
    assert "The code was shown once, to whoever placed the call." in text_of(again)


def test_a_call_form_sent_twice_places_one_call(agent: FlaskClient, app: Flask) -> None:
    form = {**practice_form(agent), "requested_by": "Dana Admin"}
    first = post(agent, "/console/practices/p-1/calls", form)
    second = post(agent, "/console/practices/p-1/calls", form)
    assert call_id_of(first.get_data(as_text=True)) == call_id_of(second.get_data(as_text=True))
    assert challenge_code(first.get_data(as_text=True)) == challenge_code(
        second.get_data(as_text=True)
    )
    assert len(app.extensions["carrier"].recorded("calls")) == 1


def test_the_status_follows_the_call_to_disclosed(
    agent: FlaskClient, app: Flask, clock: Clock
) -> None:
    page = place_call(agent).get_data(as_text=True)
    code, call_id = challenge_code(page), call_id_of(page)
    call = last_placed_call(agent)

    call.status("ringing")
    state = status(agent, call_id)
    assert (state["status"], state["stage"]) == ("ringing", "ringing")
    assert state["progress"] == "The office phone (+1******0100) is ringing."

    call.answer()
    state = status(agent, call_id)
    assert (state["status"], state["stage"]) == ("in-progress", "answered")
    assert state["progress"] == "Answered. Waiting for the code to be keyed in."

    call.press("000000" if code != "000000" else "111111")
    state = status(agent, call_id)
    assert state["status"] == "in-progress" and state["tries_left"] == 2
    assert state["progress"] == "Answered. A wrong code was keyed in: 2 tries left."

    clock.advance(60)
    heard = call.press(code)
    assert "o t t e r" in " ".join(heard.itertext())  # the office phone hears it
    state = status(agent, call_id)
    assert (state["status"], state["final"], state["stage"]) == ("disclosed", True, "ended")
    assert state["progress"] == "The right code was keyed in and the codeword was read out. Done."
    assert 530 <= int(str(state["expires_in"])) <= 540

    call.status("completed")
    assert status(agent, call_id)["status"] == "disclosed"
    trail = text_of(get(agent, "/console/practices/p-1"))
    assert "codeword read by phone to +1******0100, at Dana Admin’s request, by helpdesk" in trail
    assert "No call is live." in trail


def test_three_wrong_codes_show_locked(agent: FlaskClient) -> None:
    page = place_call(agent).get_data(as_text=True)
    code, call_id = challenge_code(page), call_id_of(page)
    call = last_placed_call(agent)
    call.answer()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        call.press(wrong)
    state = status(agent, call_id)
    assert (state["status"], state["final"], state["tries_left"]) == ("locked", True, 0)
    assert state["progress"] == (
        "Locked: three wrong codes were keyed in. The codeword was not read."
    )
    assert "call to +1******0100 locked after three wrong codes" in text_of(
        get(agent, "/console/practices/p-1")
    )


def test_a_live_call_is_shown_on_the_practice_page(agent: FlaskClient) -> None:
    call_id = call_id_of(place_call(agent).get_data(as_text=True))
    page = get(agent, "/console/practices/p-1")
    assert "Call live queued, at Dana Admin’s request, by helpdesk. Follow it" in text_of(page)
    assert f'href="/console/calls/{call_id}"' in page.get_data(as_text=True)


def test_an_expired_call_says_so(agent: FlaskClient, clock: Clock) -> None:
    call_id = call_id_of(place_call(agent).get_data(as_text=True))
    clock.advance(601)
    state = status(agent, call_id)
    assert (state["status"], state["final"]) == ("expired", True)
    assert state["progress"] == "The challenge code expired before it was keyed in."


# --- refusals, as sentences -----------------------------------------------------------


def test_an_unverified_office_number_is_refused_in_words(agent: FlaskClient, app: Flask) -> None:
    setup_practice(agent, "p-2", name="Oak Dental", office_number_verified=False)
    refused = place_call(agent, "p-2")
    assert refused.status_code == 409
    assert (
        "Oak Dental’s office number is not verified, so no call may read the codeword to it."
        in text_of(refused)
    )
    assert not app.extensions["carrier"].recorded("calls")


def test_a_second_call_while_one_is_live_is_refused_and_links_to_it(agent: FlaskClient) -> None:
    call_id = call_id_of(place_call(agent).get_data(as_text=True))
    refused = place_call(agent)
    assert refused.status_code == 409
    text = text_of(refused)
    assert "A verification call to Bright Smiles Dental is already in progress." in text
    assert "Follow the live call" in text
    assert f'href="/console/calls/{call_id}"' in refused.get_data(as_text=True)
    # The refused form keeps what the agent typed.
    assert 'value="Dana Admin"' in refused.get_data(as_text=True)


def test_the_call_limit_is_refused_with_its_wait(make_app: Callable[..., Flask]) -> None:
    app = make_app(VERIFICATION_CALLS_PER_PRACTICE="1/hour")
    agent = app.test_client()
    setup_practice(agent)
    sign_in(agent)
    place_call(agent)
    last_placed_call(agent).status("no-answer")
    refused = place_call(agent)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"]
    assert (
        "Bright Smiles Dental has had all the verification calls it may have (1 an hour). "
        "Try again in 1 hour."
    ) in text_of(refused)


def test_the_support_token_limit_is_refused_in_its_own_words(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(VERIFICATION_CALLS_PER_SUPPORT_TOKEN="1/hour")
    agent = app.test_client()
    setup_practice(agent)
    setup_practice(agent, "p-2", name="Oak Dental")
    sign_in(agent)
    assert place_call(agent).status_code == 201
    refused = place_call(agent, "p-2")
    assert refused.status_code == 429
    assert (
        "Your support token has placed all the calls it may place (1 an hour). Try again in 1 hour."
    ) in text_of(refused)


def test_a_call_without_requested_by_is_refused_in_words(agent: FlaskClient, app: Flask) -> None:
    refused = place_call(agent, requested_by="   ")
    assert refused.status_code == 422
    assert "Say who asked for the codeword in “Requested by”" in text_of(refused)
    assert not app.extensions["carrier"].recorded("calls")


# --- texts -----------------------------------------------------------------------------


def text_codeword(agent: FlaskClient, user_id: str = "u-admin", requested_by: str = "Dana Admin"):  # type: ignore[no-untyped-def]
    form = {**practice_form(agent), "requested_by": requested_by}
    return post(agent, f"/console/practices/p-1/users/{user_id}/codeword-texts", form)


def test_texting_the_codeword_to_an_admin(agent: FlaskClient, app: Flask) -> None:
    sent = text_codeword(agent)
    assert sent.status_code == 303
    page = text_of(get(agent, sent.headers["Location"]))
    assert (
        "The codeword text to Dana Admin at +1******0111 is on its way, at Dana Admin’s request."
        in page
    )
    assert "codeword texted to +1******0111, at Dana Admin’s request, by helpdesk" in page
    # The notice is shown once.
    assert "The codeword text to" not in text_of(get(agent, "/console/practices/p-1"))
    texts = app.extensions["carrier"].recorded("messages")
    assert [t["to"] for t in texts] == [ADMIN_CELL]
    assert CODEWORD in texts[0]["body"]  # the admin's text has it; no console page does


@pytest.mark.parametrize(
    ("user", "setup", "sentence"),
    [
        ("u-staff", None, "Sam Staff is not an admin of Bright Smiles Dental"),
        ("u-nobody", None, "Bright Smiles Dental has no such user any more"),
        (
            "u-admin",
            {"cell_number_verified": False},
            "Dana Admin’s cell number is not verified, so the codeword cannot be texted",
        ),
        (
            "u-admin",
            "opted-out",
            "Dana Admin’s cell has opted out of our texts (they replied STOP)",
        ),
    ],
)
def test_a_text_refused_says_why(
    agent: FlaskClient, app: Flask, user: str, setup: object, sentence: str
) -> None:
    if setup == "opted-out":
        with app.app_context():
            directory().opt_out(ADMIN_CELL)
    elif isinstance(setup, dict):
        from tests.helpers import put_user

        put_user(agent, "p-1", "u-admin", name="Dana Admin", cell_number=ADMIN_CELL, **setup)
    refused = text_codeword(agent, user)
    assert refused.status_code in (404, 409)
    assert sentence in text_of(refused)
    assert not app.extensions["carrier"].recorded("messages")


def test_the_text_limit_is_refused_with_its_wait(make_app: Callable[..., Flask]) -> None:
    app = make_app(SMS_CODEWORD_TEXTS_PER_NUMBER="1/hour")
    agent = app.test_client()
    setup_practice(agent)
    sign_in(agent)
    assert text_codeword(agent).status_code == 303
    refused = text_codeword(agent)
    assert refused.status_code == 429
    assert (
        "Dana Admin’s cell has been texted the codeword as often as it may be (1 an hour). "
        "Try again in 1 hour."
    ) in text_of(refused)
    assert refused.headers["Retry-After"]
