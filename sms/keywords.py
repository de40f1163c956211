"""What an inbound text asks for, read the way Twilio reads keywords.

Keywords are ASCII letters, case-insensitive, and ignore surrounding space (and runs
of space inside, so ``code  word`` is ``CODEWORD``); a look-alike (``ſtop``) is none.
Anything else is UNKNOWN; a bare number is a CHOICE, which only means something while
a practice list is pending.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    CODEWORD = "codeword"
    CHOICE = "choice"
    HELP = "help"
    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    UNKNOWN = "unknown"


# Twilio's own opt-out, opt-in and help words, so our records agree with Twilio's.
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
CODEWORD_WORDS = frozenset({"CODEWORD", "CODE WORD"})

_CHOICE = re.compile(r"[0-9]{1,2}")


@dataclass(frozen=True)
class Keyword:
    kind: Kind
    choice: int | None = None


def parse_keyword(body: str) -> Keyword:
    """Read an inbound text's body as one of the keywords we answer."""
    if not body.isascii():
        # Twilio matches ASCII letters only; str.upper() would make "ſtop" and "ﬆop" STOP,
        # opting out a number that Twilio itself does not.
        return Keyword(Kind.UNKNOWN)
    text = " ".join(body.split()).upper()
    if text in OPT_OUT_WORDS:
        return Keyword(Kind.OPT_OUT)
    if text in OPT_IN_WORDS:
        return Keyword(Kind.OPT_IN)
    if text in HELP_WORDS:
        return Keyword(Kind.HELP)
    if text in CODEWORD_WORDS:
        return Keyword(Kind.CODEWORD)
    if _CHOICE.fullmatch(text):
        return Keyword(Kind.CHOICE, int(text))
    return Keyword(Kind.UNKNOWN)
