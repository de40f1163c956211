"""Forged webhooks are refused before their form is parsed; logs and keys cannot be confused."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.formparser import FormDataParser

from core.observability import JsonFormatter
from core.webhooks import WEBHOOK_MAX_BYTES, WEBHOOK_MAX_FIELDS
from tests.helpers import PUBLIC_BASE_URL, post_signed, twilio_signature
from tests.voice import setup_practice

# The forged webhook of the report: 64 KB in 16k fields.
FORGED = "&".join(f"f{i}=" for i in range(16_000)).encode()[: 64 * 1024]
WELL_FORMED_BUT_WRONG = "A" * 27 + "="


@pytest.fixture
def parsed_forms(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many request forms werkzeug parsed (one entry each)."""
    parsed: list[int] = []
    original = FormDataParser.parse

    def counting(self: FormDataParser, *args: Any, **kwargs: Any) -> Any:
        parsed.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FormDataParser, "parse", counting)
    return parsed


def post_raw(client: FlaskClient, path: str, body: bytes, signature: str | None) -> Any:
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    return client.post(
        path, data=body, content_type="application/x-www-form-urlencoded", headers=headers
    )


@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status", "/ivr/inbound"])
@pytest.mark.parametrize("signature", [None, "", "not-a-signature", "A" * 28, "A" * 40 + "="])
def test_a_webhook_without_a_well_formed_signature_is_403_unparsed(
    client: FlaskClient, parsed_forms: list[int], path: str, signature: str | None
) -> None:
    response = post_raw(client, path, FORGED, signature)
    assert response.status_code == 403
    assert parsed_forms == []


@pytest.mark.parametrize("path", ["/sms/inbound", "/ivr/inbound"])
def test_a_forged_webhook_larger_than_any_of_twilios_is_413_unparsed(
    client: FlaskClient, parsed_forms: list[int], path: str
) -> None:
    response = post_raw(client, path, FORGED, WELL_FORMED_BUT_WRONG)
    assert response.status_code == 413
    assert parsed_forms == []


def test_a_webhook_with_more_fields_than_twilio_sends_is_413_unparsed(
    client: FlaskClient, parsed_forms: list[int]
) -> None:
    form = {f"f{i}": "" for i in range(WEBHOOK_MAX_FIELDS + 1)}
    response = post_signed(client, "/sms/inbound", form)
    assert response.status_code == 413
    assert parsed_forms == []


def test_a_chunked_webhook_body_is_bounded_too(client: FlaskClient) -> None:
    import io

    body = b"Body=" + b"9" * WEBHOOK_MAX_BYTES
    response = client.post(
        "/sms/inbound",
        input_stream=io.BytesIO(body),
        headers={
            "X-Twilio-Signature": WELL_FORMED_BUT_WRONG,
            "Transfer-Encoding": "chunked",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413


def test_the_largest_text_twilio_delivers_is_still_answered(client: FlaskClient) -> None:
    """1600 characters of a non-Latin script and ten media URLs: about 17 KB, and signed."""
    form = {
        "MessageSid": "MM" + "1" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": "+12025550199",
        "To": "+15005550006",
        "Body": "\u6c49" * 1600,
        "NumMedia": "10",
        **{
            f"MediaUrl{i}": f"https://api.twilio.com/2010-04-01/Accounts/AC{'0' * 32}/Messages/"
            f"MM{'1' * 32}/Media/ME{str(i) * 32}"
            for i in range(10)
        },
        **{f"MediaContentType{i}": "image/jpeg" for i in range(10)},
    }
    response = post_signed(client, "/sms/inbound", form)
    assert response.status_code == 200


def test_a_well_signed_webhook_is_parsed_once(client: FlaskClient, parsed_forms: list[int]) -> None:
    assert post_signed(client, "/ivr/inbound", {"CallSid": "CA" + "1" * 32}).status_code == 200
    assert parsed_forms == [1]


# Log lines ----------------------------------------------------------------------------


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x1c", "\x0b", "\r", "\n"])
def test_a_log_line_stays_one_line_whatever_it_quotes(separator: str) -> None:
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "path %s", (f"/sms/x{separator}y",), None
    )
    line = JsonFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert separator not in line
    assert json.loads(line)["msg"] == f"path /sms/x{separator}y"


def test_a_request_path_with_a_line_separator_is_logged_on_one_line(
    client: FlaskClient, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    client.get("/sms/inbound%E2%80%A8%C2%85forged")
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["path"] == "/sms/inbound\u2028\u0085forged"


# Idempotency keys ---------------------------------------------------------------------


def test_idempotency_keys_of_token_names_with_colons_do_not_collide(
    make_app: Callable[..., Flask],
) -> None:
    """Token "a:b" with key "c" and token "a" with key "b:c" are two requests."""
    app = make_app(SUPPORT_TOKENS="a:b=token-with-colon-000001,a=token-without-colon-01")
    client = app.test_client()
    setup_practice(client, "p-1")
    setup_practice(client, "p-2")
    first = client.post(
        "/api/v1/verification-calls",
        json={"practice_id": "p-1", "requested_by": "Dana"},
        headers={"Authorization": "Bearer token-with-colon-000001", "Idempotency-Key": "c"},
    )
    second = client.post(
        "/api/v1/verification-calls",
        json={"practice_id": "p-2", "requested_by": "Dana"},
        headers={"Authorization": "Bearer token-without-colon-01", "Idempotency-Key": "b:c"},
    )
    assert first.status_code == 201
    assert second.status_code == 201, second.get_json()
    assert "Idempotent-Replayed" not in second.headers
    assert second.get_json()["id"] != first.get_json()["id"]
    assert len(app.extensions["carrier"].recorded("calls")) == 2


def test_signed_webhooks_still_pass_behind_the_public_origin(client: FlaskClient) -> None:
    form = {"CallSid": "CA" + "2" * 32, "From": "+12025550100"}
    signature = twilio_signature(PUBLIC_BASE_URL + "/ivr/inbound", form)
    response = client.post("/ivr/inbound", data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
