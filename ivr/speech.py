"""Spelling the codeword aloud, one character at a time, in English or Spanish.

Letters are spelled as letters and digits as digits (SSML ``say-as spell-out``),
with a pause after each; capitals are announced ("capital M"); punctuation is
named ("dash"), since a text-to-speech voice would otherwise skip it.
"""

from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from core.twiml import VOICES

PAUSE = "400ms"

CAPITAL = {"en": "capital", "es": "mayúscula"}

SYMBOLS = {
    "en": {
        " ": "space",
        "!": "exclamation mark",
        '"': "quotation mark",
        "#": "hash",
        "$": "dollar sign",
        "%": "percent sign",
        "&": "ampersand",
        "'": "apostrophe",
        "(": "open parenthesis",
        ")": "close parenthesis",
        "*": "star",
        "+": "plus",
        ",": "comma",
        "-": "dash",
        ".": "dot",
        "/": "slash",
        ":": "colon",
        ";": "semicolon",
        "<": "less than",
        "=": "equals",
        ">": "greater than",
        "?": "question mark",
        "@": "at sign",
        "[": "open bracket",
        "\\": "backslash",
        "]": "close bracket",
        "^": "caret",
        "_": "underscore",
        "`": "backtick",
        "{": "open brace",
        "|": "vertical bar",
        "}": "close brace",
        "~": "tilde",
    },
    "es": {
        " ": "espacio",
        "!": "signo de exclamación",
        '"': "comillas",
        "#": "numeral",
        "$": "signo de dólar",
        "%": "signo de por ciento",
        "&": "et",
        "'": "apóstrofo",
        "(": "abre paréntesis",
        ")": "cierra paréntesis",
        "*": "asterisco",
        "+": "más",
        ",": "coma",
        "-": "guion",
        ".": "punto",
        "/": "barra",
        ":": "dos puntos",
        ";": "punto y coma",
        "<": "menor que",
        "=": "igual",
        ">": "mayor que",
        "?": "signo de interrogación",
        "@": "arroba",
        "[": "abre corchete",
        "\\": "barra invertida",
        "]": "cierra corchete",
        "^": "acento circunflejo",
        "_": "guion bajo",
        "`": "acento grave",
        "{": "abre llave",
        "|": "barra vertical",
        "}": "cierra llave",
        "~": "virgulilla",
    },
}


@dataclass(frozen=True)
class Spoken:
    """One character of the codeword as said: an optional word before it, then the character.

    ``spell`` is the character to spell out (a letter or digit), or None when
    the character is said as the word alone (punctuation, space).
    """

    word: str | None
    spell: str | None


def spell(codeword: str, language: str = "en") -> list[Spoken]:
    """How each character of ``codeword`` is said, in order."""
    symbols = SYMBOLS.get(language, SYMBOLS["en"])
    capital = CAPITAL.get(language, CAPITAL["en"])
    spoken = []
    for ch in codeword:
        if ch.isascii() and ch.isalpha():
            spoken.append(Spoken(capital if ch.isupper() else None, ch))
        elif ch.isascii() and ch.isdigit():
            spoken.append(Spoken(None, ch))
        else:
            spoken.append(Spoken(symbols.get(ch, ch), None))
    return spoken


def say_spelled(response: VoiceResponse, codeword: str, language: str = "en") -> None:
    """Add one ``<Say>`` that spells ``codeword`` with a pause after every character."""
    voice, lang = VOICES.get(language, VOICES["en"])
    say = response.say(voice=voice, language=lang)
    for item in spell(codeword, language):
        if item.word:
            # Plain text directly before an element or a break; never two texts in a row.
            say.nest(f" {item.word} ")
        if item.spell:
            say.say_as(item.spell, interpret_as="spell-out")
        say.break_(time=PAUSE)
