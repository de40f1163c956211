"""Signing in to the support console: token, server-side session, cookie, CSRF, limits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie
from urllib.parse import quote

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from console import sessions
from store import keys
from tests.console_client import csrf_of, fields, get, post, setup_practice, sign_in, text_of
from tests.helpers import ADMIN_TOKEN, SUPPORT_TOKEN

# Console sessions live in Redis: they hold on a cluster and through Sentinel too.
pytestmark = pytest.mark.redis_topologies


def _set_cookie(response: object, name: str) -> SimpleCookie:
    for header in response.headers.getlist("Set-Cookie"):  # type: ignore[attr-defined]
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie
    raise AssertionError(f"no {name} cookie was set")


def _session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(sessions.COOKIE, domain="codeword.example.com", path="/console")
    return cookie.value if cookie else None


def test_a_page_without_a_session_sends_the_agent_to_sign_in(client: FlaskClient) -> None:
    response = get(client, "/console/practices/p-1?before=5")
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/login?next=/console/practices/p-1?before%3D5"


def test_the_sign_in_page_has_the_token_field_and_button(client: FlaskClient) -> None:
    page = get(client, "/console/login?checked=1")
    html = page.get_data(as_text=True)
    assert '<label for="token">Support token</label>' in html
    assert 'id="token" name="token" type="password"' in html
    assert ">Sign in</button>" in html


def test_a_support_token_opens_a_session_with_a_new_id_and_strict_cookie(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    first = sign_in(client)
    assert first.status_code == 303
    assert first.headers["Location"] == "/console"
    cookie = _set_cookie(first, sessions.COOKIE)[sessions.COOKIE]
    assert cookie["httponly"] is True
    assert cookie["secure"] is True  # PUBLIC_BASE_URL is https
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/console"
    assert cookie["max-age"] == str(8 * 3600)
    # Redis holds the session under the cookie's hash, never the cookie itself.
    assert not list(redis_client.scan_iter(match=f"*{cookie.value}*"))
    assert redis_client.ttl(keys.console_session(sessions.digest(cookie.value))) > 8 * 3600 - 60

    assert "Signed in as helpdesk" in text_of(get(client, "/console"))

    post(client, "/console/logout", {"csrf_token": csrf_of(client)})
    again = sign_in(client)
    assert _set_cookie(again, sessions.COOKIE)[sessions.COOKIE].value != cookie.value


def test_the_cookie_is_not_marked_secure_when_the_service_is_plain_http(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(PUBLIC_BASE_URL="http://127.0.0.1:8000")
    cookie = _set_cookie(sign_in(app.test_client()), sessions.COOKIE)[sessions.COOKIE]
    assert not cookie["secure"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"


def test_a_wrong_token_or_an_admin_token_is_refused_in_words(client: FlaskClient) -> None:
    for token in ("not-a-token", ADMIN_TOKEN, SUPPORT_TOKEN + "x", ""):
        response = sign_in(client, token)
        assert response.status_code == 403
        assert "That is not a valid support token." in text_of(response)
        assert _session_cookie(client) is None


def test_failed_sign_ins_are_limited_per_client_address(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(CONSOLE_SIGN_IN_FAILURES_PER_CLIENT="3/hour")
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, "wrong").status_code == 403
    refused = sign_in(client, "wrong")
    assert refused.status_code == 429
    assert "Too many failed sign-ins from this computer. Try again in 1 hour." in text_of(refused)
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    # Even the right token waits: the limit is checked before any token is compared.
    assert sign_in(client, SUPPORT_TOKEN).status_code == 429

    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert sign_in(elsewhere, SUPPORT_TOKEN).status_code == 303


def test_failed_sign_ins_arriving_together_stay_within_the_limit(
    make_app: Callable[..., Flask],
) -> None:
    """Each attempt takes its slot before any token is compared: 3 allowed means 3 compared."""
    app = make_app(CONSOLE_SIGN_IN_FAILURES_PER_CLIENT="3/hour")
    browsers = [app.test_client() for _ in range(10)]
    forms = [fields(get(browser, "/console/login?checked=1")) for browser in browsers]
    start = threading.Barrier(len(browsers))

    def attempt(index: int) -> int:
        start.wait()
        answer = post(browsers[index], "/console/login", {**forms[index], "token": "wrong"})
        return answer.status_code

    with ThreadPoolExecutor(len(browsers)) as pool:
        statuses = sorted(pool.map(attempt, range(len(browsers))))
    assert statuses == [403] * 3 + [429] * 7


def test_good_sign_ins_do_not_count_against_the_limit(make_app: Callable[..., Flask]) -> None:
    app = make_app(CONSOLE_SIGN_IN_FAILURES_PER_CLIENT="2/hour")
    for _ in range(4):
        assert sign_in(app.test_client()).status_code == 303
    client = app.test_client()
    assert sign_in(client, "wrong").status_code == 403
    assert sign_in(client).status_code == 303


def test_the_sign_in_form_is_refused_without_its_csrf_token(client: FlaskClient) -> None:
    get(client, "/console/login?checked=1")  # the nonce cookie, but no token sent with it
    refused = post(client, "/console/login", {"token": SUPPORT_TOKEN})
    assert refused.status_code == 403
    assert "The sign-in form had expired" in text_of(refused)
    assert _session_cookie(client) is None

    # A token made for another browser's nonce does not do either.
    other = fields(get(client.application.test_client(), "/console/login?checked=1"))
    refused = post(client, "/console/login", {"token": SUPPORT_TOKEN, **other})
    assert refused.status_code == 403


def test_signing_out_revokes_the_session_on_the_server(client: FlaskClient) -> None:
    sign_in(client)
    old_cookie = _session_cookie(client)
    assert old_cookie
    signed_out = post(client, "/console/logout", {"csrf_token": csrf_of(client)})
    assert signed_out.status_code == 303
    assert "signed_out=1" in signed_out.headers["Location"]
    assert "You are signed out." in text_of(get(client, signed_out.headers["Location"]))

    # The old cookie, replayed, no longer opens anything.
    client.set_cookie(sessions.COOKIE, old_cookie, path="/console", domain="codeword.example.com")
    assert get(client, "/console").status_code == 303
    assert get(client, "/console/calls/VC1/status").status_code == 401


def test_a_session_ends_when_its_support_token_is_withdrawn(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    sign_in(client)
    old_cookie = _session_cookie(client)
    assert old_cookie
    assert get(client, "/console").status_code == 200
    new_token = "another-token-0000000000000000"
    client.application.config["SUPPORT_TOKENS"] = {new_token: "helpdesk"}
    assert get(client, "/console").status_code == 303
    # Signing in with the new token replaces the old session, which is gone from Redis.
    assert sign_in(client, new_token).status_code == 303
    assert not redis_client.exists(keys.console_session(sessions.digest(old_cookie)))
    assert get(client, "/console").status_code == 200


def test_after_signing_in_the_agent_lands_where_they_were_going_and_never_off_site(
    client: FlaskClient,
) -> None:
    setup_practice(client)
    for asked, landed in (
        ("/console/practices/p-1", "/console/practices/p-1"),
        ("/console?q=smiles", "/console?q=smiles"),
        ("//evil.example/console", "/console"),
        ("https://evil.example/", "/console"),
        ("/consolex", "/console"),
        ("/console/\\evil", "/console"),
    ):
        browser = client.application.test_client()
        form = fields(get(browser, f"/console/login?checked=1&next={quote(asked)}"))
        assert form["next"] == landed
        response = post(browser, "/console/login", {**form, "token": SUPPORT_TOKEN})
        assert response.headers["Location"] == landed


def test_an_agent_arriving_from_another_site_gets_one_same_site_hop(client: FlaskClient) -> None:
    """SameSite=Strict keeps the cookie off a link from the help desk; one hop sends it."""
    hop = get(client, "/console/login?next=/console/practices/p-1")
    assert hop.status_code == 200
    assert (
        '<meta http-equiv="refresh" content="0; url=/console/login?next=/console/practices/p-1'
        '&amp;checked=1">' in hop.get_data(as_text=True)
    )
    sign_in(client)
    # With the cookie, the sign-in page sends the agent straight on.
    again = get(client, "/console/login?next=/console/practices/p-1&checked=1")
    assert again.status_code == 303
    assert again.headers["Location"] == "/console/practices/p-1"
