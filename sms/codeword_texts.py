"""Texting the codeword: through the REST API only, to an admin's verified cell, audited.

Both ways a codeword text starts end here: an admin's CODEWORD keyword
(sms/codeword_requests.py) and a support agent's request (api/codeword_texts.py).
The text goes with a short ValidityPeriod and a status callback, so that
sms/delivery.py can redact its body at Twilio once it is delivered or failed.
Once it is sent, the disclosure is recorded and the practice's other admins are told
(core/disclosures.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app

from core import rate_limits
from core.carrier import CarrierTimedOut, RecipientOptedOut
from core.disclosures import UNCONFIRMED, Channel, Disclosure, codeword_disclosed
from core.errors import Conflict, NotFound
from core.extensions import carrier, directory
from core.public_urls import public_url
from sms.messages import Texts
from store import clock
from store.directory import TWILIO_ACTOR, PracticeRecord, UserRecord
from store.numbers import mask

log = logging.getLogger(__name__)

# Seconds Twilio may keep the text queued before dropping it; the contract allows 900.
VALIDITY_PERIOD = 600
# The actor recorded when admins text CODEWORD themselves.
SELF = "self"


class NoCodeword(Conflict):
    code = "no_codeword"


@dataclass(frozen=True)
class CodewordText:
    """A codeword text handed to Twilio: its MessageSid, status and masked number."""

    id: str
    status: str
    to: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "to": self.to}


def may_receive_codeword(user: UserRecord) -> bool:
    """Only an admin's verified cell ever gets the codeword."""
    return user.role == "admin" and bool(user.cell_number) and user.cell_number_verified


def status_callback_url(practice_id: str) -> str:
    """Where Twilio reports the text's delivery; the practice rides in the signed query."""
    return public_url("sms.status", practice_id=practice_id)


def send_codeword_text(
    practice: PracticeRecord, user: UserRecord, *, actor: str, requested_by: str | None
) -> CodewordText:
    """Text the codeword to ``user``'s verified cell and record it.

    The caller has reserved the rate-limit slots (core/rate_limits.py). Raises
    NoCodeword, RecipientOptedOut (also when Twilio reports error 21610, which is then
    kept as our opt-out too) or CarrierUnavailable; nothing is recorded then and the
    caller gives the slots back, unless Twilio took the text and did not answer in time
    (CarrierTimedOut): it may be on its way, so it is audited as ``unconfirmed`` and
    its slots stay spent.
    """
    if not may_receive_codeword(user) or user.cell_number is None:
        raise Conflict("codeword texts go only to an admin's verified cell", code="not_allowed")
    number = user.cell_number
    if directory().is_opted_out(number):
        raise RecipientOptedOut("the recipient has opted out of texts from this number")
    codeword = directory().read_codeword(practice.id)
    if codeword is None:
        raise NoCodeword("the practice has no codeword yet")
    body = Texts.from_config(current_app.config).codeword(
        practice.name, codeword, by_support=actor != SELF
    )
    try:
        sid = carrier().send_sms(
            to=number,
            body=body,
            status_callback=status_callback_url(practice.id),
            validity_period=VALIDITY_PERIOD,
        )
    except RecipientOptedOut:
        directory().opt_out(number, actor=TWILIO_ACTOR)
        raise
    except CarrierTimedOut:
        # It may have reached the admin: better a notice too many than a disclosure unheard of.
        _record_disclosure(
            practice, number, None, actor=actor, requested_by=requested_by, outcome=UNCONFIRMED
        )
        raise
    _record_disclosure(practice, number, sid, actor=actor, requested_by=requested_by)
    return CodewordText(id=sid, status="queued", to=mask(number) or "")


def _record_disclosure(
    practice: PracticeRecord,
    number: str,
    sid: str | None,
    *,
    actor: str,
    requested_by: str | None,
    outcome: str = "sent",
) -> None:
    """A text has gone (or may have): the disclosure path (core/disclosures.py).

    A failure here must not undo or repeat the text.
    """
    codeword_disclosed(
        Disclosure(
            practice_id=practice.id,
            practice_name=practice.name,
            channel=Channel.SMS,
            actor=actor,
            requested_by=requested_by,
            to=number,
            at=clock.now(),
            reference=sid,
            by_support=actor != SELF,
            outcome=outcome,
        )
    )


def text_codeword_on_request(
    practice_id: str, user_id: str, *, actor: str, requested_by: str
) -> CodewordText:
    """Support asks us to text the codeword to a user of a practice: decide, then send."""
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
        return send_codeword_text(practice, user, actor=actor, requested_by=requested_by)
