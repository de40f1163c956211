"""Limits that hold when requests arrive together: gunicorn, real Redis, Twilio through Prism.

Each test fires its requests from threads released at the same instant and counts what
reached Twilio. A limit of N lets at most N through, and the requests refused for
another reason (a live call) give their slots back.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from devservers.gunicorn_server import gunicorn_server
from devservers.redis_server import RedisProcess
from store.redis_client import connect
from tests.faults import calls_placed, inbound_text, texts_sent
from tests.gunicorn_flows import TWILIO_TOKEN, HttpCall, Twilio, api, production_env
from tests.helpers import ADMIN, PUBLIC_BASE_URL, SUPPORT, twilio_signature
from tests.twilio_fake import TwilioRecorder
from tests.voice import CODEWORD
from tests.workers import worker_process

DANA = "+12025550111"
# Support tokens beside the usual one, so that a race on one practice is not a race on a token.
DESKS = {f"desk{n}": f"support-token-for-race-desk-{n:04d}" for n in range(4)}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    redis_process: RedisProcess,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> Iterator[str]:
    """One gunicorn (2 workers of 8 threads) for the module, with small limits."""
    tmp: Path = tmp_path_factory.mktemp("limit-races")
    if not redis_process.running:
        redis_process.start()
    support_tokens = ",".join(
        [f"helpdesk={SUPPORT['Authorization'].removeprefix('Bearer ')}"]
        + [f"{name}={token}" for name, token in DESKS.items()]
    )
    env = production_env(
        redis_process.url,
        f"sqlite:///{tmp / 'directory.sqlite3'}",
        twilio_recorder[0],
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
        GUNICORN_THREADS="8",
        SUPPORT_TOKENS=support_tokens,
        VERIFICATION_CALLS_PER_SUPPORT_TOKEN="3/hour",
        SMS_INBOUND_PER_NUMBER="12/hour",
    )
    with gunicorn_server(env) as url, worker_process(env):
        yield url


@pytest.fixture
def sent(
    server: str,
    redis_process: RedisProcess,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> TwilioRecorder:
    """What reached Twilio during the test; every limit starts empty."""
    connect(redis_process.url).flushdb()
    recorder = twilio_recorder[1]
    recorder.clear()
    return recorder


def all_at_once(count: int, send: Callable[[int], requests.Response]) -> list[requests.Response]:
    """Run ``send(0..count-1)`` on as many threads, released together."""
    barrier = threading.Barrier(count)
    responses: list[requests.Response | None] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        responses[i] = send(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(r is not None for r in responses)
    return [r for r in responses if r is not None]


def statuses(responses: list[requests.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def practice(url: str, practice_id: str, office: str, **fields: object) -> None:
    body = {"name": "Bright Smiles", "office_number": office, "codeword": CODEWORD, **fields}
    assert api("PUT", f"{url}/api/v1/practices/{practice_id}", ADMIN, body).status_code in (
        200,
        201,
    )


def admin(url: str, practice_id: str, user_id: str, cell: str, verified: bool = True) -> None:
    body = {"name": "Dana", "role": "admin", "cell_number": cell, "cell_number_verified": verified}
    path = f"{url}/api/v1/practices/{practice_id}/users/{user_id}"
    assert api("PUT", path, ADMIN, body).status_code in (200, 201)


def texts_to(sent: TwilioRecorder, number: str) -> int:
    return sum(1 for r in texts_sent(sent) if r.form["To"] == number)


def signed_text(url: str, sender: str, body: str) -> requests.Response:
    """A text to our number, posted and signed as Twilio does."""
    form = inbound_text(sender, body)
    signature = twilio_signature(PUBLIC_BASE_URL + "/sms/inbound", form, TWILIO_TOKEN)
    return requests.post(
        f"{url}/sms/inbound", data=form, headers={"X-Twilio-Signature": signature}, timeout=10
    )


def reply(response: requests.Response) -> str | None:
    return ET.fromstring(response.text).findtext("Message")  # noqa: S314 - our own TwiML


def end_call(url: str, sent: TwilioRecorder, status_url: str, headers: dict) -> None:
    """Twilio reports the last placed call completed: the practice has no live call."""
    placed = calls_placed(sent)[-1]
    call_sid = api("GET", status_url, headers).json()["call_sid"]
    call = HttpCall(
        Twilio(url), placed.form["Url"], placed.form["StatusCallback"], call_sid, placed.form["To"]
    )
    call.status("completed")


def wait_for_texts(sent: TwilioRecorder, number: str, count: int) -> None:
    """Until ``count`` texts to ``number`` reached Twilio (the worker sends them), or 30 s."""
    deadline = time.monotonic() + 30
    while texts_to(sent, number) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_twelve_support_codeword_texts_at_once_send_exactly_three(
    server: str, sent: TwilioRecorder
) -> None:
    """SMS_CODEWORD_TEXTS_PER_NUMBER 3/hour: 3 texts and 9 answers 429, not 9 texts."""
    practice(server, "p-1", "(202) 555-0100", office_number_verified=True)
    admin(server, "p-1", "u-1", DANA)
    body = {"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana"}
    responses = all_at_once(
        12, lambda _: api("POST", f"{server}/api/v1/codeword-texts", SUPPORT, body)
    )
    assert statuses(responses) == {202: 3, 429: 9}
    wait_for_texts(sent, DANA, 3)  # the worker sends them
    assert texts_to(sent, DANA) == 3
    # A request refused by the number's limit holds a practice slot until it gives it
    # back, so a racing request may be told of either limit.
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json()["error"]["limit"] in (
            "sms_codeword_texts_per_number",
            "sms_codeword_texts_per_practice",
        )


def test_ten_codeword_keywords_at_once_from_one_cell_send_three_texts_at_most(
    server: str, sent: TwilioRecorder
) -> None:
    practice(server, "p-1", "(202) 555-0100", office_number_verified=True)
    admin(server, "p-1", "u-1", DANA)
    responses = all_at_once(10, lambda _: signed_text(server, DANA, "CODEWORD"))
    assert statuses(responses) == {200: 10}
    refused = sum("try again later" in (reply(r) or "") for r in responses)
    going = 10 - refused
    wait_for_texts(sent, DANA, going)  # the worker sends them
    assert texts_to(sent, DANA) == going
    assert 1 <= going <= 3


def test_eight_cell_verifications_at_once_text_three_codes(
    server: str, sent: TwilioRecorder
) -> None:
    """CELL_VERIFICATION_TEXTS_PER_USER 3/hour."""
    practice(server, "p-1", "(202) 555-0100")
    admin(server, "p-1", "u-1", DANA, verified=False)
    path = f"{server}/api/v1/practices/p-1/users/u-1/cell-verification"
    responses = all_at_once(8, lambda _: api("POST", path, ADMIN))
    assert statuses(responses) == {202: 3, 429: 5}
    assert texts_to(sent, DANA) == 3


def test_eight_calls_at_once_for_one_support_token_place_three(
    server: str, sent: TwilioRecorder
) -> None:
    """VERIFICATION_CALLS_PER_SUPPORT_TOKEN 3/hour, eight practices: not one call each."""
    for n in range(8):
        practice(server, f"p-{n}", f"(202) 555-010{n}", office_number_verified=True)
    responses = all_at_once(
        8,
        lambda n: api(
            "POST",
            f"{server}/api/v1/verification-calls",
            SUPPORT,
            {"practice_id": f"p-{n}", "requested_by": "Ana"},
        ),
    )
    assert statuses(responses) == {201: 3, 429: 5}
    assert len(calls_placed(sent)) == 3
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["limit"] == "verification_calls_per_support_token"


def test_twelve_calls_at_once_to_one_practice_place_one_and_spend_one_slot(
    server: str, sent: TwilioRecorder
) -> None:
    """VERIFICATION_CALLS_PER_PRACTICE 3/hour: one call is live, the others are refused,
    and those refused for the live call give their slots back: two more calls follow."""
    practice(server, "p-1", "(202) 555-0100", office_number_verified=True)
    desks = [{"Authorization": f"Bearer {token}"} for token in DESKS.values()]

    def ask(n: int) -> requests.Response:
        body = {"practice_id": "p-1", "requested_by": "Ana"}
        return api("POST", f"{server}/api/v1/verification-calls", desks[n % len(desks)], body)

    def end(placed: requests.Response) -> None:
        status_url = f"{server}/api/v1/verification-calls/{placed.json()['id']}"
        end_call(server, sent, status_url, SUPPORT)

    responses = all_at_once(12, ask)
    counted = statuses(responses)
    assert counted[201] == 1 and set(counted) <= {201, 409, 429}, counted
    assert len(calls_placed(sent)) == 1
    [placed] = [r for r in responses if r.status_code == 201]
    for n in range(2):
        end(placed)
        placed = ask(n)
        assert placed.status_code == 201, placed.text
    end(placed)
    refused = ask(2)
    assert refused.status_code == 429
    assert refused.json()["error"]["limit"] == "verification_calls_per_practice"
    assert len(calls_placed(sent)) == 3


def test_twelve_office_verifications_at_once_place_one_and_spend_one_slot(
    server: str, sent: TwilioRecorder
) -> None:
    """OFFICE_VERIFICATIONS_PER_PRACTICE 3/hour, as for support's calls."""
    practice(server, "p-1", "(202) 555-0100")
    path = f"{server}/api/v1/practices/p-1/office-number/verification"

    def end(placed: requests.Response) -> None:
        end_call(server, sent, f"{path}/{placed.json()['id']}", ADMIN)

    responses = all_at_once(12, lambda _: api("POST", path, ADMIN))
    counted = statuses(responses)
    assert counted[201] == 1 and set(counted) <= {201, 409, 429}, counted
    assert len(calls_placed(sent)) == 1
    [placed] = [r for r in responses if r.status_code == 201]
    for _ in range(2):
        end(placed)
        placed = api("POST", path, ADMIN)
        assert placed.status_code == 201, placed.text
    end(placed)
    refused = api("POST", path, ADMIN)
    assert refused.status_code == 429
    assert refused.json()["error"]["limit"] == "office_verifications_per_practice"
    assert len(calls_placed(sent)) == 3


def test_sixteen_texts_at_once_from_one_number_get_twelve_answers(
    server: str, sent: TwilioRecorder
) -> None:
    """SMS_INBOUND_PER_NUMBER 12/hour: past it, a flood, dropped without a reply."""
    responses = all_at_once(16, lambda _: signed_text(server, "+12025550199", "HELP"))
    assert sum(reply(r) is not None for r in responses) == 12
