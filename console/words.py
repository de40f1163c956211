"""What the console says: refusals as sentences, audit events as lines, a call's progress.

Everything here turns the service's codes and records into words for a support
agent; nothing decides anything. Numbers arrive already masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from limits import RateLimitItem, parse_many

from core.carrier import CarrierTimedOut
from core.errors import (
    CarrierUnavailable,
    DependencyUnavailable,
    InvalidInput,
    RateLimited,
    ServiceError,
)
from ivr import session
from store import onetime
from store.directory import EventRecord, PracticeRecord, UserRecord
from store.errors import LimitExceeded

# -- waits and limits ------------------------------------------------------------------


def wait_in_words(seconds: int) -> str:
    """``42 minutes``, ``1 hour 5 minutes``, ``30 seconds``."""
    if seconds < 60:
        return _plural(max(1, seconds), "second")
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return _plural(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    return _plural(hours, "hour") + (f" {_plural(minutes, 'minute')}" if minutes else "")


def limits_in_words(setting: str) -> str:
    """A limit setting such as ``3/hour;10/day`` as ``3 an hour and 10 a day``."""
    return " and ".join(_limit_in_words(item) for item in parse_many(setting))


def _limit_in_words(item: RateLimitItem) -> str:
    period = item.GRANULARITY.name
    if item.multiples == 1:
        return f"{item.amount} {'an' if period == 'hour' else 'a'} {period}"
    return f"{item.amount} every {item.multiples} {period}s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def possessive(name: str) -> str:
    return f"{name}’" if name.endswith("s") else f"{name}’s"


# -- refusals --------------------------------------------------------------------------


def as_service_error(error: ServiceError | LimitExceeded) -> ServiceError:
    """A refusal from a flow as the API would answer it (a limit reached is a 429)."""
    return RateLimited.from_exceeded(error) if isinstance(error, LimitExceeded) else error


def call_refusal(error: ServiceError, practice: PracticeRecord, config: dict[str, str]) -> str:
    """Why a verification call was not placed, as a sentence."""
    name = practice.name
    if error.code == "office_number_unverified":
        return (
            f"{possessive(name)} office number is not verified, so no call may read the codeword "
            "to it. An admin of the practice can verify it from the main application."
        )
    if error.code == "no_codeword":
        return f"{name} has no codeword yet, so there is nothing to read out."
    if error.code == "call_in_progress":
        return (
            f"A verification call to {name} is already in progress. Follow it, or wait until "
            "it ends before placing another."
        )
    if isinstance(error, RateLimited):
        wait = f"Try again in {wait_in_words(error.retry_after or 1)}."
        limit = str(error.details.get("limit", ""))
        if limit == "verification_calls_per_practice":
            allowed = limits_in_words(config["VERIFICATION_CALLS_PER_PRACTICE"])
            return f"{name} has had all the verification calls it may have ({allowed}). {wait}"
        if limit == "verification_calls_per_support_token":
            allowed = limits_in_words(config["VERIFICATION_CALLS_PER_SUPPORT_TOKEN"])
            return f"Your support token has placed all the calls it may place ({allowed}). {wait}"
        return f"No more verification calls may be placed right now. {wait}"
    if isinstance(error, InvalidInput):
        return "Say who asked for the codeword in “Requested by”, e.g. “Dana Admin, owner”."
    if isinstance(error, CarrierUnavailable):
        return (
            "The phone carrier did not take the call, so none was placed. "
            f"Try again in {wait_in_words(error.retry_after or 30)}."
        )
    return general_refusal(error)


def text_refusal(
    error: ServiceError,
    practice: PracticeRecord,
    user: UserRecord | None,
    config: dict[str, str],
) -> str:
    """Why the codeword was not texted, as a sentence."""
    who = user.name if user else "That user"
    if error.code == "not_found":
        return f"{practice.name} has no such user any more; the page may be out of date."
    if error.code == "not_an_admin":
        return f"{who} is not an admin of {practice.name}: the codeword is texted only to admins."
    if error.code in ("cell_not_verified", "not_allowed"):
        return (
            f"{possessive(who)} cell number is not verified, so the codeword cannot be texted "
            "to it. They can verify it from the main application."
        )
    if error.code == "recipient_opted_out":
        return (
            f"{possessive(who)} cell has opted out of our texts (they replied STOP). "
            "Texting START to our number lets texts through again."
        )
    if error.code == "no_codeword":
        return f"{practice.name} has no codeword yet, so there is nothing to text."
    if isinstance(error, RateLimited):
        wait = f"Try again in {wait_in_words(error.retry_after or 1)}."
        limit = str(error.details.get("limit", ""))
        if limit == "sms_codeword_texts_per_number":
            allowed = limits_in_words(config["SMS_CODEWORD_TEXTS_PER_NUMBER"])
            return (
                f"{possessive(who)} cell has been texted the codeword as often as it may be "
                f"({allowed}). {wait}"
            )
        if limit == "sms_codeword_texts_per_practice":
            allowed = limits_in_words(config["SMS_CODEWORD_TEXTS_PER_PRACTICE"])
            return f"{practice.name} has had all the codeword texts it may have ({allowed}). {wait}"
        return f"No more codeword texts may be sent right now. {wait}"
    if isinstance(error, InvalidInput):
        return "Say who asked for the codeword in “Requested by”, e.g. “Dana Admin, owner”."
    if isinstance(error, CarrierTimedOut):
        return (
            "The phone carrier took the text but did not confirm it in time: it may still "
            "arrive. Check the audit trail before sending another."
        )
    if isinstance(error, CarrierUnavailable):
        return (
            "The phone carrier did not take the text, so nothing was sent. "
            f"Try again in {wait_in_words(error.retry_after or 30)}."
        )
    return general_refusal(error)


UNAVAILABLE = "The service cannot reach its database right now, so nothing was done. Try again."


def general_refusal(error: ServiceError) -> str:
    """Any other refusal, from its message: "There is no such practice."."""
    if isinstance(error, DependencyUnavailable):
        return UNAVAILABLE
    message = error.message.rstrip(".")
    if message.startswith("no such "):
        return f"There is {message}."
    return message[:1].upper() + message[1:] + "."


# -- the audit trail ---------------------------------------------------------------------

_VOICE = {
    "disclosed": "codeword read by phone to {to}",
    "locked": "call to {to} locked after three wrong codes; codeword not read",
    "voicemail": "call to {to} reached voicemail; codeword not read",
    "no-answer": "call to {to} not answered",
    "busy": "call to {to}: the line was busy",
    "failed": "call to {to} failed; codeword not read",
    "canceled": "call to {to} canceled",
    "completed": "call to {to} ended before the right code was keyed in",
    "expired": "call to {to} expired before the right code was keyed in",
    "office_number_verified": "office number {to} verified by a call",
}
_SMS = {
    "sent": "codeword texted to {to}",
    "unconfirmed": "codeword text to {to} handed to the carrier, unconfirmed",
    "delivered": "codeword text to {to} delivered",
    "undelivered": "codeword text to {to} not delivered",
    "failed": "codeword text to {to} failed",
    "cell_number_verified": "cell {to} verified by a texted code",
    "opted_out": "admin cell {to} opted out of texts",
    "opted_in": "admin cell {to} opted back in to texts",
}
_APP = {
    "disclosed": "codeword shown in the main application",
    "changed": "codeword changed",
    "generated": "new codeword generated",
    "office_number_set": "office number set to {to}",
    "office_number_changed": "office number changed to {to}, unverified",
    "office_number_verified": "office number {to} vouched for as verified",
    "office_number_unverified": "office number {to} marked unverified",
    "cell_number_set": "cell {to} given to a user, unverified",
    "cell_number_changed": "a user's cell changed to {to}, unverified",
    "cell_number_removed": "cell {to} removed from a user",
    "cell_number_verified": "cell {to} vouched for as verified",
    "cell_number_unverified": "cell {to} marked unverified",
    "admin_added": "admin added",
    "role_changed_to_admin": "user made an admin",
    "role_changed_to_staff": "admin made staff",
    "admin_removed": "admin removed",
}
_CHANNELS = {"voice": _VOICE, "sms": _SMS, "app": _APP}
# Who acted, when it was not a person with a token.
_ACTORS = {"self": "by the admin’s own text", "twilio": "reported by the carrier"}


def audit_line(event: EventRecord) -> str:
    """One audit event in words, e.g. "codeword read by phone to +1******0100, at Dana
    Admin’s request, by helpdesk"."""
    to = event.to or "an unknown number"
    template = _CHANNELS.get(event.channel, {}).get(event.outcome)
    if template is None and event.outcome.startswith("office_verification_"):
        status = event.outcome.removeprefix("office_verification_").replace("-", " ")
        template = "office number check call to {to}: " + status
    if template is None:
        template = event.outcome.replace("_", " ").replace("-", " ")
        if event.to:
            template += " ({to})"
    line = template.format(to=to)
    if event.requested_by:
        line += f", at {possessive(event.requested_by)} request"
    line += ", " + _ACTORS.get(event.actor, f"by {event.actor}")
    return line


# -- a call's progress -------------------------------------------------------------------

# The stages a call goes through, as the console's progress bar shows them.
STAGES = ("queued", "ringing", "answered", "ended")
_STAGE = {"queued": 0, "ringing": 1, "in-progress": 2}
_ENDINGS = {
    "disclosed": "The right code was keyed in and the codeword was read out. Done.",
    "locked": "Locked: three wrong codes were keyed in. The codeword was not read.",
    "voicemail": "Voicemail answered, so nothing was read. Try again later.",
    "no-answer": "Nobody answered the office phone.",
    "busy": "The office line was busy.",
    "failed": "The call failed; the codeword was not read.",
    "canceled": "The call was canceled.",
    "completed": "The call ended before the right code was keyed in.",
    "expired": "The challenge code expired before it was keyed in.",
    "verified": "The office number was verified.",
}


@dataclass(frozen=True)
class CallProgress:
    """Where a call stands, in the API's status word and in a sentence."""

    status: str
    stage: str
    sentence: str
    final: bool
    tries_left: int


def call_progress(call: session.CallSession, now: float, to_masked: str) -> CallProgress:
    """The call's status and what it means, e.g. "A wrong code was keyed in: 2 tries left"."""
    status = call.status_at(now)
    tries_left = max(0, onetime.MAX_WRONG_CODES - call.wrong_codes)
    final = status not in session.IN_PROGRESS
    if final:
        sentence = _ENDINGS.get(status, f"The call ended: {status}.")
    elif status == "queued":
        sentence = f"Placing the call to {to_masked}…"
    elif status == "ringing":
        sentence = f"The office phone ({to_masked}) is ringing."
    elif call.wrong_codes:
        left = "1 try" if tries_left == 1 else f"{tries_left} tries"
        sentence = f"Answered. A wrong code was keyed in: {left} left."
    else:
        sentence = "Answered. Waiting for the code to be keyed in."
    stage = STAGES[-1] if final else STAGES[_STAGE.get(status, 0)]
    return CallProgress(status, stage, sentence, final, tries_left)
