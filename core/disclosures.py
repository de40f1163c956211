"""A codeword disclosure happened: what that entails, in one place, for voice, SMS and the app.

``codeword_disclosed`` is called once the codeword is read out on a call (ivr/) or
handed to the main application (api/); a codeword text, sent by the worker, records
the same through ``follow_ups`` in the transaction that marks it sent (sms/). Either
way the audit event is written together with what the disclosure leaves to do (the
outbox, store/outbox.py): a notice to every other admin and, with EVENTS_URL set, the
``codeword.disclosed`` outcome event. The worker sends them after the response; a
killed process or a flushed Redis delays them but cannot lose them.

The notice goes to every admin of the practice with a verified cell that has not
opted out, and says when, how, to which masked number and at whose request, never
the codeword. The number the codeword went to gets no notice of its own
disclosure; after an app read, which names no number, every such admin is told.
One notice per disclosure and admin, never two.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from flask import current_app, has_request_context
from sqlalchemy.exc import SQLAlchemyError

from core import events, queue
from core.carrier import CarrierTimedOut, RecipientOptedOut
from core.errors import ServiceError
from core.extensions import carrier, directory
from core.observability import DISCLOSURES, note_outcome
from core.segments import fit_name, gsm7_only, shorten
from store import clock, outbox
from store.directory import TWILIO_ACTOR
from store.models import DisclosureNotice
from store.numbers import mask
from store.outbox_rows import Outbox

log = logging.getLogger(__name__)

# The audit outcome of a codeword text Twilio took but did not confirm in time: it
# may be on its way, so it is audited and told, but not counted.
UNCONFIRMED = "unconfirmed"
# Longest a requester's name gets in a disclosure notice.
MAX_REQUESTER = 40
# Seconds between attempts of a notice while Twilio fails; after the last, it is failed.
NOTICE_RETRY_SCHEDULE = (30.0, 120.0, 600.0, 1800.0, 3600.0)


class Channel(StrEnum):
    """How the codeword went out (the audit trail's ``channel``)."""

    VOICE = "voice"
    SMS = "sms"
    APP = "app"


@dataclass(frozen=True)
class Disclosure:
    """A codeword disclosure: where it went, at whose request, and how it is recorded."""

    practice_id: str
    practice_name: str
    channel: Channel
    actor: str  # the token's name, or "self" for an admin's own CODEWORD text
    requested_by: str | None
    to: str | None  # the number the codeword went to, in full; None for the app
    at: float
    reference: str | None = None  # the CallSid or MessageSid
    by_support: bool = False
    outcome: str = "disclosed"  # the audit event's outcome: disclosed, sent or unconfirmed
    # What makes it one disclosure (a call's session, a codeword text's id), so that
    # a repeat makes no second outcome event; None for one of its own (an app read).
    key: str | None = None

    @property
    def requester(self) -> str:
        """Who asked, as the notice names them."""
        return self.requested_by or self.actor


def follow_ups(disclosure: Disclosure) -> list[outbox.Intent]:
    """What a disclosure leaves to do, written with its audit event: the notices to the
    other admins and the ``codeword.disclosed`` outcome event."""
    intents: list[outbox.Intent] = [
        outbox.NoticesToAdmins(
            practice_id=disclosure.practice_id,
            channel=disclosure.channel.value,
            disclosed_to=disclosure.to,
            requested_by=disclosure.requester,
            by_support=disclosure.by_support,
        )
    ]
    if events.enabled():
        key = disclosure.key or secrets.token_hex(12)
        intents.append(
            events.codeword_disclosed(
                practice_id=disclosure.practice_id,
                channel=disclosure.channel.value,
                to=disclosure.to,
                actor=disclosure.actor,
                requested_by=disclosure.requested_by,
                reference=disclosure.reference,
                subject=f"{disclosure.channel.value}:{key}",
                at=disclosure.at,
            )
        )
    return intents


def codeword_disclosed(disclosure: Disclosure) -> None:
    """Record a disclosure: the audit event with its notices and outcome event (one
    transaction), the metric, the request's outcome; then the worker is handed the rest.

    A call reads the codeword and the app returns it only after this returns, so an
    audit that fails here raises and nothing goes out unrecorded.
    """
    jobs = directory().record_event(
        disclosure.practice_id,
        channel=disclosure.channel.value,
        outcome=disclosure.outcome,
        actor=disclosure.actor,
        to_number=disclosure.to,
        requested_by=disclosure.requested_by,
        reference=disclosure.reference,
        intents=follow_ups(disclosure),
        now=disclosure.at,
    )
    counted(disclosure)
    queue.enqueue(jobs)


def counted(disclosure: Disclosure) -> None:
    """Count a recorded disclosure and name it in the request's log line."""
    confirmed = disclosure.outcome != UNCONFIRMED
    if confirmed:
        DISCLOSURES.labels(disclosure.channel.value).inc()
    if has_request_context():
        note_outcome("disclosed" if confirmed else disclosure.outcome)


def notice_text(disclosure: Disclosure, *, brand: str, support: str) -> str:
    """Tell another admin the codeword was handed out: when, how, where, at whose request.

    Never the codeword; always within two GSM-7 segments.
    """
    when = datetime.fromtimestamp(disclosure.at, UTC).strftime("on %Y-%m-%d at %H:%M UTC")
    if disclosure.channel is Channel.APP:
        # Read by the main application for a signed-in admin: no number, no requester to name.
        what = f"shown in the {brand} app {when}"
    else:
        how = "read out on a call to" if disclosure.channel is Channel.VOICE else "texted to"
        to_masked = mask(disclosure.to) or "an unknown number"
        via = " through support" if disclosure.by_support else " by texting CODEWORD"
        who = shorten(gsm7_only(disclosure.requester), MAX_REQUESTER)
        what = f"{how} {to_masked} {when}, requested by {who}{via}"
    return fit_name(
        lambda name: (
            f"{brand}: the Practice Codeword of {name} was {what}. Not expected? "
            f"Contact {support}. Reply STOP to opt out."
        ),
        gsm7_only(disclosure.practice_name),
    )


# The worker's side: one notice row, one text ------------------------------------------


def send_notice(notice_id: int) -> str:
    """Text one admin of one disclosure, if due and held by no one else; what came of it."""
    box = queue.outbox()
    row = box.claim(DisclosureNotice, notice_id, now=clock.now(), lease=queue.lease())
    if row is None:
        return "skipped"
    practice = directory().get_practice(row.practice_id)
    if practice is None or directory().is_opted_out(row.to_number):
        box.settle(DisclosureNotice, row, status="skipped")
        return "skipped"
    config = current_app.config
    body = notice_text(
        Disclosure(
            practice_id=row.practice_id,
            practice_name=practice.name,
            channel=Channel(row.channel),
            actor=row.requested_by,
            requested_by=row.requested_by,
            to=row.disclosed_to,
            at=row.disclosed_at,
            by_support=row.by_support,
        ),
        brand=config["BRAND_NAME"],
        support=config["SUPPORT_CONTACT"],
    )
    try:
        carrier().send_sms(to=row.to_number, body=body)
    except RecipientOptedOut:
        log.info("disclosure notice to %s refused: opted out at Twilio", mask(row.to_number))
        _keep_opt_out(row.to_number)
        box.settle(DisclosureNotice, row, status="skipped", last_error="opted out")
        return "skipped"
    except CarrierTimedOut:
        # Twilio may have sent it: sending again could tell the admin twice.
        log.warning("disclosure notice %s to %s unconfirmed", row.id, mask(row.to_number))
        box.settle(DisclosureNotice, row, status=UNCONFIRMED, last_error="carrier timeout")
        return UNCONFIRMED
    except ServiceError as exc:
        return _notice_later(box, row, exc.code)
    box.settle(DisclosureNotice, row, status="sent", last_error=None)
    log.info(
        "disclosure notice for practice %s (%s) sent to %s",
        row.practice_id,
        row.channel,
        mask(row.to_number),
    )
    return "sent"


def _notice_later(box: Outbox, row: DisclosureNotice, error: str) -> str:
    if row.attempts > len(NOTICE_RETRY_SCHEDULE):
        box.settle(DisclosureNotice, row, status="failed", last_error=error)
        log.error("disclosure notice %s to %s failed: %s", row.id, mask(row.to_number), error)
        return "failed"
    box.settle(
        DisclosureNotice,
        row,
        due_at=clock.now() + NOTICE_RETRY_SCHEDULE[row.attempts - 1],
        last_error=error,
    )
    log.warning("disclosure notice %s to %s not sent yet: %s", row.id, mask(row.to_number), error)
    return "retry"


def _keep_opt_out(number: str) -> None:
    try:
        directory().opt_out(number, actor=TWILIO_ACTOR)
    except SQLAlchemyError as exc:
        log.error("opt-out of %s not stored: %s", mask(number), type(exc).__name__)
