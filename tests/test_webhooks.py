"""One answer to "is this a Twilio webhook?": every view under ``twilio_webhook``, wherever it is."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
import redis
from flask import Blueprint, Flask, Response

from core.errors import Conflict
from core.twiml import APOLOGY
from core.webhooks import is_twilio_webhook, speak_to_caller_in, twilio_webhook
from store.errors import NotInDirectory
from tests.helpers import post_signed
from tests.voice import hangs_up, said

FAILURES: dict[str, Callable[[], Exception]] = {
    "service": lambda: Conflict("refused"),
    "not-in-directory": lambda: NotInDirectory("no such practice"),
    "redis": lambda: redis.ConnectionError("down"),
    "unexpected": lambda: ValueError("a bug"),
}
# How a route that is no webhook answers each.
STATUS = {"service": 409, "not-in-directory": 404, "redis": 503, "unexpected": 500}


@pytest.fixture
def app_with_hooks(make_app: Callable[..., Flask]) -> Flask:
    """The app plus, in a blueprint of its own, a signed webhook and a plain route that fail."""
    app = make_app()
    bp = Blueprint("hooks", __name__, url_prefix="/hooks")

    @bp.post("/voice/<failure>")
    @twilio_webhook
    def voice(failure: str) -> Response:
        speak_to_caller_in("es")
        raise FAILURES[failure]()

    @bp.post("/plain/<failure>")
    def plain(failure: str) -> Response:
        raise FAILURES[failure]()

    @bp.post("/ask")
    @twilio_webhook
    def ask() -> Response:
        return Response(str(is_twilio_webhook()))

    app.register_blueprint(bp)
    return app


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failing_webhook_in_any_blueprint_apologises_in_the_callers_language(
    app_with_hooks: Flask, failure: str
) -> None:
    response = post_signed(app_with_hooks.test_client(), f"/hooks/voice/{failure}", {})

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    document = ET.fromstring(response.get_data())  # noqa: S314 - our own TwiML
    assert said(document) == APOLOGY["es"]
    assert hangs_up(document)


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failing_route_that_is_no_webhook_answers_json(
    app_with_hooks: Flask, failure: str
) -> None:
    response = app_with_hooks.test_client().post(f"/hooks/plain/{failure}")

    assert response.status_code == STATUS[failure]
    assert response.get_json()["error"]["code"]


def test_an_unsigned_request_to_a_webhook_is_an_empty_403(app_with_hooks: Flask) -> None:
    response = app_with_hooks.test_client().post("/hooks/voice/service")

    assert response.status_code == 403
    assert response.get_data() == b""


def test_a_signed_webhook_knows_it_is_one(app_with_hooks: Flask) -> None:
    assert post_signed(app_with_hooks.test_client(), "/hooks/ask", {}).get_data() == b"True"


def test_the_service_webhooks_are_twilio_webhooks_and_the_apis_are_not(app: Flask) -> None:
    webhooks = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<practice_id>", "p-1").replace("<user_id>", "u-1")
        for method in sorted(rule.methods or ()):
            with app.test_request_context(path.replace("<", "").replace(">", ""), method=method):
                if is_twilio_webhook():
                    webhooks.add(rule.rule)

    assert webhooks == {
        "/ivr/inbound",
        "/ivr/verification/answer",
        "/ivr/verification/code",
        "/ivr/verification/repeat",
        "/ivr/verification/status",
        "/sms/inbound",
        "/sms/status",
    }
