"""The support console's pages: finding a practice, its page, security headers, CSRF."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.extensions import directory
from tests.console_client import (
    ADMIN_CELL,
    OFFICE,
    STAFF_CELL,
    actions,
    csrf_of,
    get,
    post,
    practice_form,
    setup_practice,
    sign_in,
    text_of,
)
from tests.helpers import post_signed, put_practice


@pytest.fixture
def agent(client: FlaskClient) -> FlaskClient:
    """A support agent signed in to the console, with two practices in the directory."""
    setup_practice(client)
    setup_practice(client, "p-2", name="Smiles On Main", office_number_verified=False)
    put_practice(client, "p-3", name="Oak Dental", office_number="+1 202 555 0177")
    sign_in(client)
    return client


def test_the_search_page_has_the_practice_field_and_find_button(agent: FlaskClient) -> None:
    html = get(agent, "/console").get_data(as_text=True)
    assert '<label for="q">Practice</label>' in html
    assert ">Find</button>" in html


@pytest.mark.parametrize(
    "query",
    [
        "p-3",  # the id
        "oak",  # part of the name, any case
        "OAK DENTAL",
        "(202) 555-0177",  # the office number, any format
        "202.555.0177",
        "+1 202 555 0177",
        "2025550177",
    ],
)
def test_one_match_opens_the_practice(agent: FlaskClient, query: str) -> None:
    found = get(agent, "/console", query_string={"q": query})
    assert found.status_code == 303
    assert found.headers["Location"] == "/console/practices/p-3"


def test_several_matches_are_listed_with_masked_numbers(agent: FlaskClient) -> None:
    page = get(agent, "/console", query_string={"q": "smiles"})
    assert page.status_code == 200
    text = text_of(page)
    assert "2 practices match “smiles”" in text
    assert "Bright Smiles Dental p-1 · +1******0100 verified" in text
    assert "Smiles On Main p-2 · +1******0100 not verified" in text
    assert OFFICE not in page.get_data(as_text=True)
    # The id match comes first, even when names match too.
    listed = text_of(get(agent, "/console", query_string={"q": "202-555-0100"}))
    assert listed.index("Bright Smiles Dental") < listed.index("Smiles On Main")


def test_no_match_says_so(agent: FlaskClient) -> None:
    text = text_of(get(agent, "/console", query_string={"q": "zebra"}))
    assert "No practice matches “zebra”" in text


def test_wildcards_in_a_search_are_plain_characters(agent: FlaskClient) -> None:
    assert "No practice matches “%”" in text_of(get(agent, "/console", query_string={"q": "%"}))
    assert "No practice matches “_”" in text_of(get(agent, "/console", query_string={"q": "_"}))


def test_the_practice_page_shows_what_support_needs_and_no_full_number(
    agent: FlaskClient,
) -> None:
    page = get(agent, "/console/practices/p-1")
    html, text = page.get_data(as_text=True), text_of(page)
    assert "Bright Smiles Dental" in text
    assert "p-1 · English" in text
    assert "Office number +1******0100 verified" in text
    assert "No call is live." in text
    assert "Dana Admin admin +1******0111 verified Text the codeword" in text
    assert "Sam Staff staff +1******0122 not verified" in text
    for number in (OFFICE, ADMIN_CELL, STAFF_CELL):
        assert number not in html
    # One "Text the codeword" button: the verified admin's; the staff member has none.
    assert actions(page).count("/console/practices/p-1/users/u-admin/codeword-texts") == 1
    assert "/console/practices/p-1/users/u-staff/codeword-texts" not in actions(page)
    assert '<label for="requested_by">Requested by</label>' in html
    assert ">Call the office</button>" in html


def test_an_unverified_office_number_is_flagged_before_calling(agent: FlaskClient) -> None:
    text = text_of(get(agent, "/console/practices/p-2"))
    assert "Office number +1******0100 not verified" in text
    assert "The office number is not verified, so a call will be refused." in text


def test_an_unknown_practice_is_a_page_that_says_so(agent: FlaskClient) -> None:
    missing = get(agent, "/console/practices/nope")
    assert missing.status_code == 404
    assert "There is no such practice." in text_of(missing)
    assert missing.mimetype == "text/html"


def test_the_audit_trail_reads_as_sentences_newest_first_and_pages(
    agent: FlaskClient, app: Flask
) -> None:
    with app.app_context():
        for n in range(25):
            directory().record_event(
                "p-1",
                channel="voice",
                outcome="disclosed",
                actor="helpdesk",
                to_number=OFFICE,
                requested_by=f"Requester {n}",
                reference=f"CA{n}",
            )
    first = text_of(get(agent, "/console/practices/p-1"))
    assert "codeword read by phone to +1******0100, at Requester 24’s request, by helpdesk" in first
    assert first.index("Requester 24’s") < first.index("Requester 23’s")
    assert "Requester 5’s" in first and "Requester 4’s" not in first
    older = [a for a in actions(get(agent, "/console/practices/p-1")) if "before=" in a]
    assert not older  # links are not form actions
    page = get(agent, "/console/practices/p-1").get_data(as_text=True)
    link = page.split('href="/console/practices/p-1?before=')[1].split('"')[0]
    second = text_of(get(agent, f"/console/practices/p-1?before={link}"))
    assert "Requester 4’s" in second and "Requester 5’s" not in second
    assert "codeword changed, by mainapp" in second
    assert "Newest events" in second and "Older events" not in second


def test_names_from_the_directory_are_escaped(agent: FlaskClient) -> None:
    put_practice(agent, "p-x", name='<script>alert("x")</script> Dental')
    html = get(agent, "/console/practices/p-x").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Dental" in html


# --- safe by construction ----------------------------------------------------------


def _console_responses(agent: FlaskClient) -> list[object]:
    called = post(
        agent, "/console/practices/p-1/calls", {**practice_form(agent), "requested_by": "D"}
    )
    call_id = called.get_data(as_text=True).split("/console/calls/")[1].split("/")[0]
    return [
        get(agent.application.test_client(), "/console/login?checked=1"),
        get(agent, "/console/login?checked=1"),
        get(agent, "/console"),
        get(agent, "/console?q=smiles"),
        get(agent, "/console/practices/p-1"),
        get(agent, "/console/practices/nope"),
        called,
        get(agent, f"/console/calls/{call_id}"),
        get(agent, f"/console/calls/{call_id}/status"),
        post(agent, "/console/practices/p-1/calls", {"requested_by": "D"}),
    ]


def test_every_console_response_sends_the_csp_and_forbids_framing(agent: FlaskClient) -> None:
    for response in _console_responses(agent):
        headers = response.headers  # type: ignore[attr-defined]
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy
        assert "default-src 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_and_nothing_from_another_origin(agent: FlaskClient) -> None:
    for response in _console_responses(agent):
        html = response.get_data(as_text=True)  # type: ignore[attr-defined]
        if response.mimetype != "text/html" or response.status_code in (302, 303):  # type: ignore[attr-defined]
            continue
        assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html
        assert "http://" not in html and "https://" not in html and 'src="//' not in html
        assert '<script src="/console/static/console.js?v=' in html


def test_the_console_files_are_served_from_the_package_and_cached_by_version(
    agent: FlaskClient,
) -> None:
    html = get(agent, "/console").get_data(as_text=True)
    script = html.split('<script src="')[1].split('"')[0]
    served = get(agent, script)
    assert served.status_code == 200
    assert "followCall" in served.get_data(as_text=True)
    assert "max-age=31536000" in served.headers["Cache-Control"]
    assert "frame-ancestors 'none'" in served.headers["Content-Security-Policy"]


def test_every_form_is_refused_without_its_csrf_token(agent: FlaskClient, app: Flask) -> None:
    form = practice_form(agent)
    for path in (
        "/console/practices/p-1/calls",
        "/console/practices/p-1/users/u-admin/codeword-texts",
        "/console/logout",
    ):
        for token in (None, "", form["csrf_token"] + "x", "made-up"):
            data = {**form, "requested_by": "Dana Admin"}
            if token is None:
                del data["csrf_token"]
            else:
                data["csrf_token"] = token
            refused = post(agent, path, data)
            assert refused.status_code == 403, path
            assert "This form has expired" in text_of(refused)
    carrier = app.extensions["carrier"]
    assert not carrier.recorded("calls") and not carrier.recorded("messages")
    assert get(agent, "/console").status_code == 200  # still signed in


def test_a_csrf_token_of_another_session_is_refused(agent: FlaskClient, app: Flask) -> None:
    other = app.test_client()
    sign_in(other)
    theirs = csrf_of(other)
    refused = post(
        agent, "/console/practices/p-1/calls", {"csrf_token": theirs, "requested_by": "D"}
    )
    assert refused.status_code == 403
    assert not app.extensions["carrier"].recorded("calls")


def test_webhooks_and_apis_carry_no_console_cookie_or_session(agent: FlaskClient) -> None:
    inbound = post_signed(agent, "/ivr/inbound", {"CallSid": "CA1", "From": "+12025550199"})
    assert inbound.status_code == 200
    assert not inbound.headers.getlist("Set-Cookie")
    assert "Content-Security-Policy" not in inbound.headers
    api = agent.get("/api/v1/practices/p-1", base_url="https://codeword.example.com")
    assert api.status_code == 401  # the console's cookie is no API credential
    assert not api.headers.getlist("Set-Cookie")
