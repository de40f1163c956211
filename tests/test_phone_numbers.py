"""Phone numbers are normalised to E.164 and fenced to allowed countries."""

from __future__ import annotations

import pytest

from store.numbers import InvalidNumber, mask, normalise

ALLOWED = ["US", "CA"]


@pytest.mark.parametrize(
    "raw",
    ["(202) 555-0100", "202-555-0100", "+1 202 555 0100", "1.202.555.0100", "2025550100"],
)
def test_us_numbers_in_any_format_become_e164(raw: str) -> None:
    assert normalise(raw, ALLOWED) == "+12025550100"


def test_canadian_numbers_are_allowed() -> None:
    assert normalise("+1 416 555 0199", ALLOWED) == "+14165550199"


@pytest.mark.parametrize("raw", ["+44 20 7946 0958", "+33 1 42 68 53 00", "+881 6 1234 5678"])
def test_numbers_outside_the_allowed_countries_are_refused(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        normalise(raw, ALLOWED)


def test_allowed_countries_can_be_widened() -> None:
    assert normalise("+44 20 7946 0958", ["US", "GB"]) == "+442079460958"


@pytest.mark.parametrize("raw", ["", "   ", "hello", "123", "+1 555", "9" * 40])
def test_garbage_is_not_a_number(raw: str) -> None:
    with pytest.raises(InvalidNumber):
        normalise(raw, ALLOWED)


def test_masking_keeps_the_country_code_and_last_four_digits() -> None:
    assert mask("+12025550100") == "+1******0100"
    assert mask(None) is None
