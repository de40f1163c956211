"""Texting the codeword: through the REST API only, to an admin's verified cell, by the worker.

Both ways a codeword text starts end here: an admin's CODEWORD keyword
(sms/codeword_requests.py) and a support agent's request (api/codeword_texts.py). The
request decides, reserves the text's rate-limit slots and keeps it in SQL (``ask``); it
answers at once and never waits for Twilio. The worker sends it (``send_queued_text``)
with a short ValidityPeriod and a status callback, then records, in one transaction with
the audit event, what the send leaves: the body's redaction at Twilio (after the
delivery report, or REDACT_AFTER_SECONDS if none comes), the notices to the practice's
other admins and the outcome event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app

from core import disclosures, queue, rate_limits
from core.carrier import CarrierTimedOut, RecipientOptedOut
from core.disclosures import Channel, Disclosure
from core.errors import CarrierUnavailable, Conflict, NotFound
from core.extensions import carrier, directory
from core.observability import DISCLOSURES
from core.public_urls import public_url
from sms.messages import Texts
from store import clock, outbox
from store.codeword_texts import SENT, UNCONFIRMED, CodewordTexts, TextRecord
from store.directory import TWILIO_ACTOR, PracticeRecord, UserRecord
from store.models import CodewordText
from store.numbers import mask
from store.outbox_rows import Outbox
from store.ratelimit import Reservation

log = logging.getLogger(__name__)

# Seconds Twilio may keep the text queued before dropping it; the contract allows 900.
VALIDITY_PERIOD = 600
# The actor recorded when admins text CODEWORD themselves.
SELF = "self"
# Seconds between sends while Twilio fails: a codeword asked for minutes ago is no use,
# so a few quick tries, then the text is failed (the admin can ask again).
RETRY_SCHEDULE = (5.0, 30.0, 120.0)


class NoCodeword(Conflict):
    code = "no_codeword"


@dataclass(frozen=True)
class QueuedText:
    """A codeword text as its requester sees it: our id, its status, the masked number."""

    id: str
    status: str
    to: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "to": self.to}


def codeword_texts() -> CodewordTexts:
    return cast(CodewordTexts, current_app.extensions["codeword_texts"])


def may_receive_codeword(user: UserRecord) -> bool:
    """Only an admin's verified cell ever gets the codeword."""
    return user.role == "admin" and bool(user.cell_number) and user.cell_number_verified


def status_callback_url(practice_id: str, text_id: str) -> str:
    """Where Twilio reports the text's delivery; the practice and our id ride in the
    signed query (the id finds a text whose MessageSid we never heard)."""
    return public_url("sms.status", practice_id=practice_id, text=text_id)


def ask(
    practice: PracticeRecord,
    user: UserRecord,
    reservation: Reservation,
    *,
    actor: str,
    requested_by: str | None,
) -> QueuedText:
    """Keep a codeword text for the worker to send, with the rate-limit slots the caller
    reserved for it (core/rate_limits.py): the worker gives them back if the text
    provably never goes. Raises NoCodeword, RecipientOptedOut or Conflict."""
    if not may_receive_codeword(user) or user.cell_number is None:
        raise Conflict("codeword texts go only to an admin's verified cell", code="not_allowed")
    number = user.cell_number
    if directory().is_opted_out(number):
        raise RecipientOptedOut("the recipient has opted out of texts from this number")
    if not practice.has_codeword:
        raise NoCodeword("the practice has no codeword yet")
    text, job = codeword_texts().ask(
        practice_id=practice.id,
        user_id=user.id,
        to_number=number,
        actor=actor,
        requested_by=requested_by,
        reserved_at=reservation.taken_at,
        now=clock.now(),
    )
    # Kept: from here on only the worker, knowing the text never went, gives them back.
    reservation.keep()
    queue.enqueue([job])
    # Counted when accepted: the worker sending it has no /metrics of its own.
    DISCLOSURES.labels("sms").inc()
    return QueuedText(id=text.id, status="queued", to=mask(number) or "")


def text_codeword_on_request(
    practice_id: str, user_id: str, *, actor: str, requested_by: str
) -> QueuedText:
    """Support asks us to text the codeword to a user of a practice: decide, then queue."""
    practice = directory().get_practice(practice_id)
    if practice is None:
        raise NotFound("no such practice")
    user = directory().get_user(practice_id, user_id)
    if user is None:
        raise NotFound("no such user")
    if user.role != "admin":
        raise Conflict("the codeword is texted only to practice admins", code="not_an_admin")
    if not user.cell_number or not user.cell_number_verified:
        raise Conflict("the user has no verified cell number", code="cell_not_verified")
    if directory().is_opted_out(user.cell_number):
        raise RecipientOptedOut("the recipient has opted out of texts from this number")
    reservation = rate_limits.reserve_codeword_text(user.cell_number, practice.id)
    with rate_limits.given_back_on_failure(reservation):
        return ask(practice, user, reservation, actor=actor, requested_by=requested_by)


# The worker's side ------------------------------------------------------------------


def send_queued_text(text_id: str) -> str:
    """Send one codeword text, if due and held by no one else; what came of it."""
    box = queue.outbox()
    row = box.claim(CodewordText, text_id, now=clock.now(), lease=queue.lease())
    if row is None:
        return "skipped"
    practice = directory().get_practice(row.practice_id)
    user = directory().get_user(row.practice_id, row.user_id)
    # Still the admin's verified cell, and still a codeword to send, as when asked.
    if practice is None or user is None or not may_receive_codeword(user):
        return _refuse(row, "no longer allowed")
    if user.cell_number != row.to_number or directory().is_opted_out(row.to_number):
        return _refuse(row, "no longer allowed")
    codeword = directory().read_codeword(practice.id)
    if codeword is None:
        return _refuse(row, "no codeword")
    body = Texts.from_config(current_app.config).codeword(
        practice.name, codeword, by_support=row.actor != SELF
    )
    try:
        sid: str | None = carrier().send_sms(
            to=row.to_number,
            body=body,
            status_callback=status_callback_url(practice.id, row.id),
            validity_period=VALIDITY_PERIOD,
        )
    except RecipientOptedOut:
        directory().opt_out(row.to_number, actor=TWILIO_ACTOR)
        return _refuse(row, "opted out")
    except CarrierTimedOut:
        # It may have reached the admin: audited, notified, told; redacted once its
        # delivery report names it.
        sid = None
    except CarrierUnavailable as exc:
        return _try_later(box, row, exc.code)
    status = SENT if sid else UNCONFIRMED
    disclosure = Disclosure(
        practice_id=row.practice_id,
        practice_name=practice.name,
        channel=Channel.SMS,
        actor=row.actor,
        requested_by=row.requested_by,
        to=row.to_number,
        at=clock.now(),
        reference=sid,
        by_support=row.actor != SELF,
        outcome=status,
        key=row.id,
    )
    # One transaction: the text marked sent, its audit event, the notices and outcome
    # event every disclosure leaves (core/disclosures.py), and its redaction.
    jobs = codeword_texts().sent(
        row,
        status=status,
        message_sid=sid,
        intents=disclosures.follow_ups(disclosure) + _redaction(row, sid),
        now=disclosure.at,
    )
    queue.enqueue(jobs)
    log.info(
        "codeword text %s for practice %s to %s %s",
        row.id,
        row.practice_id,
        mask(row.to_number),
        status,
        extra={"message_sid": sid},
    )
    return status


def _redaction(row: CodewordText, sid: str | None) -> list[outbox.Intent]:
    """The body's redaction at Twilio, due REDACT_AFTER_SECONDS from now unless the
    delivery report comes first; a text whose MessageSid we never heard is redacted
    once its report names it (sms/delivery.py)."""
    if sid is None:
        return []
    due = clock.now() + float(current_app.config["REDACT_AFTER_SECONDS"])
    return [outbox.RedactionDue(sid, row.practice_id, row.to_number, due_at=due)]


def _refuse(row: CodewordText, why: str) -> str:
    queue.outbox().settle(CodewordText, row, status="refused", last_error=why)
    _give_back(row)
    log.warning(
        "codeword text %s for practice %s to %s not sent: %s",
        row.id,
        row.practice_id,
        mask(row.to_number),
        why,
    )
    return "refused"


def _try_later(box: Outbox, row: CodewordText, error: str) -> str:
    if row.attempts > len(RETRY_SCHEDULE):
        box.settle(CodewordText, row, status="failed", last_error=error)
        _give_back(row)
        log.error(
            "codeword text %s for practice %s to %s failed: %s",
            row.id,
            row.practice_id,
            mask(row.to_number),
            error,
        )
        return "failed"
    wait = RETRY_SCHEDULE[row.attempts - 1]
    box.settle(CodewordText, row, due_at=clock.now() + wait, last_error=error)
    log.warning(
        "codeword text %s to %s not sent yet: %s; next attempt in %.0f s",
        row.id,
        mask(row.to_number),
        error,
        wait,
    )
    return "retry"


def _give_back(row: CodewordText) -> None:
    """The text never went (Twilio refused it, or it was no longer allowed): its slots
    go back to the limits, as a request refused at once spends none."""
    if row.reserved_at is not None:
        reservation = Reservation(
            row.reserved_at, taken=rate_limits.codeword_text_rules(row.to_number, row.practice_id)
        )
        rate_limits.give_back(reservation)


def find_text(text_id: str | None, message_sid: str, delivery: str) -> TextRecord | None:
    """Note Twilio's delivery report on the text it is about, if we know it."""
    return codeword_texts().reported(text_id=text_id, message_sid=message_sid, delivery=delivery)
