"""One phone call, following the service's TwiML as Twilio does.

``<Say>`` is heard as text, ``<Pause>`` as a pause marker; ``<Gather>`` asks the keypad
for digits and posts them to its action (or, on silence, posts an empty ``Digits`` if
``actionOnEmptyResult`` is true and otherwise carries on with the next verb);
``<Redirect>`` fetches its URL; ``<Hangup>``, ``<Reject>`` or the end of the document
end the call, and the final status callback reports it.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urljoin

from phone.webhooks import PhoneError, WebhookAnswer, Webhooks, describe_failure

API_VERSION = "2010-04-01"
KEYPAD = "0123456789*#"
# What Twilio reports for the status callback events a call asks for.
EVENT_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}
# A flow that keeps redirecting to itself would otherwise never end.
MAX_WEBHOOKS = 50
MAX_SAY_LOOP = 10
# SSML <say-as> kinds that are read out a character at a time.
SPELLED = {"spell-out", "characters"}


@dataclass(frozen=True)
class Heard:
    """One thing that happened on the call, as the person on the phone notices it.

    ``kind`` is one of: say, play, pause, gather, keyed, silence, redirect, webhook,
    problem, ended.
    """

    kind: str
    text: str


@dataclass(frozen=True)
class GatherPrompt:
    """What a ``<Gather>`` waits for."""

    num_digits: int | None
    finish_on_key: str
    timeout: int

    def describe(self) -> str:
        amount = f"{self.num_digits} digit(s)" if self.num_digits else "digits"
        finish = f", {self.finish_on_key} to finish" if self.finish_on_key else ""
        return f"key {amount}{finish}"


# The person (or machine) at the keypad: the keys pressed for a prompt, "" for
# silence, or None to hang up.
Keypad = Callable[[GatherPrompt], str | None]
Listener = Callable[[Heard], None]


def silent_keypad(prompt: GatherPrompt) -> str:
    """Nobody there: no keys."""
    return ""


def voicemail_keypad(prompts: int = 3) -> Keypad:
    """A voicemail box: presses nothing, and stops recording after a few prompts."""
    heard = 0

    def keypad(prompt: GatherPrompt) -> str | None:
        nonlocal heard
        heard += 1
        return "" if heard <= prompts else None

    return keypad


@dataclass(frozen=True)
class CallLeg:
    """The call as Twilio describes it in every webhook."""

    sid: str
    account_sid: str
    from_number: str
    to_number: str
    direction: str  # "outbound-api" or "inbound"
    answered_by: str | None = None  # only when the call asked for machine detection
    status_callback: str | None = None
    status_callback_events: tuple[str, ...] = ()
    time_limit: int | None = None

    def params(self, call_status: str) -> dict[str, str]:
        """The form fields Twilio sends with every voice webhook of this call."""
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": call_status,
            "Called": self.to_number,
            "Caller": self.from_number,
            "Direction": self.direction,
            "From": self.from_number,
            "To": self.to_number,
        }
        if self.answered_by:
            form["AnsweredBy"] = self.answered_by
        return form


@dataclass
class CallOutcome:
    """How a call went: what was heard, who ended it, and how long it lasted."""

    heard: list[Heard] = field(default_factory=list)
    ended_by: str = ""  # service, end-of-document, caller, time-limit, error
    duration: int = 0

    @property
    def said(self) -> list[str]:
        """Everything the service said on the call, in order."""
        return [h.text for h in self.heard if h.kind == "say"]

    @property
    def problems(self) -> list[str]:
        return [h.text for h in self.heard if h.kind == "problem"]


@dataclass(frozen=True)
class _Document:
    url: str
    root: ET.Element


class _CarryOn:
    """A silent ``<Gather>`` without actionOnEmptyResult: on to the next verb."""


CARRY_ON = _CarryOn()


class PhoneCall:
    """Plays one answered call: fetches TwiML, speaks it, keys digits, reports status."""

    def __init__(
        self,
        webhooks: Webhooks,
        leg: CallLeg,
        keypad: Keypad,
        listener: Listener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.webhooks = webhooks
        self.leg = leg
        self.keypad = keypad
        self.listener = listener
        self.clock = clock
        self.outcome = CallOutcome()
        self._answered_at = 0.0
        self._webhooks_sent = 0
        self._sequence = 0

    # --- the call's life ------------------------------------------------------------

    def ring(self) -> None:
        """Report the call initiated and ringing, as far as the call asked to hear."""
        for event in ("initiated", "ringing"):
            if event in self.leg.status_callback_events:
                self._status_callback(EVENT_STATUS[event])

    def run(self, url: str, first_status: str = "in-progress") -> CallOutcome:
        """Answer: fetch ``url`` and follow the TwiML until the call ends."""
        self._answered_at = self.clock()
        if "answered" in self.leg.status_callback_events:
            self._status_callback("in-progress")
        document = self._fetch(url, {}, "POST", first_status)
        while document is not None:
            document = self._play(document)
        self.outcome.duration = max(0, round(self.clock() - self._answered_at))
        self._hear("ended", _ENDINGS.get(self.outcome.ended_by, self.outcome.ended_by))
        if self._reports("completed"):
            self._status_callback("completed", CallDuration=str(self.outcome.duration))
        return self.outcome

    def end_unanswered(self, call_status: str) -> None:
        """The call was never answered: report how it ended (busy, no-answer, failed)."""
        # A busy line never rings; a failed call is never even initiated.
        progress = {"no-answer": ("initiated", "ringing"), "busy": ("initiated",)}
        for event in progress.get(call_status, ()):
            if event in self.leg.status_callback_events:
                self._status_callback(EVENT_STATUS[event])
        self.outcome.ended_by = call_status
        self._hear("ended", f"the call ended unanswered: {call_status}")
        if self._reports("completed"):
            self._status_callback(call_status, CallDuration="0")

    # --- TwiML ---------------------------------------------------------------------

    def _play(self, document: _Document) -> _Document | None:
        """Carry out one document's verbs; the next document, or None once the call ends."""
        for verb in document.root:
            if verb.tag in {"Say", "Play", "Pause"}:
                self._speak(verb)
            elif verb.tag == "Gather":
                gathered = self._gather(document.url, verb)
                if not isinstance(gathered, _CarryOn):
                    return gathered
            elif verb.tag == "Redirect":
                target = (verb.text or "").strip()
                if not target:
                    self._fail("<Redirect> without a URL")
                    return None
                target = urljoin(document.url, target)
                self._hear("redirect", target)
                return self._fetch(target, {}, verb.get("method", "POST"))
            elif verb.tag in {"Hangup", "Reject"}:
                self.outcome.ended_by = "service"
                return None
            else:
                self._hear("problem", f"<{verb.tag}> is beyond this phone; skipped")
        self.outcome.ended_by = "end-of-document"
        return None

    def _speak(self, verb: ET.Element) -> None:
        if verb.tag == "Say":
            text = spoken_text(verb)
            for _ in range(_loop_count(verb)):
                self._hear("say", text)
        elif verb.tag == "Play":
            self._hear("play", (verb.text or "").strip() or verb.get("digits", ""))
        else:
            self._hear("pause", f"{_int(verb.get('length'), 1)} s")

    def _gather(self, url: str, verb: ET.Element) -> _Document | _CarryOn | None:
        """Prompt, key digits, post them: the next document, None (call over), or carry on."""
        for child in verb:
            if child.tag in {"Say", "Play", "Pause"}:
                self._speak(child)
            else:
                self._hear("problem", f"<{child.tag}> inside <Gather> is ignored by Twilio")
        num_digits = _int(verb.get("numDigits"), 0) or None
        prompt = GatherPrompt(
            num_digits=num_digits,
            finish_on_key=verb.get("finishOnKey", "#"),
            timeout=_int(verb.get("timeout"), 5),
        )
        self._hear("gather", prompt.describe())
        keys = self.keypad(prompt)
        if keys is None:
            self.outcome.ended_by = "caller"
            return None
        if self._past_time_limit():
            self.outcome.ended_by = "time-limit"
            return None
        digits, finished_on = keyed_digits(keys, prompt)
        action = urljoin(url, verb.get("action") or url)
        method = verb.get("method", "POST")
        if digits:
            self._hear("keyed", digits)
            return self._fetch(action, {"Digits": digits, "FinishedOnKey": finished_on}, method)
        self._hear("silence", "")
        if verb.get("actionOnEmptyResult", "false").lower() == "true":
            return self._fetch(action, {"Digits": "", "FinishedOnKey": finished_on}, method)
        return CARRY_ON

    # --- webhooks ------------------------------------------------------------------

    def _fetch(
        self, url: str, extra: dict[str, str], method: str, call_status: str = "in-progress"
    ) -> _Document | None:
        """Request TwiML; a document to play, or None (Twilio would end the call)."""
        if self._webhooks_sent >= MAX_WEBHOOKS:
            self._fail(f"{MAX_WEBHOOKS} webhooks on one call; hanging up")
            return None
        self._webhooks_sent += 1
        self._hear("webhook", f"{method.upper()} {url}")
        try:
            answer = self.webhooks.send(url, {**self.leg.params(call_status), **extra}, method)
        except PhoneError as exc:
            self._fail(str(exc))
            return None
        root = _twiml(answer)
        if root is None:
            self._fail(describe_failure(answer) + "; Twilio would end the call")
            return None
        return _Document(url, root)

    def _reports(self, event: str) -> bool:
        if not self.leg.status_callback:
            return False
        # Twilio reports the call's end even when no events were named.
        return event in self.leg.status_callback_events or not self.leg.status_callback_events

    def _status_callback(self, call_status: str, **extra: str) -> None:
        if not self.leg.status_callback:
            return
        form = {
            **self.leg.params(call_status),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(self._sequence),
            "Timestamp": format_datetime(datetime.now(UTC)),
            **extra,
        }
        self._sequence += 1
        self._hear("webhook", f"status callback: {call_status}")
        try:
            answer = self.webhooks.send(self.leg.status_callback, form)
        except PhoneError as exc:
            self._hear("problem", str(exc))
            return
        if not answer.ok:
            self._hear("problem", describe_failure(answer))

    # --- small things --------------------------------------------------------------

    def _fail(self, problem: str) -> None:
        self._hear("problem", problem)
        self.outcome.ended_by = "error"

    def _past_time_limit(self) -> bool:
        limit = self.leg.time_limit
        return bool(limit) and self.clock() - self._answered_at > float(limit or 0)

    def _hear(self, kind: str, text: str) -> None:
        heard = Heard(kind, text)
        self.outcome.heard.append(heard)
        if self.listener is not None:
            self.listener(heard)


_ENDINGS = {
    "service": "the service hung up",
    "end-of-document": "the TwiML ran out, so Twilio hung up",
    "caller": "the phone hung up",
    "time-limit": "the call reached its time limit",
    "error": "the call failed",
}


def keyed_digits(keys: str, prompt: GatherPrompt) -> tuple[str, str]:
    """The digits Twilio would collect from these key presses, and the finishing key."""
    digits = ""
    for key in "".join(keys.split()):
        if prompt.finish_on_key and key == prompt.finish_on_key:
            return digits, key
        if key in KEYPAD:
            digits += key
            if prompt.num_digits and len(digits) == prompt.num_digits:
                break
    return digits, ""


def spoken_text(say: ET.Element) -> str:
    """What a ``<Say>`` sounds like, SSML included: spelled-out text a character at a time."""
    parts = [say.text or ""]
    for element in say:
        if element.tag == "say-as" and element.get("interpret-as") in SPELLED:
            parts.append(" " + " ".join("".join(element.itertext())) + " ")
        elif element.tag == "break":
            parts.append(" ")
        else:
            parts.append(spoken_text(element))
        parts.append(element.tail or "")
    return " ".join("".join(parts).split())


def _twiml(answer: WebhookAnswer) -> ET.Element | None:
    """The ``<Response>`` of a TwiML answer, or None if Twilio could not use it."""
    if not answer.ok or not answer.is_xml:
        return None
    try:
        root = ET.fromstring(answer.body)  # noqa: S314 - TwiML from the service under test
    except ET.ParseError:
        return None
    return root if root.tag == "Response" else None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _loop_count(verb: ET.Element) -> int:
    loop = _int(verb.get("loop"), 1)
    # loop="0" repeats until the call ends; a few times says as much.
    return MAX_SAY_LOOP if loop <= 0 else min(loop, MAX_SAY_LOOP)
