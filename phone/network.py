"""The phone network's side of the simulated carrier: the handsets the service calls and texts.

The service records outbound calls and texts in Redis (``SimulatedCarrier``); this
answers those calls, delivers those texts, and sends texts and calls to the service,
each as the signed webhooks Twilio would send.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from core.carrier import CALL_STATUS_EVENTS
from core.simulated_carrier import SimulatedCarrier
from phone.call import (
    API_VERSION,
    CallLeg,
    CallOutcome,
    Keypad,
    Listener,
    PhoneCall,
    silent_keypad,
    voicemail_keypad,
)
from phone.webhooks import PhoneError, Webhooks, describe_failure, inbound_text_form

# Twilio's error for a text still queued when its ValidityPeriod ran out.
VALIDITY_PERIOD_EXPIRED = "30036"
# How a call the phone does not answer can end.
UNANSWERED = ("no-answer", "busy", "failed")
MAX_SMS_REDIRECTS = 5


@dataclass(frozen=True)
class SimulatedCall:
    """A call the service placed, and what became of it (None: still ringing)."""

    sid: str
    account_sid: str
    to_number: str
    from_number: str
    url: str
    status_callback: str | None
    status_callback_events: tuple[str, ...]
    machine_detection: bool
    time_limit: int | None
    placed_at: float
    state: str | None

    @property
    def pending(self) -> bool:
        return self.state is None

    @classmethod
    def from_record(cls, record: dict[str, Any], state: str | None) -> SimulatedCall:
        return cls(
            sid=record["sid"],
            account_sid=record.get("account_sid", ""),
            to_number=record["to"],
            from_number=record["from"],
            url=record["url"],
            status_callback=record.get("status_callback"),
            status_callback_events=tuple(record.get("status_callback_events", CALL_STATUS_EVENTS)),
            machine_detection=bool(record.get("machine_detection")),
            time_limit=record.get("time_limit"),
            placed_at=float(record.get("at", 0)),
            state=state,
        )


@dataclass(frozen=True)
class SimulatedText:
    """A text the service sent, and what became of it (status None: not yet delivered)."""

    sid: str
    account_sid: str
    to_number: str
    from_number: str
    body: str
    status_callback: str | None
    validity_period: int | None
    sent_at: float
    status: str | None
    redacted: bool

    @classmethod
    def from_record(
        cls, record: dict[str, Any], status: str | None, redacted: bool
    ) -> SimulatedText:
        return cls(
            sid=record["sid"],
            account_sid=record.get("account_sid", ""),
            to_number=record["to"],
            from_number=record["from"],
            body=record.get("body", ""),
            status_callback=record.get("status_callback"),
            validity_period=record.get("validity_period"),
            sent_at=float(record.get("at", 0)),
            status=status,
            redacted=redacted,
        )


@dataclass(frozen=True)
class Reply:
    """A ``<Message>`` in the service's TwiML answer to a text."""

    to_number: str
    body: str


@dataclass
class TextExchange:
    """A text sent to the service, and what came back."""

    sid: str
    replies: list[Reply] = field(default_factory=list)
    # Texts the service sent to the sender through the carrier meanwhile, oldest first.
    texts: list[SimulatedText] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# How often the phone looks for a text the service's worker is about to send.
TEXT_POLL = 0.1


def new_sid(prefix: str) -> str:
    """A Twilio-style SID, e.g. ``SM`` and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class PhoneNetwork:
    """The handsets at the other end of the simulated carrier."""

    def __init__(
        self,
        carrier: SimulatedCarrier,
        webhooks: Webhooks,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.carrier = carrier
        self.webhooks = webhooks
        self.clock = clock
        self.sleep = sleep

    @property
    def service_number(self) -> str:
        return self.carrier.from_number

    # --- calls from the service ----------------------------------------------------

    def calls(self) -> list[SimulatedCall]:
        """Every call the service placed (recent history), newest first."""
        states = self.carrier.states("calls")
        return [
            SimulatedCall.from_record(record, states.get(record["sid"]))
            for record in self.carrier.recorded("calls")
        ]

    def pending_calls(self) -> list[SimulatedCall]:
        """Calls still ringing: nobody answered or declined them yet. Newest first."""
        return [call for call in self.calls() if call.pending]

    def find_call(self, sid: str | None = None) -> SimulatedCall:
        """The call with this SID, or the latest pending one when no SID is given."""
        if sid is None:
            pending = self.pending_calls()
            if not pending:
                raise PhoneError("no call is ringing")
            return pending[0]
        for call in self.calls():
            if call.sid == sid:
                return call
        raise PhoneError(f"no call {sid} was placed (recently)")

    def answer(
        self,
        call: SimulatedCall,
        keypad: Keypad,
        listener: Listener | None = None,
        machine: bool = False,
    ) -> CallOutcome:
        """Answer a ringing call, as a person at ``keypad`` or as a voicemail greeting."""
        if not self.carrier.claim("calls", call.sid, "answered"):
            raise PhoneError(f"call {call.sid} is no longer ringing")
        if machine:
            keypad = voicemail_keypad()
        player = PhoneCall(self.webhooks, self._leg(call, machine), keypad, listener, self.clock)
        try:
            player.ring()
            return player.run(call.url)
        finally:
            self.carrier.set_state("calls", call.sid, "ended")

    def leave_unanswered(
        self, call: SimulatedCall, status: str, listener: Listener | None = None
    ) -> CallOutcome:
        """Let a ringing call end unanswered: ``no-answer``, ``busy`` or ``failed``."""
        if status not in UNANSWERED:
            raise PhoneError(f"a call can end unanswered as {', '.join(UNANSWERED)}")
        if not self.carrier.claim("calls", call.sid, status):
            raise PhoneError(f"call {call.sid} is no longer ringing")
        player = PhoneCall(self.webhooks, self._leg(call, False), silent_keypad, listener)
        player.end_unanswered(status)
        return player.outcome

    def _leg(self, call: SimulatedCall, machine: bool) -> CallLeg:
        answered_by = None
        if call.machine_detection:
            answered_by = "machine_start" if machine else "human"
        return CallLeg(
            sid=call.sid,
            account_sid=call.account_sid or self.carrier.account_sid,
            from_number=call.from_number,
            to_number=call.to_number,
            direction="outbound-api",
            answered_by=answered_by,
            status_callback=call.status_callback,
            status_callback_events=call.status_callback_events,
            time_limit=call.time_limit,
        )

    # --- calls to the service ------------------------------------------------------

    def dial(
        self,
        from_number: str,
        keypad: Keypad,
        listener: Listener | None = None,
        path: str = "/ivr/inbound",
    ) -> CallOutcome:
        """Call the service's own number from ``from_number``: its voice webhook is ``path``."""
        leg = CallLeg(
            sid=new_sid("CA"),
            account_sid=self.carrier.account_sid,
            from_number=from_number,
            to_number=self.service_number,
            direction="inbound",
        )
        player = PhoneCall(self.webhooks, leg, keypad, listener, self.clock)
        return player.run(self.webhooks.public_url(path), first_status="ringing")

    # --- texts from the service ----------------------------------------------------

    def texts(self, to_number: str | None = None) -> list[SimulatedText]:
        """Texts the service sent (recent history), newest first; only to one number if given."""
        statuses = self.carrier.states("messages")
        redacted = {item["sid"] for item in self.carrier.recorded("redactions")}
        return [
            SimulatedText.from_record(
                record, statuses.get(record["sid"]), redacted=record["sid"] in redacted
            )
            for record in self.carrier.recorded("messages")
            if to_number is None or record["to"] == to_number
        ]

    def deliver(self, texts: list[SimulatedText]) -> list[str]:
        """Deliver texts not yet delivered, reporting each to its status callback.

        A text older than its ValidityPeriod fails instead (error 30036), as at Twilio.
        Returns the problems met on the way.
        """
        problems: list[str] = []
        for text in texts:
            if text.status is not None:
                continue
            expired = bool(text.validity_period) and (
                self.clock() - text.sent_at > float(text.validity_period or 0)
            )
            status = "failed" if expired else "delivered"
            if not self.carrier.claim("messages", text.sid, status):
                continue  # another phone delivered it first
            if expired:
                problems += self._message_status(text, "failed", ErrorCode=VALIDITY_PERIOD_EXPIRED)
            else:
                problems += self._message_status(text, "sent")
                problems += self._message_status(text, "delivered")
        return problems

    def _message_status(self, text: SimulatedText, status: str, **extra: str) -> list[str]:
        if not text.status_callback:
            return []
        form = {
            "AccountSid": text.account_sid or self.carrier.account_sid,
            "ApiVersion": API_VERSION,
            "From": text.from_number,
            "MessageSid": text.sid,
            "MessageStatus": status,
            "SmsSid": text.sid,
            "SmsStatus": status,
            "To": text.to_number,
            **extra,
        }
        try:
            answer = self.webhooks.send(text.status_callback, form)
        except PhoneError as exc:
            return [str(exc)]
        return [] if answer.ok else [describe_failure(answer)]

    # --- texts to the service ------------------------------------------------------

    def send_text(
        self, from_number: str, body: str, path: str = "/sms/inbound", wait: float = 0.0
    ) -> TextExchange:
        """Text the service's number (its SMS webhook is ``path``); collect what comes back.

        That is the TwiML reply, and the texts the service sent to ``from_number``
        through the carrier meanwhile, delivered (reporting their status) on the way.
        With no reply, up to ``wait`` seconds for a text to come: the service's worker
        sends the codeword after the webhook has answered.
        """
        already_sent = {text.sid for text in self.texts()}
        sid = new_sid("SM")
        exchange = TextExchange(sid=sid)
        form = inbound_text_form(
            account_sid=self.carrier.account_sid,
            sid=sid,
            from_number=from_number,
            to=self.service_number,
            body=body,
        )
        url = self.webhooks.public_url(path)
        for _ in range(MAX_SMS_REDIRECTS):
            answer = self.webhooks.send(url, form)
            root = _messaging_twiml(answer.body) if answer.ok and answer.is_xml else None
            if root is None:
                exchange.problems.append(describe_failure(answer) + "; Twilio sends no reply")
                break
            redirect = None
            for verb in root:
                if verb.tag == "Message":
                    exchange.replies.append(_reply(verb, from_number))
                elif verb.tag == "Redirect" and (verb.text or "").strip():
                    redirect = urljoin(url, (verb.text or "").strip())
                    break
            if redirect is None:
                break
            url = redirect
        new = [t for t in self.texts(from_number) if t.sid not in already_sent]
        deadline = self.clock() + wait
        while not new and not exchange.replies and not exchange.problems:
            if self.clock() >= deadline:
                break
            self.sleep(TEXT_POLL)
            new = [t for t in self.texts(from_number) if t.sid not in already_sent]
        exchange.problems += self.deliver(new)
        delivered = {t.sid: t for t in self.texts(from_number)}
        exchange.texts = [delivered.get(t.sid, t) for t in reversed(new)]
        return exchange


def _messaging_twiml(body: str) -> ET.Element | None:
    try:
        root = ET.fromstring(body)  # noqa: S314 - TwiML from the service under test
    except ET.ParseError:
        return None
    return root if root.tag == "Response" else None


def _reply(verb: ET.Element, sender: str) -> Reply:
    """A ``<Message>``: its text is its own, or that of its ``<Body>``."""
    body_element = verb.find("Body")
    text = body_element.text if body_element is not None else verb.text
    return Reply(to_number=verb.get("to") or sender, body=(text or "").strip())
