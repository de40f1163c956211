"""Every Twilio webhook checks X-Twilio-Signature against PUBLIC_BASE_URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN, post_signed, twilio_signature

FORM = {"CallSid": "CA" + "1" * 32, "From": "+12025550100", "To": "+15005550006"}


def test_a_correctly_signed_webhook_is_answered(client: FlaskClient) -> None:
    response = post_signed(client, "/ivr/inbound", FORM)
    assert response.status_code == 200
    assert response.mimetype == "text/xml"


def test_a_webhook_without_a_signature_is_refused(client: FlaskClient) -> None:
    response = client.post("/ivr/inbound", data=FORM)
    assert response.status_code == 403
    assert b"Say" not in response.data


def test_a_tampered_form_is_refused(client: FlaskClient) -> None:
    signature = twilio_signature(PUBLIC_BASE_URL + "/ivr/inbound", FORM)
    tampered = {**FORM, "From": "+12025550199"}
    response = client.post("/ivr/inbound", data=tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


def test_an_added_field_is_refused(client: FlaskClient) -> None:
    signature = twilio_signature(PUBLIC_BASE_URL + "/ivr/inbound", FORM)
    response = client.post(
        "/ivr/inbound", data={**FORM, "Digits": "1"}, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403


def test_a_signature_under_another_token_is_refused(client: FlaskClient) -> None:
    response = post_signed(client, "/ivr/inbound", FORM, token="someone-elses-token")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "signed_for",
    [
        "https://evil.example.com",  # another host
        "http://codeword.example.com",  # another scheme
        "https://codeword.example.com:8443",  # another port
    ],
)
def test_a_signature_for_another_origin_is_refused(client: FlaskClient, signed_for: str) -> None:
    response = post_signed(client, "/ivr/inbound", FORM, base_url=signed_for)
    assert response.status_code == 403


def test_a_signature_over_the_url_with_its_default_port_is_accepted(client: FlaskClient) -> None:
    """Twilio may sign https://host:443/...: the validator's check with and without the port."""
    assert PUBLIC_BASE_URL == "https://codeword.example.com"
    response = post_signed(client, "/ivr/inbound", FORM, base_url=PUBLIC_BASE_URL + ":443")
    assert response.status_code == 200
    wrong = post_signed(client, "/ivr/inbound", FORM, base_url=PUBLIC_BASE_URL + ":80")
    assert wrong.status_code == 403


def test_the_query_string_is_part_of_what_is_signed(client: FlaskClient) -> None:
    signature = twilio_signature(PUBLIC_BASE_URL + "/ivr/inbound?step=1", FORM)
    ok = client.post("/ivr/inbound?step=1", data=FORM, headers={"X-Twilio-Signature": signature})
    assert ok.status_code == 200
    moved = client.post("/ivr/inbound?step=2", data=FORM, headers={"X-Twilio-Signature": signature})
    assert moved.status_code == 403


def test_behind_a_proxy_the_public_url_counts_not_the_local_one(client: FlaskClient) -> None:
    """Twilio signs https://public-host/...; we are reached as http://127.0.0.1:8000/..."""
    local = twilio_signature("http://localhost/ivr/inbound", FORM)
    assert (
        client.post("/ivr/inbound", data=FORM, headers={"X-Twilio-Signature": local}).status_code
        == 403
    )
    public = twilio_signature(PUBLIC_BASE_URL + "/ivr/inbound", FORM)
    response = client.post(
        "/ivr/inbound",
        data=FORM,
        base_url="http://127.0.0.1:8000",
        headers={
            "X-Twilio-Signature": public,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "codeword.example.com",
        },
    )
    assert response.status_code == 200


def test_with_no_auth_token_configured_every_webhook_is_refused(
    make_app: Callable[..., Flask],
) -> None:
    """Fail closed: an empty token cannot validate anything, not even an empty signature."""
    app = make_app(TWILIO_AUTH_TOKEN="")
    app.config["TWILIO_AUTH_TOKEN"] = None
    client = app.test_client()
    response = post_signed(client, "/ivr/inbound", FORM, token="")
    assert response.status_code == 403
    assert client.post("/ivr/inbound", data=FORM).status_code == 403


def test_the_signing_helper_is_twilios_documented_algorithm() -> None:
    """HMAC-SHA1 over the URL then each sorted name+value, base64: what Twilio sends."""
    url = "https://example.com/myapp?foo=1&bar=2"
    params = {"To": "+18005551212", "CallSid": "CA123", "Digits": "1234"}
    payload = url + "CallSidCA123" + "Digits1234" + "To+18005551212"
    expected = base64.b64encode(
        hmac.new(TWILIO_AUTH_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()
    assert twilio_signature(url, params) == expected


def test_a_field_sent_twice_is_checked_with_every_value(client: FlaskClient) -> None:
    """Twilio signs each value of a repeated field; dropping one breaks the signature."""
    form = {**{name: [value] for name, value in FORM.items()}, "Tag": ["b", "a"]}
    signed = "".join(name + value for name in sorted(form) for value in sorted(form[name]))
    digest = hmac.new(
        TWILIO_AUTH_TOKEN.encode(),
        (PUBLIC_BASE_URL + "/ivr/inbound" + signed).encode(),
        hashlib.sha1,
    ).digest()
    headers = {"X-Twilio-Signature": base64.b64encode(digest).decode()}
    assert client.post("/ivr/inbound", data=form, headers=headers).status_code == 200
    one_value = {**form, "Tag": ["a"]}
    assert client.post("/ivr/inbound", data=one_value, headers=headers).status_code == 403
