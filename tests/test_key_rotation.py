"""Rotating CODEWORD_KEYS: after `flask rotate-codeword-keys` only the new key is needed."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import Result
from cryptography.fernet import Fernet
from flask import Flask

from devservers.redis_server import RedisProcess
from tests.helpers import ADMIN
from tests.voice import (
    CODEWORD_SPOKEN_EN,
    last_placed_call,
    request_call,
    setup_practice,
    spellings,
)

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
CODEWORDS = ["Maple-otter-47", "cedar-robin-58", "amber-tulip-22"]


def rotate(make_app: Callable[..., Flask]) -> Result:
    app = make_app(CODEWORD_KEYS=f"{NEW},{OLD}")
    result: Result = app.test_cli_runner().invoke(args=["rotate-codeword-keys"])
    assert result.exit_code == 0, result.output
    return result


def test_after_rotation_every_codeword_is_served_with_only_the_new_key(
    make_app: Callable[..., Flask],
) -> None:
    before = make_app(CODEWORD_KEYS=OLD).test_client()
    for n, codeword in enumerate(CODEWORDS):
        setup_practice(before, f"p-{n}", codeword=codeword)
    assert "re-encrypted 3 codeword(s)" in rotate(make_app).output

    after = make_app(CODEWORD_KEYS=NEW).test_client()
    for n, codeword in enumerate(CODEWORDS):
        response = after.get(f"/api/v1/practices/p-{n}/codeword", headers=ADMIN)
        assert response.status_code == 200
        assert response.get_json() == {"codeword": codeword}
    body = request_call(after, "p-0").get_json()
    call = last_placed_call(after)
    call.answer()
    assert spellings(call.press(body["challenge_code"])) == [CODEWORD_SPOKEN_EN] * 2


def test_a_sealed_challenge_code_is_rotated_too(make_app: Callable[..., Flask]) -> None:
    before = make_app(CODEWORD_KEYS=OLD).test_client()
    setup_practice(before)
    key = {"Idempotency-Key": "ticket-1"}
    code = request_call(before, headers=key).get_json()["challenge_code"]
    assert "re-encrypted 1 sealed challenge code(s)" in rotate(make_app).output

    after = make_app(CODEWORD_KEYS=NEW).test_client()
    replayed = request_call(after, headers=key)
    assert replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_json()["challenge_code"] == code


def test_a_code_sealed_under_a_dropped_key_is_withheld_not_an_error(
    make_app: Callable[..., Flask],
) -> None:
    before = make_app(CODEWORD_KEYS=OLD).test_client()
    setup_practice(before)
    key = {"Idempotency-Key": "ticket-1"}
    first = request_call(before, headers=key).get_json()

    after = make_app(CODEWORD_KEYS=f"{NEW},{OLD}").test_client()
    after.application.extensions["directory"].rotate_codewords()
    dropped = make_app(CODEWORD_KEYS=NEW).test_client()
    replayed = request_call(dropped, headers=key)
    assert replayed.status_code == 201
    assert replayed.get_json()["id"] == first["id"]
    assert replayed.get_json()["challenge_code"] is None


def test_rotation_with_redis_down_says_what_is_left_to_do(
    make_app: Callable[..., Flask], redis_process: RedisProcess
) -> None:
    before = make_app(CODEWORD_KEYS=OLD).test_client()
    setup_practice(before)
    app = make_app(CODEWORD_KEYS=f"{NEW},{OLD}")
    redis_process.stop()
    result = app.test_cli_runner().invoke(args=["rotate-codeword-keys"])
    assert result.exit_code != 0
    assert "re-encrypted 1 codeword(s)" in result.output
    assert "run this again" in result.output
    redis_process.start()
    after = make_app(CODEWORD_KEYS=NEW).test_client()
    assert after.get("/api/v1/practices/p-1/codeword", headers=ADMIN).status_code == 200
