"""The verification call, step by step: answered, code keyed in, codeword repeated, status.

Each step makes one Redis round trip (a script in ``step_scripts`` or ``challenge``)
and decides what the caller hears. SQL is touched only to read the codeword
after the right code (or, on an office-number call, to mark the number verified),
and to append outcomes to the audit trail. A disclosure is recorded, counted and
told to the other admins by core/disclosures.py, as for texts and the app.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import current_app
from twilio.twiml.voice_response import VoiceResponse

from core import events, queue
from core.disclosures import Channel, Disclosure, codeword_disclosed
from core.errors import Conflict, ServiceError
from core.extensions import directory, redis_client
from core.observability import LOCKOUTS, note_outcome
from ivr import challenge, office_number, prompts, session, step_scripts, tokens
from ivr.session import Purpose, Verdict
from ivr.step_scripts import CallAudit, CallerIdentity
from store import clock, outbox

log = logging.getLogger(__name__)

MAX_REPEATS = 2
# Twilio's AnsweredBy values that mean no person is listening.
MACHINES = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")


class NotThisCall(ServiceError):
    """A callback URL arrived with another call's CallSid or number."""

    status, code = 403, "not_this_call"


def _code_action(ref: tokens.CallRef) -> str:
    return tokens.callback_url("ivr.verification_code", tokens.token_for(ref))


def _repeat_action(ref: tokens.CallRef) -> str:
    return tokens.callback_url("ivr.verification_repeat", tokens.token_for(ref))


def _refuse_or_close(
    ref: tokens.CallRef, verdict: Verdict, language: str | None = None
) -> VoiceResponse | None:
    """What to say when the step cannot go on: mismatch, gone, ended or expired."""
    note_outcome(verdict)
    if verdict is Verdict.MISMATCH:
        log.warning("verification call %s: a callback from another call", ref.session_id)
        raise NotThisCall("this callback belongs to another call")
    if verdict in (Verdict.GONE, Verdict.ENDED):
        return prompts.ended(language or ref.language)
    if verdict is Verdict.EXPIRED:
        return prompts.expired(language or ref.language)
    return None


def answer_call(ref: tokens.CallRef, caller: CallerIdentity, answered_by: str) -> VoiceResponse:
    """Greet a person and ask for the code; leave a machine a short message and hang up."""
    machine = answered_by in MACHINES
    reply = step_scripts.answer(redis_client(), caller, machine=machine, now=clock.now())
    language = reply.language or ref.language
    stop = _refuse_or_close(ref, reply.verdict, language)
    if stop is not None:
        return stop
    brand = current_app.config["BRAND_NAME"]
    practice = reply.practice_name
    if reply.verdict is Verdict.VOICEMAIL:
        assert reply.audit is not None
        record_outcome(reply.audit, "voicemail")
        return prompts.voicemail(language, brand=brand, practice=practice)
    if reply.purpose is Purpose.OFFICE:
        return prompts.office_greeting(
            language, brand=brand, practice=practice, code_action=_code_action(ref)
        )
    return prompts.greeting(language, brand=brand, practice=practice, code_action=_code_action(ref))


def take_code(ref: tokens.CallRef, caller: CallerIdentity, digits: str) -> VoiceResponse:
    """Check the digits keyed in: read the codeword, ask again, or lock the call."""
    result = challenge.check_code(
        redis_client(),
        caller,
        digits=digits,
        secret_key=current_app.config["SECRET_KEY"],
        now=clock.now(),
        replicas=current_app.config["REDIS_REPLICA_ACKS"],
    )
    stop = _refuse_or_close(ref, result.verdict)
    if stop is not None:
        return stop
    language = ref.language
    if result.verdict is Verdict.REPROMPT:
        return prompts.ask_again_after_silence(language, _code_action(ref))
    if result.verdict is Verdict.SILENT:
        return prompts.silent(language)
    if result.verdict is Verdict.WRONG:
        return prompts.ask_again_after_wrong_code(language, _code_action(ref), result.remaining)
    audit = result.audit
    assert audit is not None
    if result.verdict is Verdict.LOCKED:
        log.info("verification call %s locked after wrong codes", ref.session_id)
        LOCKOUTS.inc()
        record_outcome(audit, "locked")
        return prompts.locked(language, support=current_app.config["SUPPORT_CONTACT"])
    if audit.purpose is Purpose.OFFICE:
        verify_office_number(ref, audit)
        return prompts.office_verified(language, practice=audit.practice_name)
    codeword = disclose_codeword(ref, audit)
    return prompts.codeword_reading(
        language,
        practice=audit.practice_name,
        codeword=codeword,
        repeat_action=_repeat_action(ref),
    )


def disclose_codeword(ref: tokens.CallRef, audit: CallAudit) -> str:
    """Fetch the codeword after the right code, and record the disclosure.

    Only while the number called is still the practice's verified office number;
    if anything fails, the call is marked failed and nothing is read out.
    """
    try:
        codeword = directory().read_codeword_for_office(ref.practice_id, audit.to)
        if codeword is None:
            raise Conflict("the office number or codeword changed during the call")
        codeword_disclosed(
            Disclosure(
                practice_id=ref.practice_id,
                practice_name=audit.practice_name,
                channel=Channel.VOICE,
                actor=audit.actor or "unknown",
                requested_by=audit.requested_by or None,
                to=audit.to,
                reference=audit.call_sid or None,
                at=clock.now(),
                by_support=True,
                key=ref.session_id,
            )
        )
    except Exception:
        _undo_disclosure(ref, audit)
        raise
    log.info("verification call %s: codeword disclosed", ref.session_id)
    return codeword


def verify_office_number(ref: tokens.CallRef, audit: CallAudit) -> None:
    """Mark the office number verified after the right code, if it is still the number called.

    If it changed meanwhile (or anything fails), the call is marked failed.
    """
    try:
        if not directory().set_office_number_verified(ref.practice_id, audit.to):
            raise Conflict("the office number changed during the call")
        record_outcome(audit, "verified")
    except Exception:
        _undo_disclosure(ref, audit)
        raise
    note_outcome("verified")
    log.info("office number call %s: number verified", ref.session_id)


def repeat_codeword(ref: tokens.CallRef, caller: CallerIdentity, pressed: str) -> VoiceResponse:
    """Read the codeword again on request, a couple of times at most."""
    reply = step_scripts.repeat(
        redis_client(), caller, pressed=pressed, max_repeats=MAX_REPEATS, now=clock.now()
    )
    stop = _refuse_or_close(ref, reply.verdict)
    if stop is not None:
        return stop
    if reply.verdict is not Verdict.REPEAT:
        return prompts.goodbye(ref.language)
    note_outcome("repeated")
    codeword = directory().read_codeword_for_office(ref.practice_id, caller.to)
    if codeword is None:
        raise Conflict("the office number or codeword changed during the call")
    return prompts.codeword_again(
        ref.language,
        codeword=codeword,
        repeat_action=_repeat_action(ref),
        more_repeats=reply.remaining > 0,
    )


def record_call_status(ref: tokens.CallRef, caller: CallerIdentity, call_status: str) -> None:
    """Apply Twilio's status callback; record the outcome when the call ends unresolved."""
    status = session.TWILIO_STATUSES.get(call_status)
    if status is None:
        log.info("verification call %s: ignoring call status %r", ref.session_id, call_status)
        return
    reply = step_scripts.record_status(
        redis_client(), caller, practice_id=ref.practice_id, status=status
    )
    _refuse_or_close(ref, reply.verdict)
    note_outcome(f"status:{reply.status or status}")
    if status not in session.FINAL or reply.audit is None:
        return
    # The call is over: support's call tells the main application how it ended.
    completed = _call_completed(ref, reply.audit, reply.status or status)
    if reply.verdict is Verdict.CHANGED:
        record_outcome(reply.audit, status, intents=completed)
    elif reply.verdict is Verdict.KEPT and completed:
        queue.enqueue(queue.outbox().write(completed, now=clock.now()))


def _call_completed(
    ref: tokens.CallRef, audit: CallAudit, final_status: str
) -> list[outbox.Intent]:
    """``verification_call.completed`` for support's calls (one per call), when events go."""
    if audit.purpose is Purpose.OFFICE or not events.enabled():
        return []
    return [
        events.verification_call_completed(
            call_id=ref.session_id,
            practice_id=audit.practice_id,
            status=final_status,
            requested_by=audit.requested_by,
            actor=audit.actor,
            at=clock.now(),
        )
    ]


def record_outcome(
    audit: CallAudit, outcome: str, *, intents: Sequence[outbox.Intent] = ()
) -> None:
    """Append a verification call's outcome to the practice's audit trail, with what it
    leaves to do (its outcome event) in the same transaction."""
    if audit.purpose is Purpose.OFFICE:
        outcome = office_number.audit_outcome(outcome)
    jobs = directory().record_event(
        audit.practice_id,
        channel="voice",
        outcome=outcome,
        actor=audit.actor or "unknown",
        to_number=audit.to or None,
        requested_by=audit.requested_by or None,
        reference=audit.call_sid or None,
        intents=intents,
        now=clock.now(),
    )
    queue.enqueue(jobs)


def _undo_disclosure(ref: tokens.CallRef, audit: CallAudit) -> None:
    """The right code led nowhere after all: say so in the session and the audit trail."""
    try:
        if session.undo_disclosure(redis_client(), ref.session_id):
            record_outcome(audit, "failed")
    except Exception as exc:
        log.warning(
            "verification call %s: could not record a failed disclosure (%s)",
            ref.session_id,
            type(exc).__name__,
        )
