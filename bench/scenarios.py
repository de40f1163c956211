"""The steps loaded: for each, how its requests are prepared and what it stands beside.

Every request wrk sends meets the state a real one would: each voice request
names its own call session (created beforehand as the support API creates one,
through ``ivr.session``), and each text comes from a sender still well inside
the inbound limit.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from bench.setup import ACCOUNT_SID, OUR_NUMBER, PUBLIC_BASE_URL, SECRET_KEY, Setup, SignedRequest

# Requests sent before counting, so that connections are open and scripts loaded.
WARM_UP_REQUESTS = 20


@dataclass(frozen=True)
class Prepared:
    """Requests for one step, and text the first one's response must contain.

    The first request is the one whose Redis commands are counted, after the
    warm-up requests; wrk sends the rest.
    """

    requests: list[SignedRequest]
    expect: str
    warm_up: list[SignedRequest] | None = None

    def split(self) -> tuple[SignedRequest, list[SignedRequest], list[SignedRequest]]:
        """(the counted request, the warm-up requests, the requests left for wrk)."""
        first, rest = self.requests[0], self.requests[1:]
        if self.warm_up is not None:
            return first, self.warm_up, rest or [first]
        if len(rest) <= WARM_UP_REQUESTS:
            # A stateless step (or a tiny run): the same requests serve every purpose.
            return first, self.requests[:WARM_UP_REQUESTS], rest or [first]
        return first, rest[:WARM_UP_REQUESTS], rest[WARM_UP_REQUESTS:]


@dataclass(frozen=True)
class Scenario:
    """One webhook step: how to prepare requests, and the baseline to compare with."""

    name: str
    baseline_path: str
    prepare: Callable[[Setup, int], Prepared]
    # False: count the step's Redis commands, but do not load it (see its note).
    load: bool = True
    note: str = ""
    # The baseline plus the signature check and one Redis round trip (bench/bare_app.py),
    # loaded with --floor; None for a step that needs no state.
    floor_path: str | None = None


# Webhook forms, with the fields Twilio sends --------------------------------------------


def voice_form(call_sid: str, to: str, **extra: str) -> dict[str, str]:
    """A voice webhook's form for an outbound call of ours, answered."""
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "in-progress",
        "Called": to,
        "CalledCountry": "US",
        "Caller": OUR_NUMBER,
        "CallerCountry": "US",
        "Direction": "outbound-api",
        "From": OUR_NUMBER,
        "FromCountry": "US",
        "To": to,
        "ToCountry": "US",
        **extra,
    }


def sms_form(sender: str, body: str, index: int) -> dict[str, str]:
    """An inbound text's form, as Twilio posts it."""
    sid = f"SM{index:032x}"
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": sender,
        "FromCountry": "US",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": OUR_NUMBER,
        "ToCountry": "US",
    }


# Preparing each step's requests -----------------------------------------------------------


def office_number(index: int) -> str:
    """A distinct valid US number for each index (10 area codes x 10,000)."""
    area = ("202", "212", "213", "312", "415", "503", "617", "702", "718", "808")[index % 10]
    return f"+1{area}555{(index // 10) % 10_000:04d}"


def sender_number(index: int) -> str:
    """A distinct valid US cell number for each index, none of them in the directory."""
    area = ("303", "404", "512", "602", "619", "704", "713", "801", "916", "972")[index % 10]
    return f"+1{area}555{(index // 10) % 10_000:04d}"


@dataclass(frozen=True)
class PlacedCall:
    """A verification call session as the support API leaves it once the call is placed."""

    session_id: str
    practice_id: str
    call_sid: str
    to: str


def _place_calls(redis_url: str, first: int, count: int, answered: bool) -> list[PlacedCall]:
    """Create sessions ``first`` to ``first + count`` through ``ivr.session``.

    Each has its own practice (so none waits for another's live call) and a
    random challenge code known only as its hash.
    """
    from ivr import session, step_scripts
    from ivr.session import CallSession, Verdict
    from store import onetime
    from store.redis_client import connect

    client = connect(redis_url)
    now = time.time()
    calls = []
    for i in range(first, first + count):
        session_id = f"VC{i:08d}{os.urandom(12).hex()}"
        practice_id = f"bench-practice-{i}"
        to = office_number(i)
        call = CallSession(
            id=session_id,
            practice_id=practice_id,
            practice_name="Bright Smiles Dental",
            language="en",
            to=to,
            actor="bench",
            requested_by="Dr. Ana Ruiz (owner)",
            created_at=now,
            expires_at=now + onetime.CODE_LIFETIME,
            code_hash=onetime.code_hash(SECRET_KEY, session_id, onetime.new_code()),
        )
        verdict, _ = session.reserve(client, call)
        if verdict is not Verdict.CREATED:
            raise RuntimeError(f"could not create call session {i}: {verdict}")
        call_sid = f"CA{i:032x}"
        session.mark_placed(client, call, call_sid, "queued")
        if answered:
            caller = step_scripts.CallerIdentity(session_id=session_id, call_sid=call_sid, to=to)
            reply = step_scripts.answer(client, caller, machine=False, now=now)
            if reply.verdict is not Verdict.ANSWERED:
                raise RuntimeError(f"could not answer call session {i}: {reply}")
        calls.append(PlacedCall(session_id, practice_id, call_sid, to))
    client.close()
    return calls


def placed_calls(
    setup: Setup, count: int, *, answered: bool, endpoint: str
) -> list[tuple[PlacedCall, str]]:
    """``count`` placed calls (answered, if asked), each with its ``endpoint`` callback path.

    Sessions are created in a process per core; the paths carry callback tokens
    signed exactly as the service signs them.
    """
    from ivr import tokens

    # Numbered on from the last step's, so that no two sessions share a practice.
    first, setup.sessions_made = setup.sessions_made, setup.sessions_made + count
    workers = min(os.cpu_count() or 1, max(1, count // 500))
    chunk = -(-count // workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [
            pool.submit(
                _place_calls, setup.redis_url, start, min(chunk, first + count - start), answered
            )
            for start in range(first, first + count, chunk)
        ]
        calls = [call for future in futures for call in future.result()]
    with setup.app.test_request_context():
        return [
            (
                call,
                _path_of(
                    tokens.callback_url(
                        endpoint,
                        tokens.sign(tokens.CallRef(call.session_id, call.practice_id, "en")),
                    )
                ),
            )
            for call in calls
        ]


def _path_of(url: str) -> str:
    assert url.startswith(PUBLIC_BASE_URL + "/"), url
    return url[len(PUBLIC_BASE_URL) :]


def inbound_call(setup: Setup, count: int) -> Prepared:
    """Someone calls our number: the same stateless answer each time."""
    form = voice_form("CA" + "1" * 32, OUR_NUMBER, CallStatus="ringing", Direction="inbound")
    form["From"] = form["Caller"] = "+12025550100"
    return Prepared([setup.sign("/ivr/inbound", form)], "verification line")


def answer_step(setup: Setup, count: int) -> Prepared:
    """A person answers a placed verification call: greet and ask for the code."""
    calls = placed_calls(setup, count, answered=False, endpoint="ivr.verification_answer")
    prepared = [
        setup.sign(path, voice_form(call.call_sid, call.to, AnsweredBy="human"))
        for call, path in calls
    ]
    return Prepared(prepared, "enter the six digit code")


def challenge_step(setup: Setup, count: int) -> Prepared:
    """A wrong code keyed in on an answered call: say so and ask again (two tries left)."""
    calls = placed_calls(setup, count, answered=True, endpoint="ivr.verification_code")
    # Every session's code is random: a fixed guess is wrong but for one in a million.
    prepared = [
        setup.sign(path, voice_form(call.call_sid, call.to, Digits="000000", FinishedOnKey=""))
        for call, path in calls
    ]
    return Prepared(prepared, "2 more tries")


def text_from_unknown_sender(setup: Setup, count: int) -> Prepared:
    """CODEWORD from a number that is no admin's verified cell: the generic reply."""
    prepared = [
        setup.sign("/sms/inbound", sms_form(sender_number(i), "codeword ", i)) for i in range(count)
    ]
    return Prepared(prepared, "only to a practice admin")


def help_text(setup: Setup, count: int) -> Prepared:
    """HELP from any number: the help text."""
    prepared = [
        setup.sign("/sms/inbound", sms_form(sender_number(i), "help", i)) for i in range(count)
    ]
    return Prepared(prepared, "Text CODEWORD from your verified cell")


def text_from_admin(setup: Setup, count: int) -> Prepared:
    """CODEWORD from an admin's verified cell: the codeword by REST, nothing in reply.

    Two admins of two practices: the first one's text warms up, the second one's is counted.
    """
    directory = setup.app.extensions["directory"]
    signed = []
    for i in range(2):
        practice_id, cell = f"bench-admin-practice-{i}", f"+1202555011{i}"
        directory.put_practice(
            practice_id,
            name="Bright Smiles Dental",
            office_number=f"+1202555010{i}",
            office_number_verified=True,
            codeword="maple-otter-47",
        )
        directory.put_user(
            practice_id,
            "bench-admin",
            name="Dr. Ana Ruiz",
            role="admin",
            cell_number=cell,
            cell_number_given=True,
            cell_number_verified=True,
        )
        signed.append(setup.sign("/sms/inbound", sms_form(cell, "CODEWORD", i)))
    return Prepared([signed[1]], "<Response />", warm_up=[signed[0]])


SCENARIOS: list[Scenario] = [
    Scenario("ivr inbound", "/bare/voice/say", inbound_call),
    Scenario("voice answer", "/bare/voice/gather", answer_step, floor_path="/floor/voice/gather"),
    Scenario(
        "voice challenge", "/bare/voice/gather", challenge_step, floor_path="/floor/voice/gather"
    ),
    Scenario(
        "sms inbound codeword", "/bare/sms", text_from_unknown_sender, floor_path="/floor/sms"
    ),
    Scenario("sms inbound help", "/bare/sms", help_text, floor_path="/floor/sms"),
    Scenario(
        "sms codeword (admin)",
        "/bare/sms",
        text_from_admin,
        load=False,
        note="not loaded: 3 codeword texts per number an hour",
    ),
]
