"""The admin API: the main application keeps practices, users and the codeword in sync."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import ADMIN, SUPPORT, put_practice, put_user


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_json()["error"]["code"]


# Authentication and scopes ------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ],
)
def test_requests_without_a_valid_token_get_401(client: FlaskClient, headers: dict) -> None:
    response = client.get("/api/v1/practices/p-1", headers=headers)
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


def test_a_support_token_cannot_use_the_admin_api(client: FlaskClient) -> None:
    put_practice(client)
    response = client.get("/api/v1/practices/p-1/codeword", headers=SUPPORT)
    assert response.status_code == 403
    assert error_code(response) == "forbidden"


def test_support_may_read_the_disclosure_trail(client: FlaskClient) -> None:
    put_practice(client)
    assert client.get("/api/v1/practices/p-1/disclosures", headers=SUPPORT).status_code == 200


# Practices ----------------------------------------------------------------------------


def test_putting_a_new_practice_creates_it_with_an_e164_number(client: FlaskClient) -> None:
    response = put_practice(client, language="es")
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"] == "p-1"
    assert body["office_number"] == "+12025550100"
    assert body["office_number_verified"] is False
    assert body["language"] == "es"
    assert body["users"] == []


def test_putting_an_existing_practice_updates_it(client: FlaskClient) -> None:
    put_practice(client)
    response = put_practice(client, name="Brighter Smiles")
    assert response.status_code == 200
    assert response.get_json()["name"] == "Brighter Smiles"


def test_a_changed_office_number_becomes_unverified(client: FlaskClient) -> None:
    put_practice(client, office_number_verified=True)
    same = put_practice(client).get_json()
    assert same["office_number_verified"] is True
    changed = put_practice(client, office_number="+1 202 555 0199").get_json()
    assert changed["office_number"] == "+12025550199"
    assert changed["office_number_verified"] is False


def test_a_changed_office_number_stays_verified_when_the_request_says_so(
    client: FlaskClient,
) -> None:
    put_practice(client, office_number_verified=True)
    body = put_practice(client, office_number="+12025550199", office_number_verified=True)
    assert body.get_json()["office_number_verified"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"office_number": "+12025550100"}, "name"),
        ({"name": "X"}, "office_number"),
        ({"name": "X", "office_number": "not a number"}, "office_number"),
        ({"name": "X", "office_number": "+442079460958"}, "office_number"),
        ({"name": "X", "office_number": 2025550100}, "office_number"),
        ({"name": "", "office_number": "+12025550100"}, "name"),
        ({"name": "X" * 300, "office_number": "+12025550100"}, "name"),
        ({"name": "X", "office_number": "+12025550100", "language": "fr"}, "language"),
        (
            {"name": "X", "office_number": "+12025550100", "office_number_verified": "yes"},
            "office_number_verified",
        ),
        ({"name": "X", "office_number": "+12025550100", "codeword": "ab"}, "codeword"),
        ({"name": "X", "office_number": "+12025550100", "codeword": 12345}, "codeword"),
    ],
)
def test_bad_practice_fields_get_422_naming_the_field(
    client: FlaskClient, body: dict, field: str
) -> None:
    response = client.put("/api/v1/practices/p-1", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


@pytest.mark.parametrize("data", ["not json", "[1, 2]", "null", '"text"'])
def test_a_body_that_is_not_a_json_object_gets_422(client: FlaskClient, data: str) -> None:
    response = client.put(
        "/api/v1/practices/p-1", data=data, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert error_code(response) == "invalid_input"


def test_a_bad_practice_id_gets_422(client: FlaskClient) -> None:
    response = put_practice(client, practice_id="bad id!")
    assert response.status_code == 422


def test_an_oversized_body_is_refused_with_json(client: FlaskClient) -> None:
    response = client.put(
        "/api/v1/practices/p-1",
        json={"name": "x" * 100_000, "office_number": "+12025550100"},
        headers=ADMIN,
    )
    assert response.status_code == 413
    assert error_code(response) == "too_large"


def test_an_unknown_practice_is_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/practices/nope", headers=ADMIN)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_an_unknown_route_answers_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here", headers=ADMIN)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


# Users --------------------------------------------------------------------------------


def test_users_are_created_updated_listed_and_deleted(client: FlaskClient) -> None:
    put_practice(client)
    created = put_user(client, cell_number="202.555.0111", cell_number_verified=True)
    assert created.status_code == 201
    assert created.get_json() == {
        "id": "u-1",
        "name": "Dana",
        "role": "admin",
        "cell_number": "+12025550111",
        "cell_number_verified": True,
    }
    updated = put_user(client, role="staff")
    assert updated.status_code == 200
    # Not mentioning the cell keeps it, and keeps it verified.
    assert updated.get_json()["cell_number"] == "+12025550111"
    assert updated.get_json()["cell_number_verified"] is True
    users = client.get("/api/v1/practices/p-1", headers=ADMIN).get_json()["users"]
    assert [u["id"] for u in users] == ["u-1"]
    assert client.delete("/api/v1/practices/p-1/users/u-1", headers=ADMIN).status_code == 204
    assert client.delete("/api/v1/practices/p-1/users/u-1", headers=ADMIN).status_code == 404
    assert client.get("/api/v1/practices/p-1", headers=ADMIN).get_json()["users"] == []


def test_a_changed_cell_becomes_unverified_and_null_removes_it(client: FlaskClient) -> None:
    put_practice(client)
    put_user(client, cell_number="+12025550111", cell_number_verified=True)
    changed = put_user(client, cell_number="+12025550122").get_json()
    assert changed["cell_number_verified"] is False
    removed = put_user(client, cell_number=None, cell_number_verified=True).get_json()
    assert removed["cell_number"] is None
    assert removed["cell_number_verified"] is False


def test_a_user_of_an_unknown_practice_is_404(client: FlaskClient) -> None:
    assert put_user(client, practice_id="nope").status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"role": "owner"}, "role"),
        ({"name": None}, "name"),
        ({"cell_number": "+33142685300"}, "cell_number"),
        ({"cell_number_verified": 1}, "cell_number_verified"),
    ],
)
def test_bad_user_fields_get_422(client: FlaskClient, fields: dict, field: str) -> None:
    put_practice(client)
    response = put_user(client, **fields)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == field


# The codeword -------------------------------------------------------------------------


def test_the_codeword_is_set_read_and_never_shown_elsewhere(client: FlaskClient) -> None:
    put_practice(client, codeword="maple-otter-47")
    put_user(client, cell_number="+12025550111", cell_number_verified=True)
    read = client.get("/api/v1/practices/p-1/codeword", headers=ADMIN)
    assert read.get_json() == {"codeword": "maple-otter-47"}
    for response in (
        put_practice(client),
        client.get("/api/v1/practices/p-1", headers=ADMIN),
        put_user(client),
        client.get("/api/v1/practices/p-1/disclosures", headers=ADMIN),
    ):
        assert b"maple-otter-47" not in response.data
    assert client.get("/api/v1/practices/p-1", headers=ADMIN).get_json()["has_codeword"] is True


def test_reading_the_codeword_is_recorded_as_an_app_disclosure(client: FlaskClient) -> None:
    put_practice(client, codeword="maple-otter-47")
    client.get("/api/v1/practices/p-1/codeword", headers=ADMIN)
    events = client.get("/api/v1/practices/p-1/disclosures", headers=ADMIN).get_json()["events"]
    assert events[0]["channel"] == "app"
    assert events[0]["outcome"] == "disclosed"
    assert events[0]["actor"] == "mainapp"
    assert {"at", "channel", "to", "actor", "outcome"} <= events[0].keys()


def test_disclosures_are_listed_newest_first(client: FlaskClient) -> None:
    put_practice(client)
    client.post("/api/v1/practices/p-1/codeword", headers=ADMIN)
    client.get("/api/v1/practices/p-1/codeword", headers=ADMIN)
    events = client.get("/api/v1/practices/p-1/disclosures", headers=ADMIN).get_json()["events"]
    assert [e["outcome"] for e in events] == ["disclosed", "generated", "office_number_set"]


def test_a_practice_without_a_codeword_has_none_to_read(client: FlaskClient) -> None:
    put_practice(client)
    response = client.get("/api/v1/practices/p-1/codeword", headers=ADMIN)
    assert response.status_code == 404
    assert error_code(response) == "no_codeword"


def test_posting_a_codeword_sets_it(client: FlaskClient) -> None:
    put_practice(client)
    response = client.post(
        "/api/v1/practices/p-1/codeword", json={"codeword": "river-tiger-58"}, headers=ADMIN
    )
    assert response.get_json() == {"codeword": "river-tiger-58"}
    read = client.get("/api/v1/practices/p-1/codeword", headers=ADMIN).get_json()
    assert read == {"codeword": "river-tiger-58"}


def test_posting_no_codeword_generates_an_easy_to_say_one(client: FlaskClient) -> None:
    put_practice(client)
    seen = set()
    for _ in range(5):
        codeword = client.post("/api/v1/practices/p-1/codeword", headers=ADMIN).get_json()[
            "codeword"
        ]
        first, second, digits = codeword.split("-")
        assert first.isalpha() and second.isalpha() and first != second
        assert len(digits) == 2 and not set(digits) & {"0", "1"}
        seen.add(codeword)
    assert len(seen) > 1


def test_the_codeword_of_an_unknown_practice_is_404(client: FlaskClient) -> None:
    assert client.post("/api/v1/practices/nope/codeword", headers=ADMIN).status_code == 404
    assert client.get("/api/v1/practices/nope/codeword", headers=ADMIN).status_code == 404


def test_the_codeword_is_encrypted_at_rest(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    """The codeword's bytes appear nowhere in the SQLite file."""
    put_practice(client, codeword="jasper-walnut-93")
    client.post(
        "/api/v1/practices/p-1/codeword", json={"codeword": "jasper-walnut-93"}, headers=ADMIN
    )
    app.extensions["directory"].engine.dispose()
    files = list(tmp_path.glob("directory.sqlite3*"))
    assert files
    for path in files:
        assert b"jasper-walnut-93" not in path.read_bytes()
        assert b"jasper" not in path.read_bytes()
