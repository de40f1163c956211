"""``flask demo reset`` lets the demo be played again, and touches nothing else."""

from __future__ import annotations

from collections.abc import Callable

import redis
from flask import Flask
from flask.testing import FlaskClient

from core.demo import DEMO_PRACTICE
from store import keys
from tests.faults import inbound_text
from tests.helpers import post_signed
from tests.voice import last_placed_call, request_call, setup_practice, spellings

DEMO_CELL = "+12025550111"


def demo_app(make_app: Callable[..., Flask]) -> Flask:
    """The app with tight limits (one call, one codeword text an hour) and the demo seeded."""
    app = make_app(VERIFICATION_CALLS_PER_PRACTICE="1/hour", SMS_CODEWORD_TEXTS_PER_NUMBER="1/hour")
    seeded = app.test_cli_runner().invoke(args=["seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    return app


def reset(app: Flask) -> str:
    result = app.test_cli_runner().invoke(args=["demo", "reset"])
    assert result.exit_code == 0, result.output
    return str(result.output)


def text_codeword(client: FlaskClient) -> str:
    response = post_signed(client, "/sms/inbound", inbound_text(DEMO_CELL, "CODEWORD"))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_after_a_reset_the_demo_practice_can_be_called_again(
    make_app: Callable[..., Flask],
) -> None:
    app = demo_app(make_app)
    client = app.test_client()
    first = request_call(client, DEMO_PRACTICE)
    assert first.status_code == 201
    # Live, and over the limit: refused either way until the reset.
    assert request_call(client, DEMO_PRACTICE).status_code in (409, 429)
    last_placed_call(client).status("completed")
    assert request_call(client, DEMO_PRACTICE).status_code == 429

    said = reset(app)

    assert "cleared 1 rate-limit window(s)" in said
    again = request_call(client, DEMO_PRACTICE)
    assert again.status_code == 201, again.get_json()


def test_a_reset_frees_a_live_call_and_forgets_its_challenge_code(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = demo_app(make_app)
    client = app.test_client()
    asked = request_call(client, DEMO_PRACTICE, headers={"Idempotency-Key": "demo-1"})
    assert asked.status_code == 201
    call = last_placed_call(client)
    call.answer()

    said = reset(app)

    assert "the live call, 1 call session(s) with their codes" in said
    assert not redis_client.exists(keys.call_session(asked.get_json()["id"]))
    assert not redis_client.exists(keys.live_call(DEMO_PRACTICE))
    # The old call's code opens nothing now; the idempotency key no longer names it.
    assert spellings(call.press(asked.get_json()["challenge_code"])) == []
    assert (
        request_call(client, DEMO_PRACTICE, headers={"Idempotency-Key": "demo-1"}).status_code
        == 201
    )


def test_a_reset_lets_the_demo_admin_text_the_keyword_again(
    make_app: Callable[..., Flask],
) -> None:
    app = demo_app(make_app)
    client = app.test_client()
    carrier = app.extensions["carrier"]
    text_codeword(client)
    assert len(carrier.recorded("messages")) == 1
    text_codeword(client)
    assert len(carrier.recorded("messages")) == 1, "over the limit: no second codeword text"

    reset(app)

    text_codeword(client)
    assert len(carrier.recorded("messages")) == 2
    assert "maple-otter-47" in carrier.recorded("messages")[0]["body"]


def test_a_reset_undoes_a_stop_from_the_demo_admins_cell(make_app: Callable[..., Flask]) -> None:
    app = demo_app(make_app)
    client = app.test_client()
    post_signed(client, "/sms/inbound", inbound_text(DEMO_CELL, "STOP"))
    assert app.extensions["directory"].is_opted_out(DEMO_CELL)

    reset(app)

    assert not app.extensions["directory"].is_opted_out(DEMO_CELL)


def test_a_reset_leaves_other_practices_and_support_tokens_alone(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = demo_app(make_app)
    client = app.test_client()
    setup_practice(client, "p-1")
    assert request_call(client, "p-1").status_code == 201
    before = {k for k in redis_client.scan_iter("*") if "p-1" in k or "helpdesk" in k}
    assert before, "p-1's call left keys"

    reset(app)

    after = {k for k in redis_client.scan_iter("*") if "p-1" in k or "helpdesk" in k}
    assert after == before
    assert keys.live_call("p-1") in after
    assert request_call(client, "p-1").status_code == 429


def test_reset_refuses_to_run_in_production(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = make_app(
        APP_ENV="production",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
    )
    redis_client.set(keys.live_call(DEMO_PRACTICE), "VC1")

    result = app.test_cli_runner().invoke(args=["demo", "reset"])

    assert result.exit_code == 1
    assert "demo reset is for development only" in result.output
    assert redis_client.exists(keys.live_call(DEMO_PRACTICE))


def test_reset_says_plainly_when_there_is_no_demo_practice(make_app: Callable[..., Flask]) -> None:
    result = make_app().test_cli_runner().invoke(args=["demo", "reset"])
    assert result.exit_code == 1
    assert "seed-demo" in result.output
