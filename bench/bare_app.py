"""The baseline: bare Flask endpoints rendering TwiML like ours, with no checks and no state.

Each ``/bare/...`` endpoint reads the posted form, as any webhook must, and
renders a document of the same shape and size as the step it stands beside;
nothing is validated, looked up, counted or logged.

Each ``/floor/...`` endpoint adds to that only what no webhook step can do
without: it checks ``X-Twilio-Signature`` as the service does, and makes one
Redis round trip (a script reading one hash field, with the service's client
settings). What it costs over the bare endpoint is the floor under any
service that checks Twilio's signature and keeps its state in Redis.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from store.redis_client import connect

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


# The floor: the signature check and one Redis round trip, then the bare endpoint -----------

_READ_ONE_FIELD = "return redis.call('HGET', KEYS[1], 'status')"


@functools.cache
def _script() -> Any:
    # Made on first use, in the worker: a connection pool must not cross a fork.
    return connect(os.environ["REDIS_URL"]).register_script(_READ_ONE_FIELD)


def _signed_by_twilio() -> bool:
    """The service's check (core.webhooks): one signature over the public URL."""
    query = request.query_string.decode("latin-1")
    url = os.environ["PUBLIC_BASE_URL"] + request.path + (f"?{query}" if query else "")
    expected = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"]).compute_signature(
        url, request.form
    )
    signature = request.headers.get("X-Twilio-Signature", "")
    return hmac.compare_digest(expected.encode(), signature.encode())


def _floor(view: Callable[[], Response], subject: str) -> Callable[[], Response]:
    @functools.wraps(view)
    def wrapper() -> Response:
        if not _signed_by_twilio():
            return Response("forbidden", status=403)
        try:
            _script()(keys=[f"bench:floor:{request.form.get(subject, '')}"])
        except redis.RedisError:
            return Response("unavailable", status=503)
        return view()

    return wrapper


app.add_url_rule("/floor/voice/gather", "floor_gather", _floor(gather, "CallSid"), methods=["POST"])
app.add_url_rule("/floor/sms", "floor_sms", _floor(sms, "From"), methods=["POST"])
