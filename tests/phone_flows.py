"""The service plus small TwiML flows, for driving the terminal phone under gunicorn.

    gunicorn tests.phone_flows:app

Every flow is a signed Twilio webhook (``twilio_webhook``), and records the form it got
in Redis, so a test in another process can see exactly what the phone sent.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from core.extensions import carrier, redis_client
from core.twiml import twiml
from core.webhooks import twilio_webhook
from service import create_app
from store import keys

CHALLENGE_CODE = "123456"
SECRET = "maple otter 47"
RECEIVED = keys.key("test-flows", "received")

bp = Blueprint("flows", __name__, url_prefix="/flows")


def received(redis: object) -> list[dict[str, object]]:
    """Every webhook the flows received, oldest first: {"path", "form"}."""
    return [json.loads(item) for item in redis.lrange(RECEIVED, 0, -1)]  # type: ignore[attr-defined]


@bp.before_request
def record() -> None:
    entry = {"path": request.full_path.rstrip("?"), "form": request.form.to_dict()}
    redis_client().rpush(RECEIVED, json.dumps(entry))
    redis_client().expire(RECEIVED, 600)


@bp.post("/verify")
@twilio_webhook
def verify() -> Response:
    """Greet, pause, and ask for the code; silence is posted as empty Digits."""
    response = VoiceResponse()
    response.say("Welcome to the test line.")
    response.pause(length=1)
    gather = response.gather(num_digits=6, action="check", action_on_empty_result=True)
    gather.say("Enter your code.")
    return twiml(response)


@bp.post("/check")
@twilio_webhook
def check() -> Response:
    """The right code hears the secret; silence or a wrong code start over."""
    response = VoiceResponse()
    digits = request.form.get("Digits", "")
    if digits == CHALLENGE_CODE:
        response.say(f"The codeword is {SECRET}.")
        response.hangup()
    elif not digits:
        response.say("We did not hear anything.")
        response.redirect("verify")
    else:
        response.say("That code is wrong.")
        response.redirect(current_app.config["PUBLIC_BASE_URL"] + "/flows/verify")
    return twiml(response)


@bp.post("/quiet")
@twilio_webhook
def quiet() -> Response:
    """A gather without actionOnEmptyResult: silence carries on to the next verb."""
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action="/flows/never")
    gather.say("Press any key.")
    response.say("No keys, so on to the next verb.")
    return twiml(response)


@bp.post("/loop")
@twilio_webhook
def loop() -> Response:
    """A flow that never ends by itself."""
    response = VoiceResponse()
    response.redirect("/flows/loop")
    return twiml(response)


@bp.post("/status")
@twilio_webhook
def status() -> Response:
    """Call or message status callbacks."""
    return Response(status=204)


@bp.post("/message-status")
@twilio_webhook
def message_status() -> Response:
    """Once a text is delivered or failed, its body is redacted at the carrier."""
    if request.form.get("MessageStatus") in {"delivered", "failed", "undelivered"}:
        carrier().redact_message(request.form["MessageSid"])
    return Response(status=204)


@bp.post("/sms")
@twilio_webhook
def sms() -> Response:
    """Answer a text with a TwiML reply and, through the carrier, a second text."""
    sender = request.form["From"]
    carrier().send_sms(
        to=sender,
        body=f"By the carrier: {SECRET}",
        status_callback=current_app.config["PUBLIC_BASE_URL"] + "/flows/message-status",
        validity_period=600,
    )
    response = MessagingResponse()
    response.message(f"You said {request.form['Body']}.")
    return twiml(response)


def create_app_with_flows() -> Flask:
    app = create_app()
    app.register_blueprint(bp)
    return app


app = create_app_with_flows()
