"""Codewords that are easy to say on a phone, and the rules for chosen ones."""

from __future__ import annotations

import secrets

# Short, common, unambiguous when spelled aloud; no homophones (no "sea"/"see").
WORDS = (
    "amber", "apple", "arrow", "badge", "baker", "beach", "berry", "birch", "brave",
    "brick", "cabin", "camel", "candy", "cedar", "chalk", "cider", "cloud", "comet",
    "coral", "crane", "daisy", "delta", "ember", "fable", "ferry", "field", "flame",
    "frost", "garden", "ginger", "grape", "harbor", "hazel", "honey", "jasper", "jelly",
    "kayak", "lemon", "lunar", "mango", "maple", "meadow", "melon", "mint", "north",
    "ocean", "olive", "orbit", "otter", "panda", "paper", "peach", "pepper", "piano",
    "pilot", "planet", "plum", "polar", "prism", "quartz", "radar", "raven", "river",
    "robin", "rocket", "sable", "salmon", "sandy", "silver", "spruce", "summer", "sunny",
    "tango", "tiger", "timber", "topaz", "tulip", "velvet", "violet", "walnut", "willow",
    "winter", "zebra",
)  # fmt: skip

# Digits only from 2-9: 0 and 1 read like the letters O and l.
DIGITS = "23456789"

MIN_LENGTH = 4
MAX_LENGTH = 64


def generate_codeword() -> str:
    """Two words and two digits, e.g. ``maple-otter-47``."""
    first, second = secrets.choice(WORDS), secrets.choice(WORDS)
    while second == first:
        second = secrets.choice(WORDS)
    digits = "".join(secrets.choice(DIGITS) for _ in range(2))
    return f"{first}-{second}-{digits}"


def validate_codeword(value: object) -> str:
    """Return a chosen codeword, or raise ValueError saying what is wrong with it."""
    if not isinstance(value, str):
        raise ValueError("codeword must be a string")
    value = value.strip()
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        raise ValueError(f"codeword must be {MIN_LENGTH} to {MAX_LENGTH} characters")
    if not all(ch.isascii() and ch.isprintable() for ch in value):
        raise ValueError("codeword may use printable ASCII characters only")
    return value
