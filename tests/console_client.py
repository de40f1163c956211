"""Driving the support console with Flask's test client: forms read, tokens carried, over https."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.helpers import PUBLIC_BASE_URL, SUPPORT_TOKEN, put_practice, put_user
from tests.voice import CODEWORD

OFFICE = "+12025550100"
ADMIN_CELL = "+12025550111"
STAFF_CELL = "+12025550122"


class _Fields(HTMLParser):
    """The named inputs of a page (hidden ones included) and its form actions."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.actions: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""
        for name in ("action", "formaction"):
            if found.get(name):
                self.actions.append(str(found[name]))


def fields(response: TestResponse) -> dict[str, str]:
    """Every named input of the page, with the value it carries."""
    parser = _Fields()
    parser.feed(response.get_data(as_text=True))
    return parser.fields


def actions(response: TestResponse) -> list[str]:
    parser = _Fields()
    parser.feed(response.get_data(as_text=True))
    return parser.actions


def text_of(response: TestResponse) -> str:
    """The page's text, tags removed and spaces collapsed (for sentences spanning tags)."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&amp;", "&").split())


def get(client: FlaskClient, path: str, **kwargs: Any) -> TestResponse:
    """GET a console URL over https; no answer may ever hold the codeword."""
    return _without_codeword(client.get(path, base_url=PUBLIC_BASE_URL, **kwargs))


def post(client: FlaskClient, path: str, data: dict[str, str], **kwargs: Any) -> TestResponse:
    """POST a console form over https; no answer may ever hold the codeword."""
    return _without_codeword(client.post(path, data=data, base_url=PUBLIC_BASE_URL, **kwargs))


def _without_codeword(response: TestResponse) -> TestResponse:
    body = response.get_data(as_text=True).lower()
    assert CODEWORD.lower() not in body, "a console response carried the codeword"
    return response


def sign_in(client: FlaskClient, token: str = SUPPORT_TOKEN) -> TestResponse:
    """Sign in through the form, as a browser does (the form's token, then the POST)."""
    form = get(client, "/console/login?checked=1")
    assert form.status_code == 200
    return post(
        client,
        "/console/login",
        {"csrf_token": fields(form)["csrf_token"], "token": token, "next": "/console"},
    )


def csrf_of(client: FlaskClient, path: str = "/console") -> str:
    """The CSRF token the console's forms carry for the signed-in session."""
    return fields(get(client, path))["csrf_token"]


def practice_form(client: FlaskClient, practice_id: str = "p-1") -> dict[str, str]:
    """The practice page's form fields: csrf_token, call_key, requested_by."""
    page = get(client, f"/console/practices/{practice_id}")
    assert page.status_code == 200, page.status_code
    return fields(page)


def place_call(
    client: FlaskClient, practice_id: str = "p-1", requested_by: str = "Dana Admin"
) -> TestResponse:
    form = practice_form(client, practice_id)
    form["requested_by"] = requested_by
    return post(client, f"/console/practices/{practice_id}/calls", form)


def setup_practice(
    client: FlaskClient,
    practice_id: str = "p-1",
    name: str = "Bright Smiles Dental",
    office_number_verified: bool = True,
) -> None:
    """A practice with a codeword, a verified admin cell and a staff member."""
    response = put_practice(
        client,
        practice_id,
        name=name,
        office_number_verified=office_number_verified,
        codeword=CODEWORD,
    )
    assert response.status_code in (200, 201)
    put_user(
        client,
        practice_id,
        "u-admin",
        name="Dana Admin",
        cell_number=ADMIN_CELL,
        cell_number_verified=True,
    )
    put_user(client, practice_id, "u-staff", name="Sam Staff", role="staff", cell_number=STAFF_CELL)
