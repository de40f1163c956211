"""A codeword disclosure happened: what that entails, in one place, for voice, SMS and the app.

``codeword_disclosed`` is called once the codeword is read out on a call (ivr/),
texted (sms/) or handed to the main application (api/). It appends the audit
event, counts the disclosure, notes the outcome for the request's log line, and
then, through ``after_disclosure``, has the practice's other admins told.

The notice goes to every admin of the practice with a verified cell that has not
opted out, and says when, how, to which masked number and at whose request, never
the codeword. The number the codeword went to gets no notice of its own
disclosure; after an app read, which names no number, every such admin is told.

Notices go after the response: the request that disclosed the codeword answers
first (``response.call_on_close``), then the admins are looked up (one query) and
texted. A codeword text still going out on the background pool after the webhook
gave up waiting for it is followed by its notices there, once it has gone. A
notice that cannot be sent is logged and never undoes or delays the disclosure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from flask import current_app, has_request_context
from sqlalchemy.exc import SQLAlchemyError

from core import background
from core.carrier import RecipientOptedOut
from core.errors import ServiceError
from core.extensions import carrier, directory
from core.observability import DISCLOSURES, note_outcome
from core.segments import fit_name, gsm7_only, shorten
from store.directory import TWILIO_ACTOR
from store.numbers import mask

log = logging.getLogger(__name__)

# The audit outcome of a codeword text Twilio took but did not confirm in time: it
# may be on its way, so it is audited and told, but not counted.
UNCONFIRMED = "unconfirmed"
# Longest a requester's name gets in a disclosure notice.
MAX_REQUESTER = 40


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

    @property
    def requester(self) -> str:
        """Who asked, as the notice names them."""
        return self.requested_by or self.actor


def codeword_disclosed(disclosure: Disclosure) -> None:
    """Record a disclosure: audit event, metric, the request's outcome; then the notices.

    A call reads the codeword and the app returns it only after this returns, so an
    audit that fails there raises and nothing goes out unrecorded. A text has already
    gone: its audit failing is logged, and the rest still happens.
    """
    try:
        directory().record_event(
            disclosure.practice_id,
            channel=disclosure.channel.value,
            outcome=disclosure.outcome,
            actor=disclosure.actor,
            to_number=disclosure.to,
            requested_by=disclosure.requested_by,
            reference=disclosure.reference,
        )
    except SQLAlchemyError as exc:
        if disclosure.channel is not Channel.SMS:
            raise
        log.error(
            "codeword text %s to %s for practice %s by %s sent but not audited: %s",
            disclosure.reference,
            mask(disclosure.to),
            disclosure.practice_id,
            disclosure.actor,
            type(exc).__name__,
        )
    confirmed = disclosure.outcome != UNCONFIRMED
    if confirmed:
        DISCLOSURES.labels(disclosure.channel.value).inc()
    if has_request_context():
        note_outcome("disclosed" if confirmed else disclosure.outcome)
    after_disclosure(disclosure)


def after_disclosure(disclosure: Disclosure) -> None:
    """What follows a disclosure once the response is sent: the other admins are told."""
    run_after_response(lambda: send_notices(disclosure))


def send_notices(disclosure: Disclosure) -> int:
    """Text every admin to notify but the recipient of the codeword; returns how many texts went."""
    admins = directory().admins_to_notify(disclosure.practice_id)
    numbers = sorted({u.cell_number for u in admins if u.cell_number} - {disclosure.to})
    if not numbers:
        return 0
    config = current_app.config
    body = notice_text(disclosure, brand=config["BRAND_NAME"], support=config["SUPPORT_CONTACT"])
    sent = 0
    for number in numbers:
        try:
            carrier().send_sms(to=number, body=body)
        except RecipientOptedOut:
            log.info("disclosure notice to %s refused: opted out at Twilio", mask(number))
            _keep_opt_out(number)
        except ServiceError as exc:
            log.error(
                "disclosure notice for practice %s to %s not sent: %s",
                disclosure.practice_id,
                mask(number),
                exc.code,
            )
        else:
            sent += 1
    log.info(
        "disclosure notices for practice %s (%s): %d of %d sent",
        disclosure.practice_id,
        disclosure.channel,
        sent,
        len(numbers),
    )
    return sent


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


def run_after_response(job: Callable[[], object]) -> None:
    """Run ``job`` in the app context once the response is sent (see
    ``core.background.after_response``; at once outside a request or a pool job).

    Whatever ``job`` raises is logged by type and goes no further.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> None:
        with app.app_context():
            try:
                job()
            except Exception as exc:
                log.error("after-response work failed: %s", type(exc).__name__)

    background.after_response(run)


def _keep_opt_out(number: str) -> None:
    try:
        directory().opt_out(number, actor=TWILIO_ACTOR)
    except SQLAlchemyError as exc:
        log.error("opt-out of %s not stored: %s", mask(number), type(exc).__name__)
