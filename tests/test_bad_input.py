"""Bad input is a 4xx, never a 500: deep JSON, near-miss ids, chunked bodies, costly numbers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from devservers.gunicorn_server import gunicorn_server
from store.numbers import InvalidNumber, normalise
from tests.gunicorn_flows import production_env
from tests.helpers import ADMIN, SUPPORT, put_practice, put_user
from tests.voice import setup_practice

DEEP = "[" * 1000 + "]" * 1000
# Every operation that reads a JSON body, with the token it needs.
JSON_ENDPOINTS = [
    ("PUT", "/api/v1/practices/p-1", ADMIN),
    ("PUT", "/api/v1/practices/p-1/users/u-1", ADMIN),
    ("POST", "/api/v1/practices/p-1/codeword", ADMIN),
    ("POST", "/api/v1/practices/p-1/office-number/verification", ADMIN),
    ("POST", "/api/v1/practices/p-1/users/u-1/cell-verification/check", ADMIN),
    ("POST", "/api/v1/verification-calls", SUPPORT),
    ("POST", "/api/v1/codeword-texts", SUPPORT),
]
# Premium-rate, personal (500), and the like: calls and texts to them cost money.
COSTLY_NUMBERS = ["+1 900 234 5678", "(900) 555-0100", "+1 500 234 5678", "+1 533 234 5678"]


@pytest.fixture
def practice(client: FlaskClient) -> None:
    setup_practice(client)
    put_user(client, cell_number="+12025550111")


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize(("method", "path", "token"), JSON_ENDPOINTS)
def test_deeply_nested_json_is_422(
    client: FlaskClient, method: str, path: str, token: dict[str, str]
) -> None:
    response = client.open(
        path, method=method, data=DEEP, content_type="application/json", headers=token
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_input"


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/practices/p-1%0A"),
        ("PUT", "/api/v1/practices/p-2%0A"),
        ("GET", "/api/v1/practices/p-1/codeword%0A"),
        ("GET", "/api/v1/practices/p-1%0A/codeword"),
        ("DELETE", "/api/v1/practices/p-1/users/u-1%0A"),
        ("PUT", "/api/v1/practices/p-1/users/u-2%0A"),
        ("POST", "/api/v1/practices/p-1%0A/office-number/verification"),
        ("GET", "/api/v1/practices/p-1/office-number/verification/VC1%0A"),
        ("GET", "/api/v1/verification-calls/VC1%0A"),
        ("GET", "/api/v1/practices/p-1%0A/disclosures"),
    ],
)
def test_an_identifier_with_a_trailing_newline_is_422(
    client: FlaskClient, method: str, path: str
) -> None:
    body = {"name": "Bright Smiles", "office_number": "(202) 555-0100", "role": "admin"}
    token = SUPPORT if "verification-calls" in path else ADMIN
    response = client.open(path, method=method, json=body, headers=token)
    if path.endswith("/codeword%0A"):
        # Not an identifier at all: no route ends in "codeword\n".
        assert response.status_code == 404
        return
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == "invalid_input"
    assert client.application.extensions["carrier"].recorded("calls") == []


@pytest.mark.usefixtures("practice")
@pytest.mark.parametrize("field", ["practice_id", "user_id"])
@pytest.mark.parametrize("value", ["p-1\n", " p-1", "p-1 ", "p\u00e91", "a" * 65, ""])
def test_an_identifier_in_a_body_must_be_exact(client: FlaskClient, field: str, value: str) -> None:
    body = {"practice_id": "p-1", "user_id": "u-1", "requested_by": "Dana", field: value}
    for path in ("/api/v1/verification-calls", "/api/v1/codeword-texts"):
        response = client.post(path, json=body, headers=SUPPORT)
        if field == "user_id" and path == "/api/v1/verification-calls":
            continue
        assert response.status_code == 422, (path, response.get_json())
        assert response.get_json()["error"]["field"] == field


def test_identifiers_take_every_character_the_contract_allows(client: FlaskClient) -> None:
    assert put_practice(client, "-practice.1_a:b").status_code == 201
    response = client.get("/api/v1/practices/-practice.1_a:b", headers=ADMIN)
    assert response.get_json()["id"] == "-practice.1_a:b"


def chunked_post(client: FlaskClient, path: str, body: bytes) -> Any:
    """POST ``body`` as a server that reads chunked bodies hands it on: no Content-Length."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={**ADMIN, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.usefixtures("practice")
def test_a_codeword_sent_chunked_is_the_one_kept(client: FlaskClient) -> None:
    body = json.dumps({"codeword": "Quartz-lemon-93"}).encode()
    response = chunked_post(client, "/api/v1/practices/p-1/codeword", body)
    assert response.status_code == 200
    assert response.get_json() == {"codeword": "Quartz-lemon-93"}


@pytest.mark.usefixtures("practice")
def test_an_empty_chunked_body_still_generates_a_codeword(client: FlaskClient) -> None:
    response = chunked_post(client, "/api/v1/practices/p-1/codeword", b"")
    assert response.status_code == 200
    assert response.get_json()["codeword"] != "Quartz-lemon-93"


def test_a_chunked_codeword_under_gunicorn(tmp_path: Path, redis_url: str) -> None:
    """Through a real server: requests sends a generator's body chunked."""
    env = production_env(redis_url, f"sqlite:///{tmp_path / 'd.sqlite3'}", twilio_url="")
    with gunicorn_server(env) as url:
        created = requests.put(
            f"{url}/api/v1/practices/p-1",
            json={"name": "Bright Smiles", "office_number": "(202) 555-0100"},
            headers=ADMIN,
            timeout=10,
        )
        assert created.status_code == 201
        chosen = requests.post(
            f"{url}/api/v1/practices/p-1/codeword",
            data=iter([b'{"codeword": ', b'"Quartz-lemon-93"}']),
            headers={**ADMIN, "Content-Type": "application/json"},
            timeout=10,
        )
    assert chosen.request.headers.get("Transfer-Encoding") == "chunked"
    assert chosen.status_code == 200
    assert chosen.json() == {"codeword": "Quartz-lemon-93"}


@pytest.mark.parametrize("raw", COSTLY_NUMBERS)
def test_numbers_that_cost_money_are_not_numbers_we_accept(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        normalise(raw, ["US", "CA"])


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+44 70 1234 5678", "GB"),  # personal
        ("+44 76 4012 3456", "GB"),  # pager
        ("+44 843 123 4567", "GB"),  # premium-rate
        ("+44 55 1234 5678", "GB"),  # UAN
        ("+33 8 84 01 23 45", "FR"),  # shared-cost
        ("+49 177 991234567", "DE"),  # voicemail only
    ],
)
def test_personal_pager_shared_cost_uan_and_voicemail_numbers_are_refused_too(
    raw: str, region: str
) -> None:
    """Kinds the North American plan lacks, in a country that has them."""
    with pytest.raises(InvalidNumber):
        normalise(raw, [region])


@pytest.mark.parametrize("raw", ["+1 800 234 5678", "(202) 555-0100", "+1 416 555 0199"])
def test_ordinary_and_toll_free_numbers_are_accepted(raw: str) -> None:
    assert normalise(raw, ["US", "CA"]).startswith("+1")


@pytest.mark.parametrize("raw", COSTLY_NUMBERS)
def test_a_costly_office_number_is_422(client: FlaskClient, raw: str) -> None:
    response = put_practice(client, office_number=raw)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "office_number"


@pytest.mark.parametrize("raw", COSTLY_NUMBERS)
def test_a_costly_cell_number_is_422(client: FlaskClient, raw: str) -> None:
    put_practice(client)
    response = put_user(client, cell_number=raw)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "cell_number"


def test_an_empty_path_segment_is_404_not_a_redirect(client: FlaskClient) -> None:
    response = client.put("/api/v1/practices//p-1", json={}, headers=ADMIN)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_wrong_method_is_405_naming_the_allowed_ones(client: FlaskClient) -> None:
    response = client.patch("/api/v1/practices/p-1", json={}, headers=ADMIN)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PUT"}
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_a_missing_token_is_401_asking_for_a_bearer_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/practices/p-1")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
