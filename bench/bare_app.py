"""The baseline: bare Flask endpoints rendering TwiML like ours, with no checks and no state."""

from __future__ import annotations

from flask import Flask, Response
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

app = Flask(__name__)


def _xml(document: object) -> Response:
    return Response(str(document), mimetype="text/xml")


@app.post("/bare/voice")
def voice() -> Response:
    """A greeting and a six-digit <Gather>, as the answer and challenge steps render."""
    response = VoiceResponse()
    gather = Gather(num_digits=6, action="/bare/voice?t=token", action_on_empty_result=True)
    gather.say(
        "Hello, this is Practice by Numbers calling for Bright Smiles Dental. "
        "Please enter the six digit code you were given by our support team.",
        voice="Polly.Joanna-Neural",
        language="en-US",
    )
    response.append(gather)
    response.redirect("/bare/voice?t=token")
    return _xml(response)


@app.post("/bare/sms")
def sms() -> Response:
    """A one-message reply, as the keyword webhook renders."""
    response = MessagingResponse()
    response.message(
        "Practice by Numbers: reply CODEWORD from your verified cell. Reply STOP to opt out."
    )
    return _xml(response)


@app.get("/healthz")
def healthz() -> str:
    return "ok"
