"""Rendering TwiML, and the apology every webhook falls back on."""

from __future__ import annotations

from flask import Response, request
from twilio.twiml import TwiML
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

APOLOGY = {
    "en": "We're sorry, we can't help with that right now. Please try again later. Goodbye.",
    "es": "Lo sentimos, no podemos ayudarle en este momento. Inténtelo más tarde. Adiós.",
}

# Polly neural voices read clearly on the phone; language codes as Twilio expects.
VOICES = {"en": ("Polly.Joanna-Neural", "en-US"), "es": ("Polly.Lupe-Neural", "es-US")}


def twiml(document: TwiML) -> Response:
    """Return a TwiML document as ``text/xml``."""
    return Response(str(document), mimetype="text/xml")


def say(
    response: VoiceResponse | Gather, text: str, language: str = "en", **kwargs: object
) -> None:
    """Add a ``<Say>`` in the practice's language and matching voice."""
    voice, lang = VOICES.get(language, VOICES["en"])
    response.say(text, voice=voice, language=lang, **kwargs)


def apology(language: str = "en") -> Response:
    """Valid TwiML that apologises and reveals nothing: voice hangs up, SMS stays silent."""
    if request.blueprint == "sms" or request.path.startswith("/sms"):
        return twiml(MessagingResponse())
    response = VoiceResponse()
    say(response, APOLOGY.get(language, APOLOGY["en"]), language)
    response.hangup()
    return twiml(response)
