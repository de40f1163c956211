"""The audit trail records every change that decides where the codeword may go, and pages."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from tests.helpers import ADMIN, SUPPORT, put_practice, put_user
from tests.sms_helpers import ADMIN_CELL, MULTI_ADMIN_CELL, STAFF_CELL, seed
from tests.sms_helpers import text as text_in

Event = tuple[str, str, str | None, str]  # outcome, channel, masked number, actor


def trail(client: FlaskClient, practice_id: str = "p-1", **query: Any) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/practices/{practice_id}/disclosures", query_string=query, headers=ADMIN
    )
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def events(client: FlaskClient, practice_id: str = "p-1") -> list[Event]:
    """The whole trail, oldest first, as (outcome, channel, to, actor); none before the practice."""
    if client.get(f"/api/v1/practices/{practice_id}", headers=ADMIN).status_code == 404:
        return []
    found = trail(client, practice_id, limit=500)["events"]
    return [(e["outcome"], e["channel"], e["to"], e["actor"]) for e in reversed(found)]


def new_events(client: FlaskClient, change: Any, practice_id: str = "p-1") -> list[Event]:
    """The events that ``change()`` added to the trail."""
    before = len(events(client, practice_id))
    change()
    return events(client, practice_id)[before:]


# Office number ------------------------------------------------------------------------


def test_an_office_number_set_changed_vouched_for_and_withdrawn_is_audited(
    client: FlaskClient,
) -> None:
    assert new_events(client, lambda: put_practice(client)) == [
        ("office_number_set", "app", "+1******0100", "mainapp")
    ]
    assert new_events(client, lambda: put_practice(client, office_number_verified=True)) == [
        ("office_number_verified", "app", "+1******0100", "mainapp")
    ]
    assert new_events(client, lambda: put_practice(client, name="Renamed")) == []
    assert new_events(client, lambda: put_practice(client, office_number="+12025550177")) == [
        ("office_number_changed", "app", "+1******0177", "mainapp")
    ]
    vouched = new_events(
        client,
        lambda: put_practice(client, office_number="+12025550188", office_number_verified=True),
    )
    assert vouched == [
        ("office_number_changed", "app", "+1******0188", "mainapp"),
        ("office_number_verified", "app", "+1******0188", "mainapp"),
    ]
    withdrawn = new_events(
        client,
        lambda: put_practice(client, office_number="+12025550188", office_number_verified=False),
    )
    assert withdrawn == [("office_number_unverified", "app", "+1******0188", "mainapp")]


def test_a_new_practice_vouched_for_is_set_then_verified(client: FlaskClient) -> None:
    put_practice(client, office_number_verified=True)
    assert events(client) == [
        ("office_number_set", "app", "+1******0100", "mainapp"),
        ("office_number_verified", "app", "+1******0100", "mainapp"),
    ]


# Cells and roles ----------------------------------------------------------------------


def test_a_cell_set_changed_vouched_for_withdrawn_and_removed_is_audited(
    client: FlaskClient,
) -> None:
    put_practice(client)
    assert new_events(client, lambda: put_user(client, role="staff")) == []
    assert new_events(client, lambda: put_user(client, role="staff", cell_number=STAFF_CELL)) == [
        ("cell_number_set", "app", "+1******0122", "mainapp")
    ]
    vouched = new_events(
        client,
        lambda: put_user(client, role="staff", cell_number=ADMIN_CELL, cell_number_verified=True),
    )
    assert vouched == [
        ("cell_number_changed", "app", "+1******0111", "mainapp"),
        ("cell_number_verified", "app", "+1******0111", "mainapp"),
    ]
    assert new_events(client, lambda: put_user(client, role="admin")) == [
        ("role_changed_to_admin", "app", "+1******0111", "mainapp")
    ]
    assert new_events(client, lambda: put_user(client, cell_number_verified=False)) == [
        ("cell_number_unverified", "app", "+1******0111", "mainapp")
    ]
    assert new_events(client, lambda: put_user(client, cell_number=None)) == [
        ("cell_number_removed", "app", "+1******0111", "mainapp")
    ]
    assert new_events(
        client, lambda: client.delete("/api/v1/practices/p-1/users/u-1", headers=ADMIN)
    ) == [("admin_removed", "app", None, "mainapp")]


def test_user_events_name_the_user_in_their_reference(client: FlaskClient) -> None:
    put_practice(client)
    put_user(client, "p-1", "u-7", cell_number=ADMIN_CELL, cell_number_verified=True)
    found = trail(client)["events"]
    user_events = [e for e in found if e["outcome"] != "office_number_set"]
    assert [e["outcome"] for e in user_events] == [
        "admin_added",
        "cell_number_verified",
        "cell_number_set",
    ]
    assert {e["reference"] for e in user_events} == {"u-7"}


def test_a_cell_proven_by_its_code_is_audited_on_the_sms_channel(client: FlaskClient) -> None:
    put_practice(client)
    put_user(client, cell_number=ADMIN_CELL)
    assert (
        client.post("/api/v1/practices/p-1/users/u-1/cell-verification", headers=ADMIN).status_code
        == 202
    )
    [sent] = client.application.extensions["carrier"].recorded("messages")
    code = "".join(c for c in sent["body"] if c.isdigit())[:6]
    proven = new_events(
        client,
        lambda: client.post(
            "/api/v1/practices/p-1/users/u-1/cell-verification/check",
            json={"code": code},
            headers=ADMIN,
        ),
    )
    assert proven == [("cell_number_verified", "sms", "+1******0111", "mainapp")]


# Opt-outs -----------------------------------------------------------------------------


def test_an_admin_cell_opting_out_and_back_in_is_audited_in_each_of_its_practices(
    client: FlaskClient,
) -> None:
    seed(client)
    stop = new_events(client, lambda: text_in(client, "STOP", MULTI_ADMIN_CELL), "p-2")
    assert stop == [("opted_out", "sms", "+1******0144", "self")]
    assert events(client, "p-1")[-1] == ("opted_out", "sms", "+1******0144", "self")
    again = new_events(client, lambda: text_in(client, "STOP", MULTI_ADMIN_CELL), "p-2")
    assert again == []  # already opted out: nothing changed
    start = new_events(client, lambda: text_in(client, "START", MULTI_ADMIN_CELL), "p-2")
    assert start == [("opted_in", "sms", "+1******0144", "self")]


def test_a_staff_cell_or_unknown_number_opting_out_is_no_practice_event(
    client: FlaskClient,
) -> None:
    seed(client)
    assert new_events(client, lambda: text_in(client, "STOP", STAFF_CELL)) == []
    assert new_events(client, lambda: text_in(client, "STOP", "+12025550199")) == []


# Pages --------------------------------------------------------------------------------


def fill(app: Flask, count: int, practice_id: str = "p-1") -> None:
    """``count`` codeword reads, as the main application's banner makes them."""
    directory = app.extensions["directory"]
    for _ in range(count):
        directory.record_event(practice_id, channel="app", outcome="disclosed", actor="mainapp")


def test_a_page_is_100_events_by_default_newest_first(app: Flask, client: FlaskClient) -> None:
    put_practice(client)
    fill(app, 120)
    page = trail(client)
    ids = [e["id"] for e in page["events"]]
    assert len(ids) == 100
    assert ids == sorted(ids, reverse=True)
    assert page["next_before"] == ids[-1]


def test_paging_with_before_reaches_a_change_behind_hundreds_of_reads(
    app: Flask, client: FlaskClient
) -> None:
    """200 reads no longer push the record of an earlier change out of reach."""
    put_practice(client, office_number_verified=True)
    fill(app, 250)
    seen: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 100}
    while True:
        page = trail(client, **query)
        seen += page["events"]
        if page["next_before"] is None:
            break
        query["before"] = page["next_before"]
    assert len(seen) == 252
    assert len({e["id"] for e in seen}) == 252
    assert [e["outcome"] for e in seen[-2:]] == ["office_number_verified", "office_number_set"]


def test_the_last_page_says_so(app: Flask, client: FlaskClient) -> None:
    put_practice(client)
    fill(app, 4)
    first = trail(client, limit=5)
    assert len(first["events"]) == 5
    assert first["next_before"] is None
    second = trail(client, limit=2)
    rest = trail(client, limit=10, before=second["next_before"])
    assert len(rest["events"]) == 3
    assert rest["next_before"] is None


def test_support_pages_the_trail_too(app: Flask, client: FlaskClient) -> None:
    put_practice(client)
    fill(app, 3)
    response = client.get("/api/v1/practices/p-1/disclosures?limit=2", headers=SUPPORT)
    assert response.status_code == 200
    assert len(response.get_json()["events"]) == 2


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "limit=abc", "limit=-1", "limit=1.5", "before=0", "before=x",
     "before=%EF%BC%91", "limit=" + "9" * 30],
)  # fmt: skip
def test_a_limit_or_before_out_of_bounds_is_422(client: FlaskClient, query: str) -> None:
    put_practice(client)
    response = client.get(f"/api/v1/practices/p-1/disclosures?{query}", headers=ADMIN)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == query.split("=")[0]


def test_pages_walk_an_index_backwards_from_an_id(app: Flask) -> None:
    """Keyset pagination: the database seeks to ``before`` on (practice_id, id), no sort."""
    directory = app.extensions["directory"]
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM audit_events" in statement:
            statements.append((statement, parameters))

    event.listen(directory.engine, "before_cursor_execute", keep)
    try:
        directory.list_events("p-1", limit=100, before=500)
    finally:
        event.remove(directory.engine, "before_cursor_execute", keep)
    [(statement, parameters)] = statements
    with directory.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_audit_practice_id (practice_id=? AND id<?)" in details, details
    assert "TEMP B-TREE" not in details, details
