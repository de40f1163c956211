"""How many SMS segments a text takes, and how a text is made to fit two.

GSM-7 (3GPP TS 23.038) carries 160 septets in one segment and 153 per part of
a longer text; characters of its extension table take two septets. A text with
any character outside GSM-7 goes as UCS-2: 70 UTF-16 units, or 67 per part.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

MAX_SEGMENTS = 2
# Two concatenated GSM-7 parts: 2 x 153 septets.
MAX_GSM7_SEPTETS = 306


def gsm7_septets(text: str) -> int | None:
    """Septets ``text`` takes in GSM-7, or None if it cannot be sent in GSM-7."""
    septets = 0
    for ch in text:
        if ch in GSM7_BASIC:
            septets += 1
        elif ch in GSM7_EXTENSION:
            septets += 2
        else:
            return None
    return septets


def segment_count(text: str) -> int:
    """How many SMS segments ``text`` is sent as."""
    septets = gsm7_septets(text)
    if septets is not None:
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def fits(text: str) -> bool:
    """Whether ``text`` goes in at most two segments."""
    return segment_count(text) <= MAX_SEGMENTS


ELLIPSIS = "..."


def shorten(name: str, length: int) -> str:
    """``name`` cut to ``length`` characters, ending in ... when cut."""
    if len(name) <= length:
        return name
    return name[: max(1, length - len(ELLIPSIS))].rstrip() + ELLIPSIS


def fit_name(build: Callable[[str], str], name: str) -> str:
    """``build(name)``, with ``name`` shortened until the text fits two segments."""
    for length in range(len(name), 0, -1):
        text = build(shorten(name, length))
        if fits(text):
            return text
    return build(shorten(name, 1))


def gsm7_only(text: str) -> str:
    """``text`` in GSM-7 characters: accents dropped where GSM-7 lacks the letter, else "?"."""
    out = []
    for ch in text:
        if ch not in GSM7_BASIC:
            ch = unicodedata.normalize("NFKD", ch)[0]
        out.append(ch if ch in GSM7_BASIC and ch not in "\r\n" else "?")
    return "".join(out)
