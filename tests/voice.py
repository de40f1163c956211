"""Playing Twilio's part in a verification call: signed webhooks, TwiML followed."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient

from tests.helpers import PUBLIC_BASE_URL, SUPPORT, post_signed, put_practice

CODEWORD = "Maple-otter-47"
# How CODEWORD is said: what a listener hears, word by word.
CODEWORD_SPOKEN_EN = [
    "capital", "M", "a", "p", "l", "e", "dash", "o", "t", "t", "e", "r", "dash", "4", "7",
]  # fmt: skip
CODEWORD_SPOKEN_ES = [
    "mayúscula", "M", "a", "p", "l", "e", "guion", "o", "t", "t", "e", "r", "guion", "4", "7",
]  # fmt: skip
OUR_NUMBER = "+15005550006"
OFFICE = "+12025550100"
ACCOUNT_SID = "AC" + "0" * 32


class Clock:
    """A clock the call flow reads (``app.config["CLOCK"]``), moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def path_of(url: str) -> str:
    """The path and query of one of our public URLs, as the test client wants it."""
    assert url.startswith(PUBLIC_BASE_URL + "/"), url
    return url[len(PUBLIC_BASE_URL) :]


def said(root: ET.Element) -> str:
    """Everything the caller hears from a TwiML document, as one string."""
    return " ".join(" ".join("".join(say.itertext()).split()) for say in root.iter("Say"))


def spoken_words(say: ET.Element) -> list[str]:
    """The words of one <Say>, each spelled-out character as a word of its own."""
    words = (say.text or "").split()
    for child in say:
        if child.tag == "say-as":
            words.append((child.text or "").strip())
        words += (child.tail or "").split()
    return words


def spellings(root: ET.Element) -> list[list[str]]:
    """Each <Say> that spells something out, as the words heard, in order."""
    return [spoken_words(say) for say in root.iter("Say") if say.find("say-as") is not None]


def hangs_up(root: ET.Element) -> bool:
    return root.find("Hangup") is not None


def setup_practice(client: FlaskClient, practice_id: str = "p-1", **fields: Any) -> None:
    """A practice with a verified office number and CODEWORD."""
    body = {"office_number_verified": True, "codeword": CODEWORD, **fields}
    response = put_practice(client, practice_id, **body)
    assert response.status_code in (200, 201), response.get_json()


def request_call(
    client: FlaskClient,
    practice_id: str = "p-1",
    requested_by: str = "Dr. Ana Ruiz (owner)",
    headers: dict[str, str] | None = None,
) -> Any:
    """POST /api/v1/verification-calls as support."""
    return client.post(
        "/api/v1/verification-calls",
        json={"practice_id": practice_id, "requested_by": requested_by},
        headers={**SUPPORT, **(headers or {})},
    )


@dataclass
class TwilioCall:
    """One outbound call as Twilio runs it: answer URL, Gather actions, status callbacks."""

    client: FlaskClient
    url: str
    status_callback: str
    sid: str
    to: str = OFFICE
    account_sid: str = ACCOUNT_SID
    gather_action: str | None = None
    documents: list[str] = field(default_factory=list)

    def _form(self, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": self.sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "From": OUR_NUMBER,
            "To": self.to,
            **extra,
        }

    def post(self, url: str, **extra: str) -> ET.Element:
        """POST a signed webhook to ``url``; parse the TwiML and remember its Gather action."""
        response = post_signed(self.client, path_of(url), self._form(**extra))
        assert response.status_code == 200, response.status_code
        assert response.mimetype == "text/xml"
        body = response.get_data(as_text=True)
        # Done with it, as a server is once the response is sent (work deferred to then runs).
        response.close()
        self.documents.append(body)
        root = ET.fromstring(body)  # noqa: S314 (our own server's TwiML)
        assert root.tag == "Response"
        gather = root.find("Gather")
        self.gather_action = gather.get("action") if gather is not None else None
        return root

    def answer(self, answered_by: str = "human") -> ET.Element:
        return self.post(self.url, AnsweredBy=answered_by)

    @property
    def keys_url(self) -> str:
        """Where the call's current Gather posts keys; the call must be waiting for them."""
        assert self.gather_action, "the call is not waiting for keys"
        return self.gather_action

    def press(self, digits: str) -> ET.Element:
        """Key in ``digits`` at the current Gather."""
        return self.post(self.keys_url, Digits=digits)

    def stay_silent(self) -> ET.Element:
        """Let the current Gather time out (actionOnEmptyResult posts without Digits)."""
        return self.post(self.keys_url)

    def status(self, call_status: str, **extra: str) -> None:
        """Twilio's status callback."""
        response = post_signed(
            self.client,
            path_of(self.status_callback),
            self._form(CallStatus=call_status, **extra),
        )
        assert response.status_code == 200


def last_placed_call(client: FlaskClient) -> TwilioCall:
    """The call the simulated carrier placed most recently, ready to be answered."""
    carrier = client.application.extensions["carrier"]
    placed = carrier.recorded("calls")[0]
    return TwilioCall(
        client, placed["url"], placed["status_callback"], placed["sid"], to=placed["to"]
    )


def start_call(client: FlaskClient, practice_id: str = "p-1") -> tuple[dict[str, Any], TwilioCall]:
    """Ask for a verification call; return the API's answer and the call as placed."""
    response = request_call(client, practice_id)
    assert response.status_code == 201, response.get_json()
    return response.get_json(), last_placed_call(client)
