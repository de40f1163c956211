"""Voice webhooks. Handlers stay thin: the decisions live in plain functions."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from twilio.twiml.voice_response import VoiceResponse

from core.telephony import twilio_webhook
from core.twiml import say, twiml

bp = Blueprint("ivr", __name__, url_prefix="/ivr")


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
