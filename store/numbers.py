"""Phone numbers: E.164 normalisation, the allowed-country fence, masking."""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers


class InvalidNumber(ValueError):
    """Not a dialable number in an allowed country."""


def normalise(raw: str, allowed_countries: Iterable[str]) -> str:
    """Return ``raw`` as E.164, or raise InvalidNumber.

    Numbers without a country code are read as North American; numbers outside
    the allowed countries are refused so no request can make us dial abroad.
    """
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 32:
        raise InvalidNumber("a phone number is required")
    try:
        parsed = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber("not a phone number") from exc
    # What is_valid_number does, keeping the region it finds rather than finding it twice.
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or not phonenumbers.is_valid_number_for_region(parsed, region):
        raise InvalidNumber("not a valid phone number")
    if region not in set(allowed_countries):
        raise InvalidNumber(f"numbers in {region or 'that region'} are not allowed")
    # Numbers that cost money to reach or cannot be a practice's phone: calls and texts
    # to them are how toll fraud would go, so none is ever stored, dialled or texted.
    kind = phonenumbers.number_type(parsed)
    refused = {
        phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate",
        phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost",
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal (500)",
        phonenumbers.PhoneNumberType.UAN: "universal access",
        phonenumbers.PhoneNumberType.PAGER: "pager",
        phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail-only",
    }
    if kind in refused:
        raise InvalidNumber(f"{refused[kind]} numbers are not accepted")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(number: str | None) -> str | None:
    """Hide all but the country code and last four digits: ``+1******4567``."""
    if not number:
        return None
    try:
        country = f"+{phonenumbers.parse(number).country_code}"
    except phonenumbers.NumberParseException:
        country = ""
    hidden = len(number) - len(country) - 4
    if hidden <= 0:
        return "*" * len(number)
    return country + "*" * hidden + number[-4:]
