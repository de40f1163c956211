"""Disclosure notices: after every codeword disclosure by voice or SMS, the other admins hear of it.

Every admin of the practice with a verified cell that has not opted out gets a
short text saying when, how, to which masked number and at whose request, never
the codeword. The number the codeword went to gets no notice of its own
disclosure.

Notices go after the response: the webhook that disclosed the codeword answers
Twilio first (``response.call_on_close``), then the admins are looked up (one
query) and texted. A codeword text still going out on the background pool after
the webhook gave up waiting for it is followed by its notices there, once it has
gone. A notice that cannot be sent is logged and never undoes or delays the
disclosure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from core import background
from core.carrier import RecipientOptedOut
from core.errors import ServiceError
from core.extensions import carrier, directory
from sms.messages import Texts
from store.numbers import mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Disclosure:
    """A codeword disclosure, as a notice tells it."""

    practice_id: str
    practice_name: str
    channel: str  # voice | sms
    to: str  # the number the codeword went to, in full (masked in the notice)
    requested_by: str
    by_support: bool
    at: float


def after_disclosure(disclosure: Disclosure) -> None:
    """Text the practice's other admins about ``disclosure``, once the response is sent."""
    run_after_response(lambda: send_notices(disclosure))


def send_notices(disclosure: Disclosure) -> int:
    """Text every admin to notify but the recipient of the codeword; returns how many texts went."""
    admins = directory().admins_to_notify(disclosure.practice_id)
    numbers = sorted({u.cell_number for u in admins if u.cell_number} - {disclosure.to})
    if not numbers:
        return 0
    body = Texts.from_config(current_app.config).disclosure_notice(
        disclosure.practice_name,
        channel=disclosure.channel,
        to_masked=mask(disclosure.to) or "an unknown number",
        at=disclosure.at,
        requested_by=disclosure.requested_by,
        by_support=disclosure.by_support,
    )
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
        directory().opt_out(number)
    except SQLAlchemyError as exc:
        log.error("opt-out of %s not stored: %s", mask(number), type(exc).__name__)
