"""Voice webhooks. Handlers stay thin: the decisions live in plain functions."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse

from core.errors import ServiceError
from core.telephony import twilio_webhook
from core.twiml import apology, say, twiml
from ivr import steps, tokens
from ivr.session import CallerCheck
from store.redis_client import UNAVAILABLE as REDIS_UNAVAILABLE

log = logging.getLogger(__name__)

# What a call step answers with an apology rather than an error.
STEP_FAILURES: tuple[type[Exception], ...] = (
    *REDIS_UNAVAILABLE,
    SQLAlchemyError,
    ServiceError,
    ValueError,
)

bp = Blueprint("ivr", __name__, url_prefix="/ivr")

Step = Callable[[tokens.CallRef, CallerCheck], VoiceResponse]


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

    Anything that fails (a stale token, another call's CallSid, Redis or the
    database down) is answered with an apology in the practice's language.
    """

    @functools.wraps(step)
    def wrapper() -> Response:
        ref = tokens.load(request.args.get("t", ""))
        if ref is None:
            return apology()
        call = _caller(ref)
        if call is None:
            return apology(ref.language)
        try:
            return twiml(step(ref, call))
        except STEP_FAILURES as exc:
            log.warning(
                "verification call %s: %s in %s",
                ref.session_id,
                type(exc).__name__,
                request.endpoint,
            )
            return apology(ref.language)

    return wrapper


def _caller(ref: tokens.CallRef) -> CallerCheck | None:
    """The call this webhook speaks for, if it names one and comes from our account."""
    call_sid = request.form.get("CallSid", "")
    to = request.form.get("To", "")
    account = current_app.config.get("TWILIO_ACCOUNT_SID")
    if not call_sid or not to:
        return None
    if account and request.form.get("AccountSid") != account:
        log.warning("verification call %s: a callback from another account", ref.session_id)
        return None
    return CallerCheck(session_id=ref.session_id, call_sid=call_sid, to=to)


@bp.post("/verification/answer")
@twilio_webhook
@verification_call_step
def verification_answer(ref: tokens.CallRef, call: CallerCheck) -> VoiceResponse:
    """The office answered: greet and ask for the code (or leave a machine a short note)."""
    return steps.answer_call(ref, call, request.form.get("AnsweredBy", ""))


@bp.post("/verification/code")
@twilio_webhook
@verification_call_step
def verification_code(ref: tokens.CallRef, call: CallerCheck) -> VoiceResponse:
    """The Gather for the challenge code finished, with digits or in silence."""
    return steps.take_code(ref, call, request.form.get("Digits", ""))


@bp.post("/verification/repeat")
@twilio_webhook
@verification_call_step
def verification_repeat(ref: tokens.CallRef, call: CallerCheck) -> VoiceResponse:
    """After the codeword was read: 1 hears it again, anything else says goodbye."""
    return steps.repeat_codeword(ref, call, request.form.get("Digits", ""))


@bp.post("/verification/status")
@twilio_webhook
@verification_call_step
def verification_status(ref: tokens.CallRef, call: CallerCheck) -> VoiceResponse:
    """Twilio's status callback: initiated, ringing, answered, completed (or why not)."""
    steps.record_call_status(ref, call, request.form.get("CallStatus", ""))
    return VoiceResponse()
