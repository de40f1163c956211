"""A model of the verification call, and Hypothesis driving the service and the model side by side.

The model is written from the contract and docs/voice.md, not from the code: a call is
live until its final status callback or its expiry; a person who answers is asked for
the code; silence is met twice, then the call ends; the right code reads the codeword
twice and offers two repeats; three wrong codes lock the call; a machine gets a short
message; final statuses end everything; statuses only move forward; a callback that is
not this call's (another CallSid or number, no CallSid, a forged or stale token) hears
an apology and changes nothing.

Hypothesis sends any of these steps in any order, replays them, lets the clock run past
the code's expiry and the token's, and checks every answer against the model: the
words heard, whether the codeword was read (never without the right code on that very
call), the status support sees, the practice's one live call, and the audit trail.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from core.twiml import APOLOGY
from ivr import prompts, tokens
from tests.helpers import ADMIN, SUPPORT, post_signed
from tests.voice import ACCOUNT_SID, CODEWORD, OUR_NUMBER, Clock, path_of, said, spellings

BRAND = "Practice by Numbers"
SUPPORT_CONTACT = "support at practicebynumbers.com"
CODE_LIFETIME = 600
TOKEN_MAX_AGE = 3600
FINAL = {"disclosed", "locked", "voicemail", "completed", "no-answer", "busy", "failed", "canceled"}
RANK = {"queued": 0, "ringing": 1, "in-progress": 2}
# Twilio's CallStatus values, and our status for each (None: not one we act on).
TWILIO_STATUSES = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "ringing",
    "in-progress": "in-progress",
    "answered": "in-progress",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
    "bogus": None,
    "": None,
}
MACHINES = ["machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"]
# Settings for every run: derandomized and with no example database, so CI is stable.
MODEL_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# Every kind of answer the model knows, with how often each was heard over all runs.
HEARD: Counter[str] = Counter()

STEPS = ["answer", "code", "repeat", "status"]
KEYS = st.sampled_from(["right", "wrong", "wrong", "silence", "silence"])
# What is keyed in at the code prompt: mostly the right or a wrong code or nothing, also
# any text at all, and far more digits than six.
KEYED = KEYS | KEYS | KEYS | st.text(max_size=40) | st.integers(0, 5000).map(lambda n: "7" * n)
# One webhook of a call, as (the model's method, its arguments).
ANSWER = st.tuples(st.just("answer"), st.sampled_from(["human"] * 8 + ["unknown", *MACHINES]))
CODE = st.tuples(st.just("code"), KEYED)
REPEAT = st.tuples(st.just("repeat"), st.sampled_from(["1", "1", "1", "2", "", "11", "*"]))
STATUS = st.tuples(st.just("status"), st.sampled_from(sorted(TWILIO_STATUSES)))
FOREIGN = st.tuples(
    st.just("foreign"),
    st.sampled_from(STEPS),
    st.sampled_from(["call_sid", "to", "no_call_sid", "no_to", "other_call"]),
)
FORGED = st.tuples(
    st.just("forged"),
    st.sampled_from(STEPS),
    st.sampled_from(["tampered", "missing", "garbage", "unknown_session"]),
)
# Time passing between two webhooks of the call (the person thinks, the line stays open).
PAUSE = st.tuples(st.just("pause"), st.sampled_from([5, 30, 601]))
WEBHOOK = st.one_of(ANSWER, CODE, CODE, REPEAT, STATUS, FOREIGN, FORGED, PAUSE)
# A call as Twilio would run it (answered, silences, codes, perhaps the right one,
# repeats, statuses), or any webhooks in any order, or the one and then the other.
IN_ORDER = st.tuples(
    st.lists(ANSWER, min_size=1, max_size=2),
    st.integers(0, 3).map(lambda n: [("code", "silence")] * n),
    st.lists(CODE, max_size=3),
    st.sampled_from([[], [("code", "right")]]),
    st.lists(PAUSE, max_size=1),
    st.lists(REPEAT, max_size=3),
    st.lists(STATUS, max_size=2),
).map(lambda parts: [step for part in parts for step in part])
ANY_ORDER = st.lists(WEBHOOK, min_size=1, max_size=6)
WEBHOOKS = IN_ORDER | ANY_ORDER | st.tuples(IN_ORDER, ANY_ORDER).map(lambda two: two[0] + two[1])
# What happens next: support asks for a call (perhaps with an Idempotency-Key), Twilio
# posts webhooks of a call (mostly the latest), or time passes.
ACTION = st.one_of(
    st.tuples(st.just("ask"), st.none() | st.sampled_from(["k-1", "k-2"])),
    *[st.tuples(st.just("webhooks"), st.sampled_from([-1, -1, -1, 0, 1]), WEBHOOKS)] * 3,
    st.tuples(st.just("wait"), st.sampled_from([1, 5, 30, 60] * 4 + [299, 601, 601, 3601])),
)


def rank(status: str) -> int:
    return RANK.get(status, 3)


@dataclass
class ModelCall:
    """One verification call as the model expects it to be."""

    id: str
    code: str
    sid: str
    to: str
    answer_path: str
    status_path: str
    token: str
    requested_at: int
    expires_at: float
    status: str = "queued"
    ended: bool = False
    wrong: int = 0
    silences: int = 0
    repeats: int = 0
    released: bool = False

    def step_path(self, step: str) -> str:
        return f"/ivr/verification/{step}?t={self.token}"


@dataclass
class Heard:
    """What the model expects one webhook answer to be."""

    kind: str
    language: str
    remaining: int = 0

    def check(self, root: ET.Element, practice: str) -> None:
        """The TwiML says exactly this prompt; only a reading or repeat spells the codeword."""
        HEARD[self.kind] += 1
        lang = self.language
        text = said(root)
        gather = root.find("Gather")
        action = gather.get("action", "") if gather is not None else ""
        spelled = spellings(root)
        expected_spellings = {"reading": 2, "repeat": 1, "last-repeat": 1}.get(self.kind, 0)
        assert len(spelled) == expected_spellings, (self.kind, text)
        if self.kind == "status":
            assert len(root) == 0, ET.tostring(root)
            return
        asks_for_code = {
            "greeting": prompts.text(lang, "greeting", brand=BRAND, practice=practice),
            "reprompt": prompts.text(lang, "no_code"),
            "wrong": prompts.text(lang, "wrong_code", remaining=self.remaining)
            if self.remaining > 1
            else prompts.text(lang, "wrong_code_last"),
        }
        if self.kind in asks_for_code:
            assert text == f"{asks_for_code[self.kind]} {prompts.text(lang, 'enter_code')}", text
            assert "/ivr/verification/code?" in action
            assert root.find("Hangup") is None
            return
        if self.kind in ("reading", "repeat"):
            assert "/ivr/verification/repeat?" in action, (self.kind, text)
            return
        assert gather is None and root.find("Hangup") is not None, (self.kind, text)
        if self.kind == "last-repeat":
            assert text.endswith(prompts.text(lang, "goodbye")), text
            return
        hang_ups = {
            "locked": prompts.text(lang, "locked", support=SUPPORT_CONTACT),
            "silent": prompts.text(lang, "silent"),
            "voicemail": prompts.text(lang, "voicemail", brand=BRAND, practice=practice),
            "expired": prompts.text(lang, "expired"),
            "ended": prompts.text(lang, "ended"),
            "goodbye": prompts.text(lang, "goodbye"),
            "apology": APOLOGY[lang],
        }
        assert text == hang_ups[self.kind], (self.kind, text)


class VerificationCallModel(RuleBasedStateMachine):
    """The service and the model, step by step."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.clock = Clock()
        self.clock.now = float(int(self.clock.now))
        app.config["CLOCK"] = self.clock
        self.practice_id = "p-" + secrets.token_hex(6)
        self.practice_name = "Bright Smiles"
        self.language = "en"
        self.calls: list[ModelCall] = []
        # Idempotency-Key -> the call it made.
        self.made_with: dict[str, ModelCall] = {}
        self.audit: Counter[str] = Counter()
        self.refusals = 0

    @initialize(language=st.sampled_from(["en", "es"]))
    def a_practice_and_its_first_call(self, language: str) -> None:
        self.language = language
        body = {
            "name": self.practice_name,
            "office_number": "(202) 555-0100",
            "office_number_verified": True,
            "codeword": CODEWORD,
            "language": language,
        }
        response = self.client.put(
            f"/api/v1/practices/{self.practice_id}", json=body, headers=ADMIN
        )
        assert response.status_code == 201
        self.ask_for_a_call(None)

    # One rule for every kind of action: Hypothesis's swarm testing switches whole rules
    # off for a run, and a run without webhooks, or without new calls, proves little.
    @rule(action=ACTION)
    def the_world_moves_on(self, action: tuple[Any, ...]) -> None:
        kind, *args = action
        if kind == "ask":
            # A few refusals per run prove the point; more would crowd out the calls.
            if len(self.calls) < 6 and (self.live_call() is None or self.refusals < 3):
                self.ask_for_a_call(*args)
        elif kind == "webhooks":
            index, webhooks = args
            call = self.calls[index % len(self.calls)]
            for method, *values in webhooks:
                getattr(self, method)(call, *values)
        else:
            self.clock.advance(args[0])

    # Helpers ----------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.now

    def live_call(self) -> ModelCall | None:
        live = [c for c in self.calls if not c.released and self.now < c.expires_at]
        return live[-1] if live else None

    def status_of(self, call: ModelCall) -> str:
        """The status support sees: an unfinished call past its expiry is expired."""
        if call.status not in FINAL and self.now >= call.expires_at:
            return "expired"
        return call.status

    def token_stale(self, call: ModelCall) -> bool:
        return int(self.now) - call.requested_at > TOKEN_MAX_AGE

    def post(self, path: str, form: dict[str, str]) -> ET.Element:
        response = post_signed(self.client, path, form)
        assert response.status_code == 200, (path, response.status_code)
        assert response.mimetype == "text/xml"
        root = ET.fromstring(response.get_data(as_text=True))  # noqa: S314 - our own TwiML
        assert root.tag == "Response"
        return root

    def form(self, call: ModelCall, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call.sid,
            "From": OUR_NUMBER,
            "To": call.to,
            "Direction": "outbound-api",
            "CallStatus": "in-progress",
            **extra,
        }

    def expect(self, root: ET.Element, kind: str, remaining: int = 0) -> None:
        Heard(kind, self.language, remaining).check(root, self.practice_name)

    def expect_apology_in_english(self, root: ET.Element) -> None:
        """A token we cannot read names no practice, so no practice's language either."""
        Heard("apology", "en").check(root, self.practice_name)

    def audit_outcome(self, outcome: str) -> None:
        self.audit[outcome] += 1

    # Support ----------------------------------------------------------------------------

    def ask_for_a_call(self, idempotency_key: str | None) -> None:
        """POST /api/v1/verification-calls: a new call, a replay, or 409 naming the live one."""
        headers = dict(SUPPORT)
        if idempotency_key:
            headers["Idempotency-Key"] = f"{self.practice_id}-{idempotency_key}"
        response = self.client.post(
            "/api/v1/verification-calls",
            json={"practice_id": self.practice_id, "requested_by": "Dr. Ana Ruiz"},
            headers=headers,
        )
        assert response.status_code < 500
        body = response.get_json()
        made = self.made_with.get(idempotency_key or "")
        if made is not None:
            # The same key again: the same call, never a second one; its code while it works.
            assert response.status_code == 201, body
            assert response.headers["Idempotent-Replayed"] == "true"
            assert body["id"] == made.id
            expected_code = made.code if self.status_of(made) in RANK else None
            assert body["challenge_code"] == expected_code
            HEARD["idempotent replay"] += 1
            return
        live = self.live_call()
        if live is not None:
            assert response.status_code == 409, body
            assert body["error"]["live_call_id"] == live.id
            HEARD["409 call_in_progress"] += 1
            self.refusals += 1
            return
        assert response.status_code == 201, body
        assert body["status"] == "queued" and len(body["challenge_code"]) == 6
        placed = self.app.extensions["carrier"].recorded("calls")[0]
        answer_path = path_of(placed["url"])
        self.calls.append(
            ModelCall(
                id=body["id"],
                code=body["challenge_code"],
                sid=placed["sid"],
                to=placed["to"],
                answer_path=answer_path,
                status_path=path_of(placed["status_callback"]),
                token=answer_path.split("?t=", 1)[1],
                requested_at=int(self.now),
                expires_at=self.now + CODE_LIFETIME,
            )
        )
        if idempotency_key:
            self.made_with[idempotency_key] = self.calls[-1]

    # Twilio drives the call -------------------------------------------------------------

    def answer(self, call: ModelCall, answered_by: str) -> None:
        root = self.post(call.answer_path, self.form(call, AnsweredBy=answered_by))
        if self.token_stale(call):
            return self.expect_apology_in_english(root)
        if rank(call.status) == 3:
            return self.expect(root, "ended")
        if self.now >= call.expires_at:
            return self.expect(root, "expired")
        if answered_by in MACHINES:
            call.status = "voicemail"
            self.audit_outcome("voicemail")
            return self.expect(root, "voicemail")
        if rank(call.status) < 2:
            call.status = "in-progress"
        return self.expect(root, "greeting")

    def code(self, call: ModelCall, keyed: str) -> None:
        digits = {"right": call.code, "wrong": f"{(int(call.code) + 1) % 10**6:06d}"}.get(
            keyed, "" if keyed == "silence" else keyed
        )
        root = self.post(call.step_path("code"), self.form(call, Digits=digits))
        if self.token_stale(call):
            return self.expect_apology_in_english(root)
        if call.status != "in-progress":
            return self.expect(root, "ended")
        if self.now >= call.expires_at:
            return self.expect(root, "expired")
        if digits == "":
            call.silences += 1
            return self.expect(root, "silent" if call.silences > 2 else "reprompt")
        if digits == call.code:
            call.status = "disclosed"
            self.audit_outcome("disclosed")
            return self.expect(root, "reading")
        call.wrong += 1
        if call.wrong >= 3:
            call.status = "locked"
            self.audit_outcome("locked")
            return self.expect(root, "locked")
        return self.expect(root, "wrong", remaining=3 - call.wrong)

    def repeat(self, call: ModelCall, pressed: str) -> None:
        root = self.post(call.step_path("repeat"), self.form(call, Digits=pressed))
        if self.token_stale(call):
            return self.expect_apology_in_english(root)
        if call.status != "disclosed" or call.ended:
            return self.expect(root, "ended")
        if self.now >= call.expires_at:
            return self.expect(root, "expired")
        if pressed != "1":
            return self.expect(root, "goodbye")
        call.repeats += 1
        if call.repeats > 2:
            return self.expect(root, "goodbye")
        return self.expect(root, "repeat" if call.repeats < 2 else "last-repeat")

    def status(self, call: ModelCall, call_status: str) -> None:
        root = self.post(call.status_path, self.form(call, CallStatus=call_status))
        if self.token_stale(call):
            return self.expect_apology_in_english(root)
        self.expect(root, "status")
        status = TWILIO_STATUSES[call_status]
        if status is None:
            return
        if rank(status) > rank(call.status):
            call.status = status
            if status in FINAL:
                self.audit_outcome(status)
        if rank(status) == 3:
            call.ended = True
            call.released = True

    def pause(self, call: ModelCall, seconds: int) -> None:
        self.clock.advance(seconds)

    # Callbacks that are not this call's -------------------------------------------------

    def foreign(self, call: ModelCall, step: str, wrong: str) -> None:
        """Another CallSid, another number, none at all, or another call's own fields."""
        form = self.form(call, Digits=call.code, AnsweredBy="human", CallStatus="completed")
        if wrong == "call_sid":
            form["CallSid"] = "CA" + secrets.token_hex(16)
        elif wrong == "to":
            form["To"] = "+12025550142"
        elif wrong == "no_call_sid":
            del form["CallSid"]
        elif wrong == "no_to":
            del form["To"]
        else:
            others = [c for c in self.calls if c.sid != call.sid]
            if not others:
                return
            form["CallSid"] = others[0].sid
        path = call.answer_path if step == "answer" else call.step_path(step)
        root = self.post(path, form)
        if self.token_stale(call):
            return self.expect_apology_in_english(root)
        self.expect(root, "apology")

    def forged(self, call: ModelCall, step: str, forgery: str) -> None:
        """A token we did not sign (or no token), or ours naming no session."""
        if forgery == "tampered":
            # A character in the middle of the signature, where every bit counts.
            at = len(call.token) - 10
            token = call.token[:at] + ("B" if call.token[at] == "A" else "A") + call.token[at + 1 :]
        elif forgery == "missing":
            token = ""
        elif forgery == "garbage":
            token = "not-a-token"
        else:
            with self.app.test_request_context():
                ref = tokens.CallRef("VC" + secrets.token_hex(16), self.practice_id, self.language)
                token = tokens.sign(ref)
        root = self.post(f"/ivr/verification/{step}?t={token}", self.form(call, Digits=call.code))
        if forgery == "unknown_session":
            return self.expect(root, "status" if step == "status" else "ended")
        self.expect_apology_in_english(root)

    # What support sees ------------------------------------------------------------------

    @invariant()
    def support_sees_each_calls_status(self) -> None:
        for call in self.calls:
            response = self.client.get(f"/api/v1/verification-calls/{call.id}", headers=SUPPORT)
            assert response.status_code == 200
            assert response.get_json()["status"] == self.status_of(call), call

    def teardown(self) -> None:
        if not self.calls:
            return
        response = self.client.get(
            f"/api/v1/practices/{self.practice_id}/disclosures", headers=SUPPORT
        )
        events = response.get_json()["events"]
        assert Counter(e["outcome"] for e in events if e["channel"] == "voice") == self.audit


@pytest.fixture
def model_app(make_app: Callable[..., Flask]) -> Flask:
    """The service on the simulated carrier, with call limits out of the model's way."""
    return make_app(
        VERIFICATION_CALLS_PER_PRACTICE="100000/hour",
        VERIFICATION_CALLS_PER_SUPPORT_TOKEN="100000/hour",
    )


def test_the_service_agrees_with_the_model_of_the_verification_call(model_app: Flask) -> None:
    HEARD.clear()
    run_state_machine_as_test(lambda: VerificationCallModel(model_app), settings=MODEL_SETTINGS)
    # The runs reached every corner of the model, or they proved little.
    kinds = {
        "greeting", "reprompt", "wrong", "reading", "repeat", "last-repeat", "goodbye",
        "locked", "silent", "voicemail", "expired", "ended", "apology", "status",
        "409 call_in_progress", "idempotent replay",
    }  # fmt: skip
    assert kinds <= set(HEARD), f"never heard: {kinds - set(HEARD)} in {HEARD}"
