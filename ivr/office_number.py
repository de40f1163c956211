"""Proving a practice's office number: a call that asks for a code shown to the admin.

An admin asks (admin API); the office number is called like a verification call,
with ``purpose`` ``office``; whoever answers keys in the six-digit code the main
application shows the admin. The right code marks the office number verified,
if it is still the number called. The codeword is never read on this call.
"""

from __future__ import annotations

from core import rate_limits
from core.errors import NotFound
from core.extensions import directory, redis_client
from ivr import outbound, session
from ivr.session import CallSession, Purpose

# Audit outcomes of an office-number call; other final statuses read
# ``office_verification_<status>``, e.g. ``office_verification_no-answer``.
OUTCOMES = {"verified": "office_number_verified"}


def audit_outcome(status: str) -> str:
    """The audit trail's name for how an office-number call ended."""
    return OUTCOMES.get(status, f"office_verification_{status}")


def request_verification(
    practice_id: str, *, actor: str, requested_by: str | None
) -> outbound.RequestedCall:
    """Call the practice's office number (verified or not) with a fresh code."""
    practice = directory().get_practice(practice_id)
    if practice is None:
        raise NotFound("no such practice")
    reservation = rate_limits.reserve_office_verification(practice.id)
    with rate_limits.given_back_on_failure(reservation):
        return outbound.place_call(
            practice,
            purpose=Purpose.OFFICE,
            actor=actor,
            requested_by=requested_by or actor,
            reservation=reservation,
        )


def get_verification(practice_id: str, verification_id: str) -> CallSession:
    """An office-number call of this practice by id, or NotFound."""
    call = session.load(redis_client(), verification_id)
    if call is None or call.purpose is not Purpose.OFFICE or call.practice_id != practice_id:
        raise NotFound("no such office number verification")
    return call
