"""Errors that tell the caller what to do next."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.helpers import ADMIN, SUPPORT


def test_a_missing_or_wrong_token_is_told_the_bearer_scheme(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eA=="}):
        response = client.get("/api/v1/practices/p-1", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json["error"]["code"] == "unauthorized"


def test_a_wrong_scope_is_403_without_a_challenge(client: FlaskClient) -> None:
    response = client.get("/api/v1/practices/p-1", headers=SUPPORT)
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers


def test_a_method_an_endpoint_does_not_take_is_405_with_allow_and_a_json_body(
    client: FlaskClient,
) -> None:
    response = client.delete("/api/v1/verification-calls", headers=SUPPORT)
    assert response.status_code == 405
    assert response.headers["Allow"].split(", ") == ["OPTIONS", "POST"]
    assert response.json == {
        "error": {"code": "method_not_allowed", "message": "this endpoint takes only OPTIONS, POST"}
    }
    practice = client.post("/api/v1/practices/p-1", headers=ADMIN, json={})
    assert practice.status_code == 405
    assert set(practice.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "PUT"}
    webhook = client.get("/sms/inbound")
    assert webhook.status_code == 405
    assert webhook.headers["Allow"] == "OPTIONS, POST"


def test_json_sent_without_its_content_type_is_told_to_send_it(client: FlaskClient) -> None:
    body = '{"name": "Bright Smiles", "office_number": "202-555-0100"}'
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = {**ADMIN, **({"Content-Type": content_type} if content_type else {})}
        response = client.put("/api/v1/practices/p-1", data=body, headers=headers)
        assert response.status_code == 422
        assert response.json["error"]["message"] == (
            "send the body as JSON, with the header Content-Type: application/json"
        )
    sent_right = client.put(
        "/api/v1/practices/p-1", data=body, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert sent_right.status_code == 201
    not_an_object = client.put("/api/v1/practices/p-1", json=[1], headers=ADMIN)
    assert not_an_object.json["error"]["message"] == "the body must be a JSON object"
