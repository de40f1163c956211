"""Voice webhooks. Handlers stay thin: the decisions live in plain functions."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from core.twiml import apology, say, twiml
from core.webhooks import speak_to_caller_in, twilio_webhook
from ivr import steps, tokens
from ivr.step_scripts import CallerIdentity

log = logging.getLogger(__name__)

bp = Blueprint("ivr", __name__, url_prefix="/ivr")

Step = Callable[[tokens.CallRef, CallerIdentity], VoiceResponse]


@bp.post("/inbound")
@twilio_webhook
def inbound() -> Response:
    """Someone called our number: say who we are and how to reach support; nothing more."""
    brand = current_app.config["BRAND_NAME"]
    support = current_app.config["SUPPORT_CONTACT"]
    response = VoiceResponse()
    say(
        response,
        f"You have reached the {brand} verification line. This number only places "
        f"calls. For help, please contact {support}. Goodbye.",
    )
    response.hangup()
    return twiml(response)


def verification_call_step(step: Step) -> Callable[[], Response]:
    """Resolve the callback token and the call's identity, run ``step``, render its TwiML.

    A stale token or another call's CallSid is answered with an apology; so is anything
    that fails in ``step`` (Redis or the database down), by the app's error handlers,
    in the practice's language, which the token names.
    """

    @functools.wraps(step)
    def wrapper() -> Response:
        ref = tokens.load(request.args.get("t", ""))
        if ref is None:
            return apology()
        speak_to_caller_in(ref.language)
        caller = _caller(ref)
        if caller is None:
            return apology(ref.language)
        return twiml(step(ref, caller))

    return wrapper


def _caller(ref: tokens.CallRef) -> CallerIdentity | None:
    """The call this webhook speaks for, if it names one and comes from our account."""
    call_sid = request.form.get("CallSid", "")
    to = request.form.get("To", "")
    account = current_app.config.get("TWILIO_ACCOUNT_SID")
    if not call_sid or not to:
        return None
    if account and request.form.get("AccountSid") != account:
        log.warning("verification call %s: a callback from another account", ref.session_id)
        return None
    return CallerIdentity(session_id=ref.session_id, call_sid=call_sid, to=to)


@bp.post("/verification/answer")
@twilio_webhook
@verification_call_step
def verification_answer(ref: tokens.CallRef, caller: CallerIdentity) -> VoiceResponse:
    """The office answered: greet and ask for the code (or leave a machine a short note)."""
    return steps.answer_call(ref, caller, request.form.get("AnsweredBy", ""))


@bp.post("/verification/code")
@twilio_webhook
@verification_call_step
def verification_code(ref: tokens.CallRef, caller: CallerIdentity) -> VoiceResponse:
    """The Gather for the challenge code finished, with digits or in silence."""
    return steps.take_code(ref, caller, request.form.get("Digits", ""))


@bp.post("/verification/repeat")
@twilio_webhook
@verification_call_step
def verification_repeat(ref: tokens.CallRef, caller: CallerIdentity) -> VoiceResponse:
    """After the codeword was read: 1 hears it again, anything else says goodbye."""
    return steps.repeat_codeword(ref, caller, request.form.get("Digits", ""))


@bp.post("/verification/status")
@twilio_webhook
@verification_call_step
def verification_status(ref: tokens.CallRef, caller: CallerIdentity) -> VoiceResponse:
    """Twilio's status callback: initiated, ringing, answered, completed (or why not)."""
    steps.record_call_status(ref, caller, request.form.get("CallStatus", ""))
    return VoiceResponse()
