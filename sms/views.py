"""SMS webhooks. Handlers stay thin: the decisions live in plain functions."""

from __future__ import annotations

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from core.observability import note_outcome
from core.twiml import twiml
from core.webhooks import twilio_webhook
from sms.codeword_requests import answer_inbound_text
from sms.delivery import record_delivery

bp = Blueprint("sms", __name__, url_prefix="/sms")


@bp.post("/inbound")
@twilio_webhook
def inbound() -> Response:
    """A text to our number: at most a short reply; the codeword itself goes by REST."""
    answer = answer_inbound_text(request.form.get("From", ""), request.form.get("Body", ""))
    note_outcome(answer.outcome)
    response = MessagingResponse()
    if answer.reply:
        response.message(answer.reply)
    return twiml(response)


@bp.post("/status")
@twilio_webhook
def status() -> Response:
    """Twilio reports a codeword text's delivery."""
    outcome = record_delivery(
        request.args.get("practice_id", ""),
        request.form.get("MessageSid", ""),
        request.form.get("MessageStatus") or request.form.get("SmsStatus", ""),
        request.form.get("To"),
        request.args.get("text"),
    )
    note_outcome(outcome)
    return twiml(MessagingResponse())
