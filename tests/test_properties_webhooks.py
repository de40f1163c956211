"""Hypothesis against the Twilio webhooks: any form, any text, any size, signed or not.

Whatever arrives, a webhook answers valid TwiML (or 403 unsigned, 413 too large), never
a 5xx, never a word about what went wrong; the codeword is read out only on the call
it belongs to after its right code, never put in a text reply, and texted only to an
admin's verified cell when that admin asked with the CODEWORD keyword.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from core.webhooks import WEBHOOK_MAX_BYTES, WEBHOOK_MAX_FIELDS
from tests.faults import INTERNALS
from tests.helpers import ADMIN, PUBLIC_BASE_URL, SUPPORT, TWILIO_AUTH_TOKEN, twilio_signature
from tests.sms_helpers import (
    ADMIN_CELL,
    MULTI_ADMIN_CELL,
    OAK_CODEWORD,
    SECOND_ADMIN_CELL,
    STAFF_CELL,
    UNKNOWN_CELL,
    UNVERIFIED_CELL,
    reply_of,
    seed,
)
from tests.sms_helpers import CODEWORD as SMS_CODEWORD
from tests.voice import ACCOUNT_SID, OFFICE, OUR_NUMBER, hangs_up, last_placed_call, spellings

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VERIFIED_ADMIN_CELLS = {ADMIN_CELL, SECOND_ADMIN_CELL, MULTI_ADMIN_CELL}
CODEWORDS = (SMS_CODEWORD, OAK_CODEWORD)
# A Twilio webhook is at most this long, in at most so many fields (core/webhooks.py).
MAX_BYTES, MAX_FIELDS = WEBHOOK_MAX_BYTES, WEBHOOK_MAX_FIELDS

# Any text a form can carry (no lone surrogates: they cannot be sent at all).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
HUGE = st.sampled_from([2_000, 20_000, 100_000]).map(lambda n: "9" * n)


@dataclass
class Live:
    """A call answered and waiting for its code, and what the test saw happen to it."""

    code: str
    sid: str
    paths: dict[str, str]
    disclosed: bool = False
    codes_seen: list[str] = field(default_factory=list)


@pytest.fixture
def fuzz_app(make_app: Callable[..., Flask]) -> Flask:
    """The simulated carrier; limits wide open so that every path keeps answering."""
    return make_app(
        SMS_INBOUND_PER_NUMBER="100000/hour",
        SMS_CODEWORD_TEXTS_PER_NUMBER="100000/hour",
        SMS_CODEWORD_TEXTS_PER_PRACTICE="100000/day",
    )


@pytest.fixture
def live(fuzz_app: Flask) -> Live:
    client = fuzz_app.test_client()
    seed(client)
    client.put(
        "/api/v1/practices/p-1",
        json={
            "name": "Bright Smiles",
            "office_number": "(202) 555-0100",
            "office_number_verified": True,
        },
        headers=ADMIN,
    )
    response = client.post(
        "/api/v1/verification-calls",
        json={"practice_id": "p-1", "requested_by": "Dr. Ana Ruiz"},
        headers=SUPPORT,
    )
    assert response.status_code == 201, response.get_json()
    call = last_placed_call(client)
    call.answer()
    token = call.keys_url.split("?t=", 1)[1]
    paths = {
        "answer": f"/ivr/verification/answer?t={token}",
        "code": f"/ivr/verification/code?t={token}",
        "repeat": f"/ivr/verification/repeat?t={token}",
        "status": f"/ivr/verification/status?t={token}",
    }
    return Live(response.get_json()["challenge_code"], call.sid, paths)


def _post(client: FlaskClient, path: str, form: dict[str, str], signing: str) -> TestResponse:
    url = PUBLIC_BASE_URL + path
    headers = {}
    if signing == "valid":
        headers["X-Twilio-Signature"] = twilio_signature(url, form)
    elif signing == "other token":
        headers["X-Twilio-Signature"] = twilio_signature(url, form, "not-" + TWILIO_AUTH_TOKEN)
    elif signing == "other url":
        headers["X-Twilio-Signature"] = twilio_signature(url + "&x=1", form)
    return client.post(path, data=form, headers=headers)


def form_strategy(live: Live) -> st.SearchStrategy[dict[str, str]]:
    """Twilio's fields with right, wrong, odd or huge values (or missing), and any others."""
    known = {
        "AccountSid": st.sampled_from([ACCOUNT_SID, "AC" + "1" * 32]) | TEXT,
        "CallSid": st.sampled_from([live.sid, live.sid, "CA" + "2" * 32, ""]) | TEXT,
        "To": st.sampled_from([OFFICE, OFFICE, OUR_NUMBER, "+12025550142"]) | TEXT,
        "From": st.sampled_from([ADMIN_CELL, STAFF_CELL, UNKNOWN_CELL, OUR_NUMBER]) | TEXT,
        "Digits": st.sampled_from([live.code, "1", "2", "", "#", "123456"]) | TEXT | HUGE,
        "AnsweredBy": st.sampled_from(["human", "machine_start", "fax", "unknown"]) | TEXT,
        "CallStatus": st.sampled_from(["ringing", "in-progress", "completed", "busy"]) | TEXT,
        "Body": st.sampled_from(["CODEWORD", " code word ", "HELP", "STOP", "START", "1"])
        | TEXT
        | HUGE,
        "MessageSid": st.sampled_from(["SM" + "a" * 32, "MM" + "b" * 32]) | TEXT,
        "MessageStatus": st.sampled_from(["delivered", "failed", "sent", "undelivered"]) | TEXT,
    }
    return st.tuples(
        st.fixed_dictionaries({}, optional=known), st.dictionaries(TEXT, TEXT, max_size=4)
    ).map(lambda two: {**two[1], **two[0]})


def path_strategy(live: Live) -> st.SearchStrategy[str]:
    """Every webhook; the call's with its own token, another's, a broken one or none."""
    call_paths = st.sampled_from(sorted(live.paths.values()))
    broken = st.tuples(
        st.sampled_from(["answer", "code", "repeat", "status"]),
        st.sampled_from(["", "?t=", "?t=abc.def.ghi"])
        | TEXT.map(lambda t: "?" + urlencode({"t": t})),
    ).map(lambda two: f"/ivr/verification/{two[0]}{two[1]}")
    sms_status = TEXT.map(lambda p: "/sms/status?" + urlencode({"practice_id": p}))
    return st.one_of(
        call_paths,
        call_paths,
        st.sampled_from(["/ivr/inbound", "/sms/inbound", "/sms/status?practice_id=p-1"]),
        broken,
        sms_status,
    )


def test_any_webhook_request_gets_twiml_403_or_413_and_the_codeword_only_by_right(
    fuzz_app: Flask, live: Live
) -> None:
    client = fuzz_app.test_client()
    carrier = fuzz_app.extensions["carrier"]

    @PROPERTY_SETTINGS
    @given(
        path=path_strategy(live),
        form=form_strategy(live),
        signing=st.sampled_from(["valid", "valid", "valid", "other token", "other url", "none"]),
    )
    def check(path: str, form: dict[str, str], signing: str) -> None:
        texts_before = len(carrier.recorded("messages"))
        response = _post(client, path, form, signing)
        status, data = response.status_code, response.data
        assert status < 500
        if signing != "valid":
            # Refused before the form is read, or because it is too large to read.
            assert status in (403, 413) and data == b""
            return
        body = urlencode(form)
        if len(body) > MAX_BYTES + 1024 or len(form) > MAX_FIELDS:
            assert (status, data) == (413, b"")
            return
        if len(body) > MAX_BYTES - 1024:
            # The test client encodes a little differently: near the limit, either answer.
            assert status in (200, 413)
        else:
            assert status == 200
        if status == 413:
            return
        root = ET.fromstring(data)  # noqa: S314 - our own TwiML
        assert root.tag == "Response"
        text = data.decode()
        assert not any(c in text for c in CODEWORDS), "a codeword in TwiML as text"
        # What a caller hears or reads; attributes (a Gather's timeout, our URLs) are ours.
        assert not INTERNALS.search(" ".join(root.itertext()))
        read_out = len(spellings(root))
        this_call = form.get("CallSid") == live.sid and form.get("To") == OFFICE
        if path == live.paths["code"] and this_call and form.get("Digits") == live.code:
            live.disclosed = live.disclosed or read_out > 0
        elif path == live.paths["repeat"] and this_call and form.get("Digits") == "1":
            assert read_out == 0 or live.disclosed
        else:
            assert read_out == 0, (path, form)
        if path.startswith("/sms/"):
            assert all(child.tag == "Message" for child in root)
        elif read_out == 0:
            assert hangs_up(root) or root.find("Gather") is not None or len(root) == 0
        for message in carrier.recorded("messages")[
            : len(carrier.recorded("messages")) - texts_before
        ]:
            if any(c in message["body"] for c in CODEWORDS):
                assert message["to"] in VERIFIED_ADMIN_CELLS

    check()


# Inbound texts ----------------------------------------------------------------------------

KEYWORDS = ["CODEWORD", "code word", "Codeword", "HELP", "info", "STOP", "stop all", "START"]
BODY = st.one_of(
    st.sampled_from(KEYWORDS),
    st.tuples(
        st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u2003", "\u200b"]),
        st.sampled_from(KEYWORDS),
        st.sampled_from(["", " ", "!", ".", "\u200b", " please"]),
    ).map("".join),
    st.sampled_from(["ＣＯＤＥＷＯＲＤ", "CODEW0RD", "C O D E W O R D", "codeword codeword"]),
    st.integers(0, 99).map(str),
    TEXT,
    st.text(max_size=2000),
)
SENDER = st.one_of(
    st.sampled_from(
        [ADMIN_CELL, SECOND_ADMIN_CELL, MULTI_ADMIN_CELL, STAFF_CELL, UNVERIFIED_CELL, UNKNOWN_CELL]
    ),
    st.sampled_from(["(202) 555-0111", "202.555.0111", "+1 202 555 0111", "2025550111"]),
    st.sampled_from(["+442071838750", "+15005550006", "", "anonymous", "+1" + "9" * 30]),
    TEXT,
)


def keyword(body: str) -> str:
    """How the contract reads a text: case-insensitive, surrounding space ignored."""
    return " ".join(body.split()).upper()


def test_any_inbound_text_gets_at_most_one_short_reply_and_the_codeword_only_by_rest(
    fuzz_app: Flask,
) -> None:
    client = fuzz_app.test_client()
    seed(client)
    carrier = fuzz_app.extensions["carrier"]

    @PROPERTY_SETTINGS
    @given(body=BODY, sender=SENDER)
    def check(body: str, sender: str) -> None:
        texts_before = len(carrier.recorded("messages"))
        form = {
            "AccountSid": ACCOUNT_SID,
            "MessageSid": "SM" + "c" * 32,
            "From": sender,
            "To": OUR_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        reply = reply_of(_post(client, "/sms/inbound", form, "valid"))
        assert reply is None or not any(c in reply for c in CODEWORDS)
        sent = carrier.recorded("messages")[: len(carrier.recorded("messages")) - texts_before]
        assert {m["to"] for m in sent} <= VERIFIED_ADMIN_CELLS
        with_codeword = [m for m in sent if any(c in m["body"] for c in CODEWORDS)]
        if with_codeword:
            [message] = with_codeword
            # CODEWORD, or a number answering the list an admin of two practices got.
            chose = keyword(body).isdigit() and message["to"] == MULTI_ADMIN_CELL
            assert keyword(body) in ("CODEWORD", "CODE WORD") or chose, body

    check()
