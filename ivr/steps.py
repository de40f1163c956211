"""The verification call, step by step: answered, code keyed in, codeword repeated, status.

Each step makes one Redis round trip (a script in ``session`` or ``challenge``)
and decides what the caller hears. SQL is touched only to read the codeword
after the right code (or, on an office-number call, to mark the number verified),
and to append outcomes to the audit trail.
"""

from __future__ import annotations

import logging

from flask import current_app
from twilio.twiml.voice_response import VoiceResponse

from core.errors import Conflict, ServiceError
from core.extensions import directory, redis_client
from core.observability import DISCLOSURES, LOCKOUTS, note_outcome
from ivr import challenge, clock, office_number, prompts, session, tokens
from ivr.session import CallerCheck
from sms import notices

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
    ref: tokens.CallRef, verdict: str, language: str | None = None
) -> VoiceResponse | None:
    """What to say when the step cannot go on: mismatch, gone, ended or expired."""
    note_outcome(verdict)
    if verdict == "mismatch":
        log.warning("verification call %s: a callback from another call", ref.session_id)
        raise NotThisCall("this callback belongs to another call")
    if verdict in ("gone", "ended"):
        return prompts.ended(language or ref.language)
    if verdict == "expired":
        return prompts.expired(language or ref.language)
    return None


def answer_call(ref: tokens.CallRef, call: CallerCheck, answered_by: str) -> VoiceResponse:
    """Greet a person and ask for the code; leave a machine a short message and hang up."""
    machine = answered_by in MACHINES
    reply = session.answer(redis_client(), call, machine=machine, now=clock.now())
    language = reply.get("language") or ref.language
    stop = _refuse_or_close(ref, reply["verdict"], language)
    if stop is not None:
        return stop
    brand = current_app.config["BRAND_NAME"]
    practice = reply["practice_name"]
    if reply["verdict"] == "voicemail":
        record_outcome(reply, "voicemail")
        return prompts.voicemail(language, brand=brand, practice=practice)
    if reply.get("purpose") == session.OFFICE:
        return prompts.office_greeting(
            language, brand=brand, practice=practice, code_action=_code_action(ref)
        )
    return prompts.greeting(language, brand=brand, practice=practice, code_action=_code_action(ref))


def take_code(ref: tokens.CallRef, call: CallerCheck, digits: str) -> VoiceResponse:
    """Check the digits keyed in: read the codeword, ask again, or lock the call."""
    result = challenge.check_code(
        redis_client(),
        call,
        digits=digits,
        secret_key=current_app.config["SECRET_KEY"],
        now=clock.now(),
        replicas=current_app.config["REDIS_REPLICA_ACKS"],
    )
    stop = _refuse_or_close(ref, result.verdict)
    if stop is not None:
        return stop
    language = ref.language
    if result.verdict == "reprompt":
        return prompts.ask_again_after_silence(language, _code_action(ref))
    if result.verdict == "silent":
        return prompts.silent(language)
    if result.verdict == "wrong":
        return prompts.ask_again_after_wrong_code(language, _code_action(ref), result.remaining)
    assert result.audit is not None
    if result.verdict == "locked":
        log.info("verification call %s locked after wrong codes", ref.session_id)
        LOCKOUTS.inc()
        record_outcome(result.audit, "locked")
        return prompts.locked(language)
    if result.audit.get("purpose") == session.OFFICE:
        verify_office_number(ref, result.audit)
        return prompts.office_verified(language, practice=result.audit.get("practice_name", ""))
    codeword = disclose_codeword(ref, result.audit)
    return prompts.codeword_reading(
        language,
        practice=result.audit.get("practice_name", ""),
        codeword=codeword,
        repeat_action=_repeat_action(ref),
    )


def disclose_codeword(ref: tokens.CallRef, audit: dict[str, str]) -> str:
    """Fetch the codeword after the right code, and record the disclosure.

    Only while the number called is still the practice's verified office number;
    if anything fails, the call is marked failed and nothing is read out.
    """
    try:
        codeword = directory().read_codeword_for_office(ref.practice_id, audit["to"])
        if codeword is None:
            raise Conflict("the office number or codeword changed during the call")
        record_outcome(audit, "disclosed")
    except Exception:
        _undo_disclosure(ref, audit)
        raise
    DISCLOSURES.labels("voice").inc()
    note_outcome("disclosed")
    log.info("verification call %s: codeword disclosed", ref.session_id)
    notices.after_disclosure(
        notices.Disclosure(
            practice_id=ref.practice_id,
            practice_name=audit.get("practice_name", ""),
            channel="voice",
            to=audit["to"],
            requested_by=audit.get("requested_by") or audit.get("actor") or "support",
            by_support=True,
            at=clock.now(),
        )
    )
    return codeword


def verify_office_number(ref: tokens.CallRef, audit: dict[str, str]) -> None:
    """Mark the office number verified after the right code, if it is still the number called.

    If it changed meanwhile (or anything fails), the call is marked failed.
    """
    try:
        if not directory().set_office_number_verified(ref.practice_id, audit["to"]):
            raise Conflict("the office number changed during the call")
        record_outcome(audit, "verified")
    except Exception:
        _undo_disclosure(ref, audit)
        raise
    note_outcome("verified")
    log.info("office number call %s: number verified", ref.session_id)


def repeat_codeword(ref: tokens.CallRef, call: CallerCheck, pressed: str) -> VoiceResponse:
    """Read the codeword again on request, a couple of times at most."""
    reply = session.repeat(
        redis_client(), call, pressed=pressed, max_repeats=MAX_REPEATS, now=clock.now()
    )
    stop = _refuse_or_close(ref, reply["verdict"])
    if stop is not None:
        return stop
    if reply["verdict"] != "repeat":
        return prompts.goodbye(ref.language)
    note_outcome("repeated")
    codeword = directory().read_codeword_for_office(ref.practice_id, call.to)
    if codeword is None:
        raise Conflict("the office number or codeword changed during the call")
    return prompts.codeword_again(
        ref.language,
        codeword=codeword,
        repeat_action=_repeat_action(ref),
        more_repeats=int(reply.get("remaining") or 0) > 0,
    )


def record_call_status(ref: tokens.CallRef, call: CallerCheck, call_status: str) -> None:
    """Apply Twilio's status callback; record the outcome when the call ends unresolved."""
    status = session.TWILIO_STATUSES.get(call_status)
    if status is None:
        log.info("verification call %s: ignoring call status %r", ref.session_id, call_status)
        return
    reply = session.record_status(redis_client(), call, practice_id=ref.practice_id, status=status)
    _refuse_or_close(ref, reply["verdict"])
    note_outcome(f"status:{reply.get('status') or status}")
    if reply["verdict"] == "changed" and status in session.FINAL:
        record_outcome(reply, status)


def record_outcome(audit: dict[str, str], outcome: str) -> None:
    """Append a verification call's outcome to the practice's audit trail."""
    if audit.get("purpose") == session.OFFICE:
        outcome = office_number.audit_outcome(outcome)
    directory().record_event(
        audit["practice_id"],
        channel="voice",
        outcome=outcome,
        actor=audit.get("actor") or "unknown",
        to_number=audit.get("to") or None,
        requested_by=audit.get("requested_by") or None,
        reference=audit.get("call_sid") or None,
    )


def _undo_disclosure(ref: tokens.CallRef, audit: dict[str, str]) -> None:
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
