"""Concurrent key presses against gunicorn: the codeword is read once, the lock holds."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from devservers.gunicorn_server import gunicorn_server
from store import keys
from tests.helpers import ADMIN, SUPPORT, twilio_signature
from tests.voice import CODEWORD, CODEWORD_SPOKEN_EN, OFFICE, path_of, spellings

SUBMISSIONS = 20


@pytest.fixture
def server(base_env: dict[str, str]) -> Iterator[str]:
    env = {**base_env, "WEB_CONCURRENCY": "4", "GUNICORN_THREADS": "8"}
    with gunicorn_server(env) as url:
        yield url


def signed_post(server: str, url: str, form: dict[str, str]) -> requests.Response:
    """POST to our gunicorn as Twilio would post to ``url`` (a public URL)."""
    signature = twilio_signature(url, form)
    return requests.post(
        server + path_of(url), data=form, headers={"X-Twilio-Signature": signature}, timeout=10
    )


def start_and_answer(server: str, redis_client: redis.Redis) -> tuple[str, str, dict[str, str]]:
    """Ask for a call, answer it; return the challenge code, the Gather action, the base form."""
    practice = {
        "name": "Bright Smiles",
        "office_number": OFFICE,
        "office_number_verified": True,
        "codeword": CODEWORD,
    }
    put = requests.put(f"{server}/api/v1/practices/p-1", json=practice, headers=ADMIN, timeout=10)
    assert put.status_code == 201
    created = requests.post(
        f"{server}/api/v1/verification-calls",
        json={"practice_id": "p-1", "requested_by": "Ana"},
        headers=SUPPORT,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    placed = json.loads(redis_client.lindex(keys.simulated("calls"), 0))
    form = {"CallSid": placed["sid"], "To": OFFICE, "From": "+15005550006"}
    greeting = signed_post(server, placed["url"], {**form, "AnsweredBy": "human"})
    gather = ET.fromstring(greeting.text).find("Gather")  # noqa: S314 (our own server's TwiML)
    assert gather is not None
    return created.json()["challenge_code"], str(gather.get("action")), form


def press_all_at_once(server: str, url: str, form: dict[str, str]) -> list[requests.Response]:
    """Send SUBMISSIONS identical key presses as close together as threads allow."""
    barrier = threading.Barrier(SUBMISSIONS)
    responses: list[Any] = [None] * SUBMISSIONS

    def press(i: int) -> None:
        barrier.wait()
        responses[i] = signed_post(server, url, form)

    threads = [threading.Thread(target=press, args=(i,)) for i in range(SUBMISSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses


def test_twenty_concurrent_right_codes_disclose_exactly_once(
    server: str, redis_client: redis.Redis
) -> None:
    code, action, form = start_and_answer(server, redis_client)
    responses = press_all_at_once(server, action, {**form, "Digits": code})
    assert all(r.status_code == 200 for r in responses)
    readings = [spellings(ET.fromstring(r.text)) for r in responses]  # noqa: S314
    disclosed = [s for s in readings if s]
    assert disclosed == [[CODEWORD_SPOKEN_EN, CODEWORD_SPOKEN_EN]]
    assert all(CODEWORD not in r.text for r in responses)

    events = requests.get(
        f"{server}/api/v1/practices/p-1/disclosures", headers=SUPPORT, timeout=10
    ).json()["events"]
    assert [e["outcome"] for e in events if e["channel"] == "voice"] == ["disclosed"]


def test_twenty_concurrent_wrong_codes_count_as_three_and_lock(
    server: str, redis_client: redis.Redis
) -> None:
    code, action, form = start_and_answer(server, redis_client)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    responses = press_all_at_once(server, action, {**form, "Digits": wrong})
    said = [r.text for r in responses]
    assert sum("not correct. You have" in text for text in said) == 2
    assert sum("now locked" in text for text in said) == 1

    # Locked means locked: the right code now reads nothing.
    late = signed_post(server, action, {**form, "Digits": code})
    assert spellings(ET.fromstring(late.text)) == []  # noqa: S314
