"""Inbound texts: the CODEWORD keyword, help, hints, opt-out, and who gets what."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from core.config import ConfigError, load_config
from sms.codeword_requests import answer_inbound_text
from store import keys
from store.directory import Sender
from store.models import Base
from tests.helpers import ADMIN, PUBLIC_BASE_URL, SUPPORT, put_user
from tests.sms_helpers import (
    ADMIN_CELL,
    CODEWORD,
    MULTI_ADMIN_CELL,
    OAK_CODEWORD,
    SECOND_ADMIN_CELL,
    STAFF_CELL,
    UNKNOWN_CELL,
    UNVERIFIED_CELL,
    reply_of,
    seed,
    text,
)

pytestmark = pytest.mark.redis_topologies


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    client = app.test_client()
    seed(client)
    return client


def sent_texts(app: Flask) -> list[dict[str, Any]]:
    """Codeword texts sent through the (simulated) REST API, oldest first: those with a
    status callback (the other admins' disclosure notices have none)."""
    texts = reversed(app.extensions["carrier"].recorded("messages"))
    return [t for t in texts if t["status_callback"]]


def events(client: FlaskClient, practice_id: str = "p-1") -> list[dict[str, Any]]:
    """The practice's SMS events, newest first."""
    response = client.get(f"/api/v1/practices/{practice_id}/disclosures", headers=SUPPORT)
    return [e for e in response.get_json()["events"] if e["channel"] == "sms"]


# The codeword itself ------------------------------------------------------------------


def test_an_admin_texting_codeword_gets_it_by_rest_not_as_a_reply(
    app: Flask, client: FlaskClient
) -> None:
    response = text(client, "CODEWORD")
    assert reply_of(response) is None
    assert CODEWORD.encode() not in response.data
    (sent,) = sent_texts(app)
    assert sent["to"] == ADMIN_CELL
    assert CODEWORD in sent["body"]
    assert "Bright Smiles" in sent["body"]


def test_the_codeword_text_expires_soon_and_reports_its_delivery(
    app: Flask, client: FlaskClient
) -> None:
    text(client, "codeword")
    (sent,) = sent_texts(app)
    assert 0 < sent["validity_period"] <= 900
    assert sent["status_callback"].startswith(
        f"{PUBLIC_BASE_URL}/sms/status?practice_id=p-1&text=CT"
    )


@pytest.mark.parametrize("body", ["codeword", "  Code Word  ", "CODE\tWORD", "\nCodeWord"])
def test_the_keyword_ignores_case_and_surrounding_space(
    app: Flask, client: FlaskClient, body: str
) -> None:
    assert reply_of(text(client, body)) is None
    assert [t["to"] for t in sent_texts(app)] == [ADMIN_CELL]


def test_a_keyword_text_is_audited_as_the_admins_own_sms_disclosure(
    app: Flask, client: FlaskClient
) -> None:
    text(client, "CODEWORD")
    (sent,) = sent_texts(app)
    (event,) = events(client)
    assert event["channel"] == "sms"
    assert event["outcome"] == "sent"
    assert event["actor"] == "self"
    assert event["requested_by"] == "Dana"
    assert event["to"] == "+1******0111"
    assert event["reference"] == sent["sid"]


def test_an_admin_whose_practice_has_no_codeword_is_told_so(
    app: Flask, client: FlaskClient
) -> None:
    client.put(
        "/api/v1/practices/p-3",
        json={"name": "New Practice", "office_number": "(202) 555-0102"},
        headers=ADMIN,
    )
    put_user(client, "p-3", "u-1", cell_number="(202) 555-0177", cell_number_verified=True)
    reply = reply_of(text(client, "CODEWORD", "+12025550177"))
    assert reply is not None
    assert "New Practice has no Practice Codeword yet" in reply
    assert sent_texts(app) == []


@pytest.mark.parametrize(
    ("sender", "body", "outcome"),
    [
        (ADMIN_CELL, "codeword", "queued"),
        (MULTI_ADMIN_CELL, "codeword", "listed"),
        (STAFF_CELL, "codeword", "generic"),
        (UNKNOWN_CELL, "help", "help"),
        (UNKNOWN_CELL, "stop", "opt-out"),
        (UNKNOWN_CELL, "start", "opt-in"),
        ("not a number", "codeword", "not-textable"),
    ],
)
def test_the_decision_names_its_outcome_for_the_request_log(
    app: Flask, client: FlaskClient, sender: str, body: str, outcome: str
) -> None:
    with app.test_request_context():
        answer = answer_inbound_text(sender, body)
    assert answer.outcome == outcome
    assert (answer.reply is None) == (outcome in {"queued", "opt-out", "opt-in", "not-textable"})


# Everyone else --------------------------------------------------------------------


GENERIC_SENDERS = {
    "unknown number": UNKNOWN_CELL,
    "staff with a verified cell": STAFF_CELL,
    "admin with an unverified cell": UNVERIFIED_CELL,
}


def test_everyone_else_gets_one_generic_reply_identical_for_all(
    app: Flask, client: FlaskClient
) -> None:
    """A reply never tells whether a number is on file."""
    replies = {kind: reply_of(text(client, "CODEWORD", n)) for kind, n in GENERIC_SENDERS.items()}
    assert len(set(replies.values())) == 1
    reply = replies["unknown number"]
    assert reply is not None
    assert "Practice by Numbers" in reply
    assert CODEWORD not in reply
    assert sent_texts(app) == []


def test_a_removed_admin_gets_the_generic_reply(app: Flask, client: FlaskClient) -> None:
    generic = reply_of(text(client, "CODEWORD", UNKNOWN_CELL))
    client.delete(
        "/api/v1/practices/p-1/users/u-2",
        headers=ADMIN,
    )
    assert reply_of(text(client, "CODEWORD", SECOND_ADMIN_CELL)) == generic
    assert sent_texts(app) == []


def test_a_number_outside_the_allowed_countries_gets_no_reply(
    app: Flask, client: FlaskClient
) -> None:
    assert reply_of(text(client, "CODEWORD", "+447700900123")) is None
    assert reply_of(text(client, "HELP", "+447700900123")) is None
    assert sent_texts(app) == []


# Help and hints ---------------------------------------------------------------------


@pytest.mark.parametrize("word", ["HELP", "help", " Info "])
@pytest.mark.parametrize("sender", [ADMIN_CELL, UNKNOWN_CELL])
def test_help_says_who_we_are_how_to_reach_support_and_how_to_opt_out(
    client: FlaskClient, word: str, sender: str
) -> None:
    reply = reply_of(text(client, word, sender))
    assert reply is not None
    assert "Practice by Numbers" in reply
    assert "support at practicebynumbers.com" in reply
    assert "STOP" in reply


def test_brand_and_support_contact_come_from_the_settings(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(BRAND_NAME="Smile Cloud", SUPPORT_CONTACT="help@smile.example")
    reply = reply_of(text(app.test_client(), "HELP", UNKNOWN_CELL))
    assert reply is not None
    assert reply.startswith("Smile Cloud")
    assert "help@smile.example" in reply


@pytest.mark.parametrize("body", ["hello", "what is the code?", "7", ""])
def test_anything_else_gets_the_same_short_hint_from_anyone(client: FlaskClient, body: str) -> None:
    replies = {reply_of(text(client, body, n)) for n in (ADMIN_CELL, STAFF_CELL, UNKNOWN_CELL)}
    assert len(replies) == 1
    (reply,) = replies
    assert reply is not None
    assert "CODEWORD" in reply


# An admin of several practices --------------------------------------------------------


def test_an_admin_of_several_practices_chooses_from_a_numbered_list(
    app: Flask, client: FlaskClient
) -> None:
    reply = reply_of(text(client, "CODEWORD", MULTI_ADMIN_CELL))
    assert reply is not None
    assert "Reply 1 for Bright Smiles, 2 for Oak Dental" in reply
    assert CODEWORD not in reply and OAK_CODEWORD not in reply
    assert sent_texts(app) == []

    assert reply_of(text(client, " 2 ", MULTI_ADMIN_CELL)) is None
    (sent,) = sent_texts(app)
    assert sent["to"] == MULTI_ADMIN_CELL
    assert OAK_CODEWORD in sent["body"]
    assert CODEWORD not in sent["body"]
    assert [e["requested_by"] for e in events(client, "p-2")] == ["Mia"]
    assert events(client, "p-1") == []


def test_the_pending_choice_lives_a_few_minutes_and_is_used_once(
    app: Flask, client: FlaskClient, redis_client: redis.Redis
) -> None:
    text(client, "CODEWORD", MULTI_ADMIN_CELL)
    assert 0 < redis_client.ttl(keys.sms_choice(MULTI_ADMIN_CELL)) <= 300
    text(client, "1", MULTI_ADMIN_CELL)
    assert len(sent_texts(app)) == 1
    assert "CODEWORD" in (reply_of(text(client, "1", MULTI_ADMIN_CELL)) or "")
    assert len(sent_texts(app)) == 1


def test_a_choice_after_the_list_expired_gets_the_hint(
    app: Flask, client: FlaskClient, redis_client: redis.Redis
) -> None:
    text(client, "CODEWORD", MULTI_ADMIN_CELL)
    redis_client.delete(keys.sms_choice(MULTI_ADMIN_CELL))  # what its TTL does
    hint = reply_of(text(client, "hello", UNKNOWN_CELL))
    assert reply_of(text(client, "1", MULTI_ADMIN_CELL)) == hint
    assert sent_texts(app) == []


def test_a_number_not_on_the_list_gets_the_list_again(app: Flask, client: FlaskClient) -> None:
    listing = reply_of(text(client, "CODEWORD", MULTI_ADMIN_CELL))
    assert reply_of(text(client, "3", MULTI_ADMIN_CELL)) == listing
    assert reply_of(text(client, "1", MULTI_ADMIN_CELL)) is None
    assert CODEWORD in sent_texts(app)[0]["body"]


def test_a_choice_of_a_practice_no_longer_administered_sends_nothing(
    app: Flask, client: FlaskClient
) -> None:
    text(client, "CODEWORD", MULTI_ADMIN_CELL)
    put_user(client, "p-2", "u-9", name="Mia", role="staff")
    generic = reply_of(text(client, "CODEWORD", UNKNOWN_CELL))
    assert reply_of(text(client, "2", MULTI_ADMIN_CELL)) == generic
    assert sent_texts(app) == []


# Opt-out ------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["STOP", "stop", " Unsubscribe ", "cancel", "END", "quit"])
def test_an_opt_out_word_stops_every_text_to_that_number(
    app: Flask, client: FlaskClient, word: str
) -> None:
    assert reply_of(text(client, word)) is None
    assert app.extensions["directory"].is_opted_out(ADMIN_CELL)
    for body in ("CODEWORD", "HELP", "hello"):
        assert reply_of(text(client, body)) is None
    response = client.post(
        "/api/v1/codeword-texts",
        json={"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"},
        headers=SUPPORT,
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "recipient_opted_out"
    assert sent_texts(app) == []


@pytest.mark.parametrize("word", ["\u017ftop", "\ufb06op"])
def test_a_look_alike_of_stop_opts_nobody_out(app: Flask, client: FlaskClient, word: str) -> None:
    """Twilio does not read these as STOP, so neither do we: texts still reach the number."""
    text(client, word)
    assert not app.extensions["directory"].is_opted_out(ADMIN_CELL)
    assert reply_of(text(client, "HELP")) is not None


@pytest.mark.parametrize("word", ["START", "yes", " Unstop"])
def test_opting_back_in_restores_texts(app: Flask, client: FlaskClient, word: str) -> None:
    text(client, "STOP")
    assert reply_of(text(client, word)) is None
    assert not app.extensions["directory"].is_opted_out(ADMIN_CELL)
    assert reply_of(text(client, "HELP")) is not None
    text(client, "CODEWORD")
    assert [t["to"] for t in sent_texts(app)] == [ADMIN_CELL]


def test_an_opt_out_from_a_sender_we_never_text_is_kept_too(
    app: Flask, client: FlaskClient
) -> None:
    assert reply_of(text(client, "STOP", "+447700900123")) is None
    assert app.extensions["directory"].is_opted_out("+447700900123")


def test_an_opt_out_from_an_unknown_number_is_kept_too(app: Flask, client: FlaskClient) -> None:
    text(client, "STOP", UNKNOWN_CELL)
    assert app.extensions["directory"].is_opted_out(UNKNOWN_CELL)
    assert reply_of(text(client, "CODEWORD", UNKNOWN_CELL)) is None


# Limits -------------------------------------------------------------------------------


@pytest.fixture
def clock(app: Flask) -> list[float]:
    """The rate limiter's clock, which a test moves forward instead of sleeping."""
    now = [1_800_000_000.0]
    app.extensions["limiter"].clock = lambda: now[0]
    return now


def test_three_codeword_texts_an_hour_then_a_polite_reply(
    app: Flask, client: FlaskClient, clock: list[float]
) -> None:
    for _ in range(3):
        assert reply_of(text(client, "CODEWORD")) is None
    reply = reply_of(text(client, "CODEWORD"))
    assert reply is not None
    assert "try again later" in reply
    assert CODEWORD not in reply
    assert len(sent_texts(app)) == 3

    clock[0] += 3601
    assert reply_of(text(client, "CODEWORD")) is None
    assert len(sent_texts(app)) == 4


def test_a_practice_gets_five_codeword_texts_a_day(
    app: Flask, client: FlaskClient, clock: list[float]
) -> None:
    for sender in [ADMIN_CELL] * 3 + [SECOND_ADMIN_CELL] * 2:
        assert reply_of(text(client, "CODEWORD", sender)) is None
    assert "try again later" in (reply_of(text(client, "CODEWORD", SECOND_ADMIN_CELL)) or "")
    assert len(sent_texts(app)) == 5
    clock[0] += 3601
    assert "try again later" in (reply_of(text(client, "CODEWORD", ADMIN_CELL)) or "")
    clock[0] += 24 * 3600
    assert reply_of(text(client, "CODEWORD", ADMIN_CELL)) is None
    assert len(sent_texts(app)) == 6


def test_the_practice_limit_applies_to_the_chosen_practice_only(
    app: Flask, client: FlaskClient, clock: list[float]
) -> None:
    for sender in [ADMIN_CELL] * 3 + [SECOND_ADMIN_CELL] * 2:
        text(client, "CODEWORD", sender)
    text(client, "CODEWORD", MULTI_ADMIN_CELL)
    assert "try again later" in (reply_of(text(client, "1", MULTI_ADMIN_CELL)) or "")
    text(client, "CODEWORD", MULTI_ADMIN_CELL)
    assert reply_of(text(client, "2", MULTI_ADMIN_CELL)) is None
    assert OAK_CODEWORD in sent_texts(app)[-1]["body"]


def test_the_limits_are_settings(make_app: Callable[..., Flask]) -> None:
    app = make_app(SMS_CODEWORD_TEXTS_PER_NUMBER="1/hour")
    client = app.test_client()
    seed(client)
    assert reply_of(text(client, "CODEWORD")) is None
    assert "try again later" in (reply_of(text(client, "CODEWORD")) or "")


def test_a_limit_setting_that_does_not_parse_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SMS_INBOUND_PER_NUMBER"):
        load_config({"SMS_INBOUND_PER_NUMBER": "twenty an hour"}, tmp_path)


def test_a_flood_from_one_number_is_dropped_silently(
    app: Flask, client: FlaskClient, clock: list[float]
) -> None:
    for _ in range(20):
        assert reply_of(text(client, "hello", UNKNOWN_CELL)) is not None
    for body in ("hello", "HELP", "CODEWORD"):
        assert reply_of(text(client, body, UNKNOWN_CELL)) is None
    assert reply_of(text(client, "HELP", STAFF_CELL)) is not None
    clock[0] += 3601
    assert reply_of(text(client, "HELP", UNKNOWN_CELL)) is not None


def test_an_admin_flooding_gets_no_codeword_past_the_flood_limit(
    app: Flask, client: FlaskClient, clock: list[float]
) -> None:
    for _ in range(20):
        text(client, "hello")
    assert reply_of(text(client, "CODEWORD")) is None
    assert sent_texts(app) == []


def test_stop_is_honoured_even_during_a_flood(
    app: Flask, client: FlaskClient, clock: list[float]
) -> None:
    for _ in range(25):
        text(client, "hello", UNKNOWN_CELL)
    text(client, "STOP", UNKNOWN_CELL)
    assert app.extensions["directory"].is_opted_out(UNKNOWN_CELL)


# Failures -----------------------------------------------------------------------------


def test_with_redis_down_no_codeword_and_no_error(
    app: Flask, client: FlaskClient, redis_process: Any
) -> None:
    redis_process.stop()
    for body, sender in [
        ("CODEWORD", ADMIN_CELL),
        ("HELP", UNKNOWN_CELL),
        ("CODEWORD", STAFF_CELL),
    ]:
        response = text(client, body, sender)
        assert reply_of(response) is None
        assert CODEWORD.encode() not in response.data


def test_with_redis_down_an_opt_out_is_still_recorded(
    app: Flask, client: FlaskClient, redis_process: Any
) -> None:
    redis_process.stop()
    assert reply_of(text(client, "STOP")) is None
    assert app.extensions["directory"].is_opted_out(ADMIN_CELL)


def test_with_the_database_down_no_codeword_and_no_error(app: Flask, client: FlaskClient) -> None:
    Base.metadata.drop_all(app.extensions["directory"].engine)
    for body in ("CODEWORD", "HELP", "STOP", "1"):
        response = text(client, body)
        assert reply_of(response) is None
        assert CODEWORD.encode() not in response.data
    assert sent_texts(app) == []


def test_an_unsigned_text_is_refused(app: Flask, client: FlaskClient) -> None:
    response = client.post("/sms/inbound", data={"From": ADMIN_CELL, "Body": "CODEWORD"})
    assert response.status_code == 403
    assert sent_texts(app) == []


def test_a_sender_is_screened_for_opt_out_and_admin_cell_in_one_statement(
    app: Flask, client: FlaskClient
) -> None:
    """The first look-up of every inbound text: staff and unverified cells are no admin's."""
    store = app.extensions["directory"]
    assert store.sender(ADMIN_CELL) == Sender(opted_out=False, admin_cell=True)
    assert store.sender(MULTI_ADMIN_CELL) == Sender(opted_out=False, admin_cell=True)
    assert store.sender(STAFF_CELL) == Sender(opted_out=False, admin_cell=False)
    assert store.sender(UNVERIFIED_CELL) == Sender(opted_out=False, admin_cell=False)
    assert store.sender(UNKNOWN_CELL) == Sender(opted_out=False, admin_cell=False)
    store.opt_out(ADMIN_CELL)
    store.opt_out(UNKNOWN_CELL)
    assert store.sender(ADMIN_CELL) == Sender(opted_out=True, admin_cell=True)
    assert store.sender(UNKNOWN_CELL) == Sender(opted_out=True, admin_cell=False)
