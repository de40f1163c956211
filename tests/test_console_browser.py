"""The support console in a real headless Chromium: sign in, find, call, watch, text.

Calls placed from the page are walked by the terminal phone (``phone/``), which
sends the service the webhooks Twilio would, signed; the page follows by itself.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from selenium.webdriver.remote.webdriver import WebDriver

from devservers.processes import REPO
from phone.call import GatherPrompt, Heard
from phone.network import PhoneNetwork
from phone.webhooks import Webhooks
from tests.console_browser import CHROMEDRIVER, CHROMIUM, Browser, serve, start_chromium
from tests.console_client import ADMIN_CELL, setup_practice
from tests.helpers import (
    ADMIN_TOKEN,
    PUBLIC_BASE_URL,
    SUPPORT_TOKEN,
    TWILIO_AUTH_TOKEN,
    put_practice,
)
from tests.twilio_fake import TwilioRecorder
from tests.voice import CODEWORD

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="chromium and chromium-driver are not installed (scripts/bootstrap --dev)",
)

# Set to a path (e.g. docs/console.png) to keep the screenshot of a live call there.
SCREENSHOT_ENV = "CONSOLE_SCREENSHOT"


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    driver = start_chromium()
    yield driver
    driver.quit()


def _browser(chromium: WebDriver, app: Flask) -> Iterator[Browser]:
    client = app.test_client()
    setup_practice(client)
    setup_practice(client, "p-2", name="Smiles On Main", office_number_verified=False)
    put_practice(client, "p-3", name="Oak Dental", office_number="+1 202 555 0177")
    with serve(app) as url:
        browser = Browser(chromium, url)
        browser.reset()
        yield browser
        browser.reset()


@pytest.fixture
def browser(chromium: WebDriver, app: Flask) -> Iterator[Browser]:
    """Chromium on the console of an app on the simulated carrier, with three practices."""
    yield from _browser(chromium, app)


@pytest.fixture
def signed_in(browser: Browser) -> Browser:
    browser.sign_in(SUPPORT_TOKEN)
    assert "Signed in as helpdesk" in browser.text()
    return browser


class OfficePhone:
    """Whoever answers the office phone: picks up when told, keys what the test hands over."""

    def __init__(self, app: Flask, url: str) -> None:
        webhooks = Webhooks(PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN, listen_url=url)
        self.network = PhoneNetwork(app.extensions["carrier"], webhooks)
        self.keys: queue.Queue[str | None] = queue.Queue()
        self.rang = threading.Event()
        self.pick_up = threading.Event()
        self.heard: list[Heard] = []
        self._thread: threading.Thread | None = None

    def ring(self) -> None:
        """Let the call ring; it is answered once ``pick_up`` is set."""
        call = self.network.find_call()
        self._thread = threading.Thread(
            target=self.network.answer, args=(call, self._keypad, self._listen), daemon=True
        )
        self._thread.start()
        assert self.rang.wait(10), "the call never rang"

    def hang_up(self) -> list[str]:
        """Hang up at the next prompt; what the service said on the call."""
        self.keys.put(None)
        assert self._thread is not None
        self._thread.join(10)
        return [h.text for h in self.heard if h.kind == "say"]

    def _keypad(self, prompt: GatherPrompt) -> str | None:
        return self.keys.get(timeout=15)

    def _listen(self, heard: Heard) -> None:
        self.heard.append(heard)
        if heard.text == "status callback: in-progress":
            # "ringing" was reported; the test looks at the page before anyone answers.
            self.rang.set()
            assert self.pick_up.wait(10)


def _wrong_code_for(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def _assert_codeword_never_reached_the_browser(browser: Browser) -> None:
    """Neither a page (as shown) nor any response the browser fetched held the codeword."""
    assert CODEWORD.lower() not in browser.driver.page_source.lower()
    session = requests.Session()
    for cookie in browser.driver.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"], path=cookie["path"])
    responses = browser.console_responses()
    assert responses
    for fetched in responses:
        body = fetched.body
        if body is None and fetched.status == 200:
            # Its body went with its page: fetch the same URL again (GETs only reach here).
            body = session.get(fetched.url, timeout=10).text
        assert CODEWORD.lower() not in (body or "").lower(), fetched.url


# --- signing in and out ----------------------------------------------------------------


def test_sign_in_a_wrong_token_and_sign_out(browser: Browser) -> None:
    browser.open("/console")
    assert browser.driver.title == "Sign in · Codeword console"
    browser.by_label("Support token").send_keys("not-the-token")
    browser.click(browser.button("Sign in"))
    assert "That is not a valid support token." in browser.text()
    browser.by_label("Support token").send_keys(ADMIN_TOKEN)
    browser.click(browser.button("Sign in"))
    assert "That is not a valid support token." in browser.text()

    browser.by_label("Support token").send_keys(SUPPORT_TOKEN)
    browser.click(browser.button("Sign in"))
    assert browser.driver.current_url == browser.base_url + "/console"
    assert "Signed in as helpdesk" in browser.text()

    cookie = browser.cookies()["cw_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is True  # PUBLIC_BASE_URL is https
    assert cookie["path"] == "/console"
    assert "cw_console" not in browser.driver.execute_script("return document.cookie")

    browser.click(browser.button("Sign out"))
    assert "You are signed out." in browser.text()
    # The old cookie, put back, opens nothing: the session was revoked on the server.
    browser.driver.add_cookie(
        {key: cookie[key] for key in ("name", "value", "path", "secure", "httpOnly", "sameSite")}
    )
    browser.open("/console/practices/p-1")
    assert browser.driver.title == "Sign in · Codeword console"


def test_a_link_from_another_site_reaches_the_page_while_signed_in(signed_in: Browser) -> None:
    """SameSite=Strict withholds the cookie from a cross-site link; one hop sends it."""
    target = signed_in.base_url + "/console/practices/p-3"
    signed_in.driver.get(f"data:text/html,<a id=go href='{target}'>ticket link</a>")
    signed_in.click(signed_in.driver.find_element("id", "go"))
    signed_in.wait_until(lambda: signed_in.driver.current_url == target, "the practice page")
    assert signed_in.driver.title == "Oak Dental · Codeword console"


# --- finding a practice ----------------------------------------------------------------


@pytest.mark.parametrize("query", ["p-3", "oak", "OAK DENT", "(202) 555-0177", "+1.202.555.0177"])
def test_finding_a_practice_by_id_name_or_number(signed_in: Browser, query: str) -> None:
    signed_in.by_label("Practice").send_keys(query)
    signed_in.click(signed_in.button("Find"))
    assert signed_in.driver.title == "Oak Dental · Codeword console"
    assert "+1******0177 not verified" in signed_in.text()


def test_several_matches_are_a_list_to_choose_from(signed_in: Browser) -> None:
    signed_in.by_label("Practice").send_keys("smiles")
    signed_in.click(signed_in.button("Find"))
    assert "2 practices match “smiles”" in signed_in.text()
    signed_in.click(signed_in.driver.find_element("partial link text", "Smiles On Main"))
    assert signed_in.driver.title == "Smiles On Main · Codeword console"


# --- calls -----------------------------------------------------------------------------


def _call_the_office(browser: Browser, requested_by: str) -> str:
    browser.open("/console/practices/p-1")
    browser.by_label("Requested by").send_keys(requested_by)
    browser.click(browser.button("Call the office"))
    code = browser.find('[data-testid="challenge-code"]').text
    assert len(code) == 6 and code.isdigit(), code
    assert browser.find('[data-testid="call-status"]').text == "queued"
    # A marker the page keeps only as long as it is not reloaded.
    browser.driver.execute_script("window.notReloaded = true")
    return code


def test_a_call_placed_from_the_page_is_followed_live_to_disclosed(
    signed_in: Browser, app: Flask, tmp_path: Path
) -> None:
    code = _call_the_office(signed_in, "Dana Admin (owner)")
    status = '[role="status"] [data-testid="call-status"]'
    phone = OfficePhone(app, signed_in.base_url)

    phone.ring()
    signed_in.wait_for_text(status, "ringing")
    phone.pick_up.set()
    signed_in.wait_for_text(status, "in-progress")
    signed_in.wait_for_text("[data-progress]", "Answered. Waiting for the code to be keyed in.")

    phone.keys.put(_wrong_code_for(code))
    signed_in.wait_for_text("[data-progress]", "Answered. A wrong code was keyed in: 2 tries left.")
    assert signed_in.find('[data-testid="call-status"]').text == "in-progress"
    _screenshot(signed_in, tmp_path)

    phone.keys.put(code)
    signed_in.wait_for_text(status, "disclosed")
    said = " ".join(phone.hang_up())
    assert "o t t e r" in said  # the office heard the codeword; the console never had it
    signed_in.wait_for_text(
        "[data-progress]", "The right code was keyed in and the codeword was read out. Done."
    )
    assert signed_in.driver.execute_script("return window.notReloaded") is True
    assert signed_in.find(".stages li:last-child").text == "disclosed"
    assert signed_in.find("[data-expiry]").text == "This code no longer works."

    signed_in.click(signed_in.driver.find_element("link text", "Back to Bright Smiles Dental"))
    assert (
        "codeword read by phone to +1******0100, at Dana Admin (owner)’s request, by helpdesk"
        in signed_in.text()
    )
    _assert_codeword_never_reached_the_browser(signed_in)
    polls = [f for f in signed_in.console_responses() if f.url.endswith("/status")]
    assert len(polls) >= 4
    assert all(code not in (f.body or "") for f in polls)
    assert signed_in.console_errors() == []


def _screenshot(browser: Browser, tmp_path: Path) -> None:
    """A live call, as support sees it; kept where CONSOLE_SCREENSHOT says, if it says."""
    shot = tmp_path / "console.png"
    assert browser.driver.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")
    keep = os.environ.get(SCREENSHOT_ENV)
    if keep:
        Path(REPO, keep).write_bytes(shot.read_bytes())


def test_three_wrong_codes_lock_the_call_on_the_page(signed_in: Browser, app: Flask) -> None:
    code = _call_the_office(signed_in, "Dana Admin")
    phone = OfficePhone(app, signed_in.base_url)
    phone.pick_up.set()
    phone.ring()
    for tries_left in ("2 tries left", "1 try left"):
        phone.keys.put(_wrong_code_for(code))
        signed_in.wait_for_text(
            "[data-progress]", f"Answered. A wrong code was keyed in: {tries_left}."
        )
    phone.keys.put(_wrong_code_for(code))
    signed_in.wait_for_text('[data-testid="call-status"]', "locked")
    signed_in.wait_for_text(
        "[data-progress]", "Locked: three wrong codes were keyed in. The codeword was not read."
    )
    assert "o t t e r" not in " ".join(phone.hang_up())
    assert signed_in.driver.execute_script("return window.notReloaded") is True
    assert "ended" in str(signed_in.find("[data-call]").get_attribute("class"))
    _assert_codeword_never_reached_the_browser(signed_in)


def test_a_refused_call_reads_as_a_sentence(signed_in: Browser) -> None:
    signed_in.open("/console/practices/p-2")
    signed_in.by_label("Requested by").send_keys("Dana Admin")
    signed_in.click(signed_in.button("Call the office"))
    assert (
        "Smiles On Main’s office number is not verified, so no call may read the codeword to it."
        in signed_in.text()
    )


def test_a_form_sent_without_its_csrf_token_is_refused(signed_in: Browser, app: Flask) -> None:
    signed_in.open("/console/practices/p-1")
    signed_in.driver.execute_script(
        "document.querySelector('#actions input[name=csrf_token]').remove()"
    )
    signed_in.by_label("Requested by").send_keys("Dana Admin")
    signed_in.click(signed_in.button("Call the office"))
    assert signed_in.driver.title == "This form has expired · Codeword console"
    refused = [f for f in signed_in.console_responses() if f.url.endswith("/calls")]
    assert [f.status for f in refused] == [403]
    assert not app.extensions["carrier"].recorded("calls")


def test_the_csp_holds_in_the_browser_and_every_response_carries_it(signed_in: Browser) -> None:
    signed_in.open("/console/practices/p-1")
    assert signed_in.console_errors() == []
    # Markup slipped into the page cannot run script: the CSP blocks inline handlers.
    signed_in.driver.execute_script(
        "document.body.insertAdjacentHTML('beforeend', "
        '\'<img src="/console/static/none.png" onerror="window.injected = 1">\')'
    )
    signed_in.wait_until(lambda: signed_in.console_errors(), "the CSP to report the handler")
    assert signed_in.driver.execute_script("return window.injected") is None
    for fetched in signed_in.console_responses():
        if fetched.status == 200:
            policy = fetched.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert all(f.url.startswith(signed_in.base_url) for f in signed_in.fetched)


# --- texts -----------------------------------------------------------------------------


@pytest.fixture
def twilio_browser(
    chromium: WebDriver,
    recorded_app: Flask,
    twilio_recorder: tuple[str, TwilioRecorder],
) -> Iterator[Browser]:
    """Chromium on the console of an app on the real Twilio client, through Prism."""
    yield from _browser(chromium, recorded_app)


def test_texting_the_codeword_to_an_admin_and_the_limit_in_words(
    twilio_browser: Browser, twilio_recorder: tuple[str, TwilioRecorder]
) -> None:
    browser = twilio_browser
    browser.sign_in(SUPPORT_TOKEN)
    browser.open("/console/practices/p-1")
    for sent in range(3):
        browser.by_label("Requested by").send_keys("Dana Admin")
        browser.click(browser.button("Text the codeword"))
        assert (
            "The codeword text to Dana Admin at +1******0111 is on its way, at Dana Admin’s request."
            in browser.text()
        ), sent
    messages = [r for r in twilio_recorder[1] if r.path.endswith("/Messages.json")]
    assert [m.form["To"] for m in messages] == [ADMIN_CELL] * 3
    assert "codeword texted to +1******0111, at Dana Admin’s request, by helpdesk" in browser.text()

    browser.by_label("Requested by").send_keys("Dana Admin")
    browser.click(browser.button("Text the codeword"))
    assert (
        "Dana Admin’s cell has been texted the codeword as often as it may be (3 an hour). "
        "Try again in 1 hour."
    ) in browser.text()
    assert len([r for r in twilio_recorder[1] if r.path.endswith("/Messages.json")]) == 3
    _assert_codeword_never_reached_the_browser(browser)
