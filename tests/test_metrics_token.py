"""/metrics answers only the operator's scraper, with METRICS_TOKEN; 404 while none is set."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import ADMIN, METRICS, METRICS_TOKEN, SUPPORT


def test_metrics_answer_the_metrics_token(client: FlaskClient) -> None:
    response = client.get("/metrics", headers=METRICS)
    assert response.status_code == 200
    assert b"codeword_disclosures_total" in response.data


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        ADMIN,
        SUPPORT,
    ],
)
def test_metrics_without_the_token_are_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert b"codeword_" not in response.data


def test_metrics_are_404_while_no_token_is_set(make_app: Callable[..., Flask]) -> None:
    client = make_app(METRICS_TOKEN=None).test_client()
    for headers in ({}, METRICS, {"Authorization": "Bearer "}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"
