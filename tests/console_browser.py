"""A real headless Chromium (Debian's chromium and chromium-driver) on the support console.

The app is served by werkzeug on a loopback port in a thread of the test, so the
test keeps its clock and its simulated carrier; Chromium reaches it over HTTP.
Every response the browser received is kept (through Chrome's performance log and
the DevTools protocol) so that tests can look into each one.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from devservers.processes import HOST

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# A laptop's screen.
WINDOW = (1280, 800)
# How long the page may take to show what a test waits for.
WAIT_SECONDS = 10


@contextlib.contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free loopback port (a thread per request); yield its URL."""
    server = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-server", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def start_chromium() -> WebDriver:
    """Headless Chromium with its performance log on (every network event)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER or "chromedriver"), options=options)


@dataclass
class Fetched:
    """One response the browser received."""

    url: str
    status: int
    mime_type: str
    headers: dict[str, str]
    body: str | None = None


@dataclass
class Browser:
    """The driver, the console's URL, and everything the browser fetched so far."""

    driver: WebDriver
    base_url: str
    fetched: list[Fetched] = field(default_factory=list)
    _pending: dict[str, Fetched] = field(default_factory=dict)

    # --- pages ----------------------------------------------------------------------

    def open(self, path: str) -> None:
        self.keep_responses()
        self.driver.get(self.base_url + path)
        self.keep_responses()

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def by_label(self, label: str) -> WebElement:
        """The input a <label> with exactly this text names."""
        found = self.driver.find_element(By.XPATH, f"//label[normalize-space()='{label}']")
        return self.driver.find_element(By.ID, str(found.get_attribute("for")))

    def button(self, text: str) -> WebElement:
        return self.driver.find_element(By.XPATH, f"//button[normalize-space()='{text}']")

    def click(self, element: WebElement) -> None:
        """Click a link or button that leads to a page; wait for it, keep what was fetched."""
        self.keep_responses()
        old_page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        self.wait_until(lambda: _gone(old_page), "the next page")
        self.wait_until(
            lambda: self.driver.execute_script("return document.readyState") == "complete"
        )
        self.keep_responses()

    def text(self) -> str:
        return " ".join(self.find("body").text.split())

    def wait_until(self, condition: Callable[[], Any], what: str = "the page") -> Any:
        return WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.05).until(
            lambda _driver: condition(), message=f"waiting for {what}"
        )

    def wait_for_text(self, css: str, text: str) -> None:
        self.wait_until(lambda: self.find(css).text == text, f"{css} to read {text!r}")

    def sign_in(self, token: str) -> None:
        self.open("/console/login")
        self.by_label("Support token").send_keys(token)
        self.click(self.button("Sign in"))

    def console_errors(self) -> list[dict[str, Any]]:
        """What the page's console reported as errors (a CSP violation would be one)."""
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    # --- what was fetched -----------------------------------------------------------

    def keep_responses(self) -> None:
        """Read the performance log; keep every response with its body while it is there."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message.get("params", {})
            if method == "Network.responseReceived":
                response = params["response"]
                self._pending[params["requestId"]] = Fetched(
                    url=response["url"],
                    status=int(response["status"]),
                    mime_type=response.get("mimeType", ""),
                    headers={k.lower(): v for k, v in response.get("headers", {}).items()},
                )
            elif method == "Network.loadingFinished" and params["requestId"] in self._pending:
                fetched = self._pending.pop(params["requestId"])
                fetched.body = self._body(params["requestId"])
                self.fetched.append(fetched)

    def _body(self, request_id: str) -> str | None:
        try:
            answer = self.driver.execute_cdp_cmd(  # type: ignore[attr-defined]
                "Network.getResponseBody", {"requestId": request_id}
            )
        except WebDriverException:
            return None  # gone with its page; the caller fetches such URLs again
        return None if answer.get("base64Encoded") else str(answer.get("body", ""))

    def console_responses(self) -> list[Fetched]:
        self.keep_responses()
        return [f for f in self.fetched if f.url.startswith(self.base_url + "/console")]

    def cookies(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.driver.get_cookies()}

    def reset(self) -> None:
        """Forget cookies, storage and logs of the previous test."""
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})  # type: ignore[attr-defined]
        self.driver.get("about:blank")
        self.driver.get_log("performance")
        self.driver.get_log("browser")
        self.fetched.clear()
        self._pending.clear()


def _gone(element: WebElement) -> bool:
    """Whether the page holding ``element`` was replaced.

    While a navigation swaps documents, Chromium may answer that the node "does not belong
    to the document" instead of calling it stale: the same fact, in other words.
    """
    try:
        return bool(staleness_of(element)(None))
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
