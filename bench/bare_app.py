"""The baseline: bare Flask endpoints rendering TwiML like ours, with no checks and no state.

Each reads the posted form, as any webhook must, and renders a document of the
same shape and size as the step it stands beside; nothing is validated, looked
up, counted or logged.
"""

from __future__ import annotations

from flask import Flask, Response, request
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

app = Flask(__name__)

VOICE = "Polly.Joanna-Neural"
LANGUAGE = "en-US"


def _xml(document: object) -> Response:
    return Response(str(document), mimetype="text/xml")


@app.post("/bare/voice/gather")
def gather() -> Response:
    """A lead and a six-digit <Gather>, as the answer and challenge steps render."""
    response = VoiceResponse()
    gather = Gather(
        num_digits=6,
        action="https://codeword.example.com/bare/voice/gather?t=" + "t" * 120,
        method="POST",
        timeout=8,
        finish_on_key="#",
        action_on_empty_result=True,
    )
    lead = "That code is not correct." if request.form.get("Digits") else "Hello."
    gather.say(
        f"{lead} This is Practice by Numbers, calling Bright Smiles Dental for a codeword "
        "verification that our support team started.",
        voice=VOICE,
        language=LANGUAGE,
    )
    gather.say("Please enter the six digit code you were given.", voice=VOICE, language=LANGUAGE)
    response.append(gather)
    return _xml(response)


@app.post("/bare/voice/say")
def say() -> Response:
    """A <Say> and a <Hangup>, as the inbound call renders."""
    response = VoiceResponse()
    response.say(
        f"You have reached the verification line of {request.form.get('To', 'us')}. "
        "For help, please contact support at practicebynumbers.com. Goodbye.",
        voice=VOICE,
        language=LANGUAGE,
    )
    response.hangup()
    return _xml(response)


@app.post("/bare/sms")
def sms() -> Response:
    """A one-message reply, as the inbound text webhook renders."""
    response = MessagingResponse()
    if request.form.get("Body", "").strip().upper() == "HELP":
        response.message(
            "Practice by Numbers: Practice Codeword texts for practice admins. Text CODEWORD "
            "from your verified cell to get it. Help: support at practicebynumbers.com. "
            "Msg&data rates may apply. Reply STOP to opt out."
        )
    else:
        response.message(
            "Practice by Numbers: we text the Practice Codeword only to a practice admin's "
            "verified cell phone. Please ask your practice admin, or contact support at "
            "practicebynumbers.com. Reply STOP to opt out."
        )
    return _xml(response)


@app.get("/healthz")
def healthz() -> str:
    return "ok"
