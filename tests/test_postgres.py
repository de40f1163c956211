"""The directory on PostgreSQL, as in production: the admin API end to end."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import text

from devservers.postgres_server import postgres_available, postgres_server
from store.directory import Sender
from tests.helpers import ADMIN, put_practice, put_user

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_app(make_app: Callable[..., Flask], postgres_url: str) -> Iterator[Flask]:
    app = make_app(DATABASE_URL=postgres_url)
    yield app
    with app.extensions["directory"].engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events, users, practices, opt_outs CASCADE"))
    app.extensions["directory"].engine.dispose()


def test_the_admin_api_works_on_postgresql(pg_app: Flask) -> None:
    client = pg_app.test_client()
    assert put_practice(client, codeword="maple-otter-47").status_code == 201
    assert (
        put_user(client, cell_number="+12025550111", cell_number_verified=True).status_code == 201
    )
    practice = client.get("/api/v1/practices/p-1", headers=ADMIN).get_json()
    assert practice["users"][0]["cell_number"] == "+12025550111"
    assert client.get("/api/v1/practices/p-1/codeword", headers=ADMIN).get_json() == {
        "codeword": "maple-otter-47"
    }
    events = client.get("/api/v1/practices/p-1/disclosures", headers=ADMIN).get_json()["events"]
    assert [e["outcome"] for e in events] == [
        "disclosed",
        "admin_added",
        "cell_number_verified",
        "cell_number_set",
        "changed",
        "office_number_set",
    ]
    assert events[0]["at"].endswith("+00:00")
    assert client.delete("/api/v1/practices/p-1/users/u-1", headers=ADMIN).status_code == 204


def test_the_codeword_is_encrypted_in_postgresql(pg_app: Flask) -> None:
    put_practice(pg_app.test_client(), codeword="maple-otter-47")
    with pg_app.extensions["directory"].engine.connect() as conn:
        stored = conn.execute(text("SELECT codeword_encrypted FROM practices")).scalar_one()
    assert b"maple" not in bytes(stored)


def test_the_admins_told_of_a_disclosure_are_found_on_postgresql(pg_app: Flask) -> None:
    """Admins with a verified cell not opted out; no staff, no unverified cell, no opt-out."""
    client = pg_app.test_client()
    put_practice(client)
    users = [
        ("u-1", "admin", "+12025550111", True),
        ("u-2", "admin", "+12025550112", True),
        ("u-3", "staff", "+12025550122", True),
        ("u-4", "admin", "+12025550133", False),
        ("u-5", "admin", "+12025550144", True),
    ]
    for user_id, role, cell, verified in users:
        put_user(client, "p-1", user_id, role=role, cell_number=cell, cell_number_verified=verified)
    store = pg_app.extensions["directory"]
    store.opt_out("+12025550144")
    assert [u.id for u in store.admins_to_notify("p-1")] == ["u-1", "u-2"]


def test_readiness_reports_a_stopped_database(
    make_app: Callable[..., Flask],
) -> None:
    """With PostgreSQL gone, /readyz says so at once and the API answers 503."""
    with postgres_server() as url:
        app = make_app(DATABASE_URL=url)
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.get_json()["checks"]["database"] == "unavailable"
    response = client.get("/api/v1/practices/p-1", headers=ADMIN)
    assert response.status_code == 503
    assert response.headers["Retry-After"]


def test_an_inbound_sender_is_screened_in_one_statement_on_postgresql(pg_app: Flask) -> None:
    """Opted out, and an admin's verified cell: both answers from one query, as on SQLite."""
    client = pg_app.test_client()
    put_practice(client)
    put_user(client, cell_number="+12025550111", cell_number_verified=True)
    put_user(client, user_id="u-2", cell_number="+12025550122", cell_number_verified=False)
    store = pg_app.extensions["directory"]
    store.opt_out("+12025550133")
    assert store.sender("+12025550111") == Sender(opted_out=False, admin_cell=True)
    assert store.sender("+12025550122") == Sender(opted_out=False, admin_cell=False)
    assert store.sender("+12025550133") == Sender(opted_out=True, admin_cell=False)
    store.opt_out("+12025550111")
    assert store.sender("+12025550111") == Sender(opted_out=True, admin_cell=True)


def test_the_console_search_and_its_indexes_work_on_postgresql(pg_app: Flask) -> None:
    directory = pg_app.extensions["directory"]
    directory.create_all()  # a second time: the indexes exist already
    for practice_id, name in (("p-1", "Bright Smiles Dental"), ("p-2", "100% Smiles_Care")):
        directory.put_practice(practice_id, name=name, office_number="+12025550100")
    found = [p.id for p in directory.search_practices("SMILES", "+12025550100")]
    assert found == ["p-2", "p-1"]
    assert [p.id for p in directory.search_practices("s_c")] == ["p-2"]
    assert [p.id for p in directory.search_practices("0%")] == ["p-2"]
    assert directory.search_practices("%s") == []
    with directory.engine.connect() as conn:
        indexes = set(conn.execute(text("SELECT indexname FROM pg_indexes")).scalars())
    assert {"ix_practices_office_number", "ix_practices_name_lower"} <= indexes
