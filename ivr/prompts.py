"""What the person on the verification call hears at each step, in English and Spanish.

Each function returns a complete TwiML document. Only ``codeword_reading`` and
``codeword_again`` ever carry the codeword; an office-number call hears
``office_greeting`` and ``office_verified`` in place of the greeting and the reading.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Gather, VoiceResponse

from core.twiml import say
from ivr import speech

# Seconds to wait for the first (then the next) key before Twilio posts an empty result.
GATHER_TIMEOUT = 8

TEXT = {
    "en": {
        "greeting": (
            "Hello. This is {brand}, calling {practice} for a codeword verification "
            "that our support team started."
        ),
        "enter_code": "Please enter the six digit code you were given.",
        "no_code": "We did not hear a code.",
        "wrong_code": "That code is not correct. You have {remaining} more tries.",
        "wrong_code_last": "That code is not correct. You have one more try.",
        "locked": (
            "That code is not correct, and this verification is now locked. "
            "To try again, contact {support} and ask for a new verification call. Goodbye."
        ),
        "silent": "We did not hear a code, so we will end this call. Goodbye.",
        "voicemail": ("Hello, this is {brand} calling {practice}. No action is needed. Goodbye."),
        "codeword_intro": "Thank you. The practice codeword for {practice} is:",
        "codeword_once_more": "Once more, the codeword is:",
        "codeword_again": "The practice codeword is:",
        "offer_repeat": "To hear it again, press 1. Otherwise, you may hang up.",
        "goodbye": "Thank you. Goodbye.",
        "expired": (
            "This verification call has expired. Please ask support for a new one. Goodbye."
        ),
        "ended": "This verification call has ended. Goodbye.",
        "office_greeting": (
            "Hello. This is {brand}, calling to confirm that this is the office number "
            "of {practice}."
        ),
        "office_verified": (
            "Thank you. This number is now verified as the office number of {practice}. Goodbye."
        ),
    },
    "es": {
        "greeting": (
            "Hola. Le llama {brand} para {practice}, por una verificación de la palabra "
            "clave que inició nuestro equipo de soporte."
        ),
        "enter_code": "Por favor, marque el código de seis dígitos que le dieron.",
        "no_code": "No recibimos ningún código.",
        "wrong_code": "Ese código no es correcto. Le quedan {remaining} intentos.",
        "wrong_code_last": "Ese código no es correcto. Le queda un intento.",
        "locked": (
            "Ese código no es correcto, y esta verificación queda bloqueada. "
            "Para intentarlo de nuevo, comuníquese con {support} y pida una nueva llamada "
            "de verificación. Adiós."
        ),
        "silent": "No recibimos ningún código, así que terminaremos esta llamada. Adiós.",
        "voicemail": ("Hola, le llama {brand} para {practice}. No es necesario hacer nada. Adiós."),
        "codeword_intro": "Gracias. La palabra clave de {practice} es:",
        "codeword_once_more": "Una vez más, la palabra clave es:",
        "codeword_again": "La palabra clave es:",
        "offer_repeat": "Para escucharla de nuevo, marque 1. Si no, puede colgar.",
        "goodbye": "Gracias. Adiós.",
        "expired": ("Esta llamada de verificación ha caducado. Pida una nueva a soporte. Adiós."),
        "ended": "Esta llamada de verificación ha terminado. Adiós.",
        "office_greeting": (
            "Hola. Le llama {brand} para confirmar que este es el número de la oficina "
            "de {practice}."
        ),
        "office_verified": (
            "Gracias. Este número queda verificado como el número de la oficina de "
            "{practice}. Adiós."
        ),
    },
}


def text(language: str, name: str, **values: object) -> str:
    """A prompt in ``language`` (English if we have no such language)."""
    return TEXT.get(language, TEXT["en"])[name].format(**values)


def _ask_for_code(response: VoiceResponse, language: str, action: str, lead: str = "") -> None:
    gather = Gather(
        num_digits=6,
        action=action,
        method="POST",
        timeout=GATHER_TIMEOUT,
        finish_on_key="#",
        action_on_empty_result=True,
    )
    if lead:
        say(gather, lead, language)
    say(gather, text(language, "enter_code"), language)
    response.append(gather)


def _hang_up(language: str, name: str, **values: object) -> VoiceResponse:
    response = VoiceResponse()
    say(response, text(language, name, **values), language)
    response.hangup()
    return response


def greeting(language: str, *, brand: str, practice: str, code_action: str) -> VoiceResponse:
    """Who is calling and why, then a Gather for the six-digit code."""
    response = VoiceResponse()
    lead = text(language, "greeting", brand=brand, practice=practice)
    _ask_for_code(response, language, code_action, lead)
    return response


def office_greeting(language: str, *, brand: str, practice: str, code_action: str) -> VoiceResponse:
    """An office-number call: why we call, then a Gather for the six-digit code."""
    response = VoiceResponse()
    lead = text(language, "office_greeting", brand=brand, practice=practice)
    _ask_for_code(response, language, code_action, lead)
    return response


def office_verified(language: str, *, practice: str) -> VoiceResponse:
    """The right code on an office-number call: the number is verified; goodbye."""
    return _hang_up(language, "office_verified", practice=practice)


def ask_again_after_silence(language: str, code_action: str) -> VoiceResponse:
    response = VoiceResponse()
    _ask_for_code(response, language, code_action, text(language, "no_code"))
    return response


def ask_again_after_wrong_code(language: str, code_action: str, remaining: int) -> VoiceResponse:
    response = VoiceResponse()
    if remaining == 1:
        lead = text(language, "wrong_code_last")
    else:
        lead = text(language, "wrong_code", remaining=remaining)
    _ask_for_code(response, language, code_action, lead)
    return response


def locked(language: str, *, support: str) -> VoiceResponse:
    """Three wrong codes: the call is locked; how to reach support for a new one."""
    return _hang_up(language, "locked", support=support)


def silent(language: str) -> VoiceResponse:
    return _hang_up(language, "silent")


def voicemail(language: str, *, brand: str, practice: str) -> VoiceResponse:
    """For an answering machine: who called, nothing else."""
    return _hang_up(language, "voicemail", brand=brand, practice=practice)


def expired(language: str) -> VoiceResponse:
    return _hang_up(language, "expired")


def ended(language: str) -> VoiceResponse:
    return _hang_up(language, "ended")


def goodbye(language: str) -> VoiceResponse:
    return _hang_up(language, "goodbye")


def _offer_repeat(response: VoiceResponse, language: str, repeat_action: str) -> None:
    gather = Gather(
        num_digits=1,
        action=repeat_action,
        method="POST",
        timeout=GATHER_TIMEOUT,
        action_on_empty_result=True,
    )
    say(gather, text(language, "offer_repeat"), language)
    response.append(gather)


def codeword_reading(
    language: str, *, practice: str, codeword: str, repeat_action: str
) -> VoiceResponse:
    """The codeword spelled twice, then the offer to hear it again."""
    response = VoiceResponse()
    say(response, text(language, "codeword_intro", practice=practice), language)
    speech.say_spelled(response, codeword, language)
    response.pause(length=1)
    say(response, text(language, "codeword_once_more"), language)
    speech.say_spelled(response, codeword, language)
    _offer_repeat(response, language, repeat_action)
    return response


def codeword_again(
    language: str, *, codeword: str, repeat_action: str, more_repeats: bool
) -> VoiceResponse:
    """The codeword once more; offered again while repeats remain, else goodbye."""
    response = VoiceResponse()
    say(response, text(language, "codeword_again"), language)
    speech.say_spelled(response, codeword, language)
    if more_repeats:
        _offer_repeat(response, language, repeat_action)
    else:
        say(response, text(language, "goodbye"), language)
        response.hangup()
    return response
