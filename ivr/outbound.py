"""Placing an outbound verification call: support's codeword call, or an office-number check.

Order matters so that a failure leaves nothing behind: every check first, then
the rate-limit slots are reserved, then the session (which also claims the
practice's single live call), then the call is placed; if the carrier fails the
session is rolled back, and the slots are given back unless the call may have gone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from flask import current_app

from core import rate_limits
from core.errors import CarrierUnavailable, Conflict, InvalidInput, NotFound
from core.extensions import carrier, directory, redis_client
from core.observability import CALLS_TRIGGERED
from ivr import session, tokens
from ivr.session import CallSession, Purpose, Verdict
from store import clock, keys, onetime
from store.directory import PracticeRecord
from store.errors import LimitExceeded
from store.ratelimit import Reservation

log = logging.getLogger(__name__)

# How long the office phone rings before Twilio gives up (seconds).
RING_TIMEOUT = 30
# The longest a verification call may last (seconds); Twilio hangs up after it.
CALL_TIME_LIMIT = 300


@dataclass(frozen=True)
class RequestedCall:
    """A verification call as the support API reports it."""

    call: CallSession
    challenge_code: str | None
    replayed: bool


def request_call(
    *, practice_id: str, requested_by: str, actor: str, idempotency_key: str | None
) -> RequestedCall:
    """Call the practice's verified office number with a fresh challenge code."""
    client = redis_client()
    idem_key = None
    if idempotency_key:
        owner = session.idempotency_key_owner(client, actor, idempotency_key, practice_id)
        if owner != practice_id:
            raise InvalidInput(
                "this Idempotency-Key was used for another practice", code="idempotency_key_reused"
            )
        idem_key = keys.idempotency(practice_id, actor, idempotency_key)
        existing = session.idempotent_session_id(client, idem_key)
        if existing:
            return _replay(client, existing, practice_id)

    practice = directory().get_practice(practice_id)
    if practice is None:
        raise NotFound("no such practice")
    if not practice.office_number_verified:
        raise Conflict(
            "the practice's office number is not verified", code="office_number_unverified"
        )
    if not practice.has_codeword:
        raise Conflict("the practice has no codeword yet", code="no_codeword")

    try:
        reservation = rate_limits.reserve_verification_call(practice.id, actor)
    except LimitExceeded:
        # A repeat that raced the first request past the look-up above is no second request.
        existing = session.idempotent_session_id(client, idem_key) if idem_key else None
        if existing is None:
            raise
        return _replay(client, existing, practice_id)
    with rate_limits.given_back_on_failure(reservation):
        return place_call(
            practice,
            purpose=Purpose.CODEWORD,
            actor=actor,
            requested_by=requested_by,
            reservation=reservation,
            idem_key=idem_key,
        )


def place_call(
    practice: PracticeRecord,
    *,
    purpose: Purpose,
    actor: str,
    requested_by: str,
    reservation: Reservation,
    idem_key: str | None = None,
) -> RequestedCall:
    """Reserve a session with a fresh code, call the office number.

    The caller has checked the practice and reserved the rate-limit slots, which it
    gives back if this fails before the call may have gone. A practice with a live
    call gets 409 naming it; if the carrier fails, nothing is left behind.
    """
    client = redis_client()
    now = clock.now()
    session_id = keys.new_call_session_id(practice.id)
    code = onetime.new_code()
    call = CallSession(
        id=session_id,
        practice_id=practice.id,
        practice_name=practice.name,
        language=practice.language,
        to=practice.office_number,
        actor=actor,
        requested_by=requested_by,
        purpose=purpose,
        created_at=now,
        expires_at=now + onetime.CODE_LIFETIME,
        code_hash=onetime.code_hash(current_app.config["SECRET_KEY"], session_id, code),
        # Kept sealed, only so that a repeat of this request can hand the code back.
        code_sealed=directory().cipher.encrypt(code).decode() if idem_key else None,
    )
    verdict, named = session.reserve(client, call, idem_key)
    if verdict is Verdict.IDEMPOTENT:
        rate_limits.give_back(reservation)
        return _replay(client, named, practice.id)
    if verdict is Verdict.LIVE:
        raise Conflict(
            "a verification call to this practice is already in progress",
            code="call_in_progress",
            live_call_id=named,
        )

    token = tokens.sign(tokens.CallRef(session_id, practice.id, practice.language))
    try:
        placed = carrier().place_call(
            to=practice.office_number,
            url=tokens.callback_url("ivr.verification_answer", token),
            status_callback=tokens.callback_url("ivr.verification_status", token),
            timeout=RING_TIMEOUT,
            time_limit=CALL_TIME_LIMIT,
            machine_detection=True,
        )
    except BaseException:
        _rollback_quietly(client, call, idem_key)
        raise
    reservation.keep()

    status = session.TWILIO_STATUSES.get(placed.status, "queued")
    if status not in session.IN_PROGRESS:
        status = "queued"
    try:
        if not session.mark_placed(client, call, placed.sid, status):
            log.warning("verification call %s: the carrier named another call", session_id)
            raise CarrierUnavailable("the phone carrier gave an inconsistent answer")
    except redis.RedisError:
        # The call is ringing: report it rather than an error the caller would retry.
        log.warning("verification call %s placed, but its bookkeeping failed", session_id)
    CALLS_TRIGGERED.labels(purpose).inc()
    log.info("%s call %s placed for practice %s", purpose, session_id, practice.id)
    placed_call = call.placed_as(placed.sid, status)
    return RequestedCall(call=placed_call, challenge_code=code, replayed=False)


def get_call(session_id: str) -> CallSession:
    """A verification call (for the codeword) by id, or NotFound."""
    call = session.load(redis_client(), session_id)
    if call is None or call.purpose is not Purpose.CODEWORD:
        raise NotFound("no such verification call")
    return call


def live_call(practice_id: str) -> session.CallSession | None:
    """The practice's live call (for the codeword or its office number), if any."""
    client = redis_client()
    session_id = session.live_session_id(client, practice_id, clock.now())
    return session.load(client, session_id) if session_id else None


def _replay(client: redis.Redis, session_id: str, practice_id: str) -> RequestedCall:
    """The call an idempotency key already made, with its code while the code still works."""
    call = session.load(client, session_id)
    if call is None:
        raise NotFound("the call made with this idempotency key is gone")
    if call.practice_id != practice_id:
        raise InvalidInput(
            "this Idempotency-Key was used for another practice", code="idempotency_key_reused"
        )
    if not call.placed:
        raise Conflict(
            "a request with this Idempotency-Key is still being processed",
            code="idempotency_key_in_use",
        )
    code = None
    if call.code_sealed and call.status_at(clock.now()) in session.IN_PROGRESS:
        try:
            code = directory().cipher.decrypt(call.code_sealed.encode())
        except ValueError:
            # Sealed under a key no longer in CODEWORD_KEYS: the call stands, its code is not shown.
            log.warning("verification call %s: its sealed code no longer decrypts", session_id)
    return RequestedCall(call=call, challenge_code=code, replayed=True)


def _rollback_quietly(client: redis.Redis, call: CallSession, idem_key: str | None) -> None:
    try:
        session.rollback(client, call, idem_key)
    except redis.RedisError:
        # The session's live-call claim still lapses at its expiry.
        log.warning("verification call %s: could not roll back after a failure", call.id)
