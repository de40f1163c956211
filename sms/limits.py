"""The texting rate limits (settings ``SMS_*``), as rules for store.ratelimit.

The codeword-text limits count every codeword text, whether an admin asked by
keyword or support sent it: per destination number and per practice.
"""

from __future__ import annotations

from flask import current_app

from store.ratelimit import Rule


def inbound_rule(number: str) -> Rule:
    """Texts we answer from one number; past it, a flood, dropped without a reply."""
    return Rule.of(current_app.config["SMS_INBOUND_PER_NUMBER"], "sms-inbound", number)


def number_rule(number: str) -> Rule:
    """Codeword texts to one number (3 an hour by default)."""
    return Rule.of(
        current_app.config["SMS_CODEWORD_TEXTS_PER_NUMBER"], "sms-codeword-number", number
    )


def practice_rule(practice_id: str) -> Rule:
    """Codeword texts of one practice's codeword (5 a day by default)."""
    return Rule.of(
        current_app.config["SMS_CODEWORD_TEXTS_PER_PRACTICE"], "sms-codeword-practice", practice_id
    )
