"""Keywords read as Twilio reads them; every text fits two SMS segments."""

from __future__ import annotations

import pytest

from core.segments import MAX_GSM7_SEPTETS, fits, gsm7_septets, segment_count
from sms.keywords import Kind, parse_keyword
from sms.messages import Texts

DEFAULT = Texts(brand="Practice by Numbers", support="support at practicebynumbers.com")
# The longest brand and support contact the docs allow for.
LONGEST = Texts(brand="B" * 40, support="s" * 60)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("CODEWORD", Kind.CODEWORD),
        ("codeword", Kind.CODEWORD),
        ("  CodeWord \n", Kind.CODEWORD),
        ("code word", Kind.CODEWORD),
        ("CODE   WORD", Kind.CODEWORD),
        ("help", Kind.HELP),
        (" Info ", Kind.HELP),
        ("start", Kind.OPT_IN),
        ("YES", Kind.OPT_IN),
        ("unstop", Kind.OPT_IN),
        ("2", Kind.CHOICE),
        (" 12 ", Kind.CHOICE),
        ("codewords", Kind.UNKNOWN),
        ("please send the codeword", Kind.UNKNOWN),
        ("stop it", Kind.UNKNOWN),
        ("", Kind.UNKNOWN),
        ("123", Kind.UNKNOWN),
    ],
)
def test_keywords_are_case_insensitive_and_ignore_surrounding_space(body: str, kind: Kind) -> None:
    assert parse_keyword(body).kind is kind


@pytest.mark.parametrize(
    "word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
)
def test_every_twilio_opt_out_word_opts_out(word: str) -> None:
    assert parse_keyword(word).kind is Kind.OPT_OUT
    assert parse_keyword(f" {word.lower()} ").kind is Kind.OPT_OUT


@pytest.mark.parametrize(
    "body", ["\u017ftop", "\ufb06op", "\ufb05op", "sto\u0440", "CODEWORD\u00a0", "\u0663"]
)
def test_look_alike_letters_are_no_keyword(body: str) -> None:
    """As Twilio matches: ASCII letters only, though Unicode upper-cases some to ASCII."""
    assert parse_keyword(body).kind is Kind.UNKNOWN


def test_a_number_is_read_as_a_choice() -> None:
    assert parse_keyword(" 3 ").choice == 3


def test_gsm7_counts_extension_characters_twice_and_refuses_others() -> None:
    assert gsm7_septets("abc") == 3
    assert gsm7_septets("a[b]") == 6
    assert gsm7_septets("café") == 4  # é is in GSM-7
    assert gsm7_septets("naïve ’quote’") is None


def test_segment_counts_follow_gsm7_and_ucs2_sizes() -> None:
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("a" * 306) == 2
    assert segment_count("a" * 307) == 3
    assert segment_count("ó" * 70) == 1
    assert segment_count("ó" * 71) == 2
    assert segment_count("ó" * 135) == 3


@pytest.mark.parametrize("texts", [DEFAULT, LONGEST], ids=["default", "longest-config"])
def test_every_fixed_reply_is_gsm7_within_two_segments(texts: Texts) -> None:
    replies = (
        texts.help,
        texts.generic,
        texts.hint,
        texts.limit_reached,
    )
    for reply in replies:
        septets = gsm7_septets(reply)
        assert septets is not None, reply
        assert septets <= MAX_GSM7_SEPTETS, reply


@pytest.mark.parametrize("texts", [DEFAULT, LONGEST], ids=["default", "longest-config"])
@pytest.mark.parametrize("by_support", [False, True])
def test_the_codeword_text_fits_with_the_longest_name_and_codeword(
    texts: Texts, by_support: bool
) -> None:
    codeword = "x" * 64
    text = texts.codeword("Bright Smiles Family Dentistry " * 7, codeword, by_support=by_support)
    assert codeword in text
    assert gsm7_septets(text) is not None
    assert len(text) <= MAX_GSM7_SEPTETS


def test_a_short_codeword_text_keeps_the_whole_practice_name() -> None:
    text = DEFAULT.codeword("Bright Smiles", "maple-otter-47", by_support=False)
    assert "Bright Smiles is maple-otter-47" in text
    assert segment_count(text) == 1


def test_a_practice_name_outside_gsm7_is_shortened_to_fit_ucs2() -> None:
    text = DEFAULT.codeword("Clínica Dental " * 10, "maple-otter-47", by_support=True)
    assert "maple-otter-47" in text
    assert fits(text)


def test_the_practice_list_numbers_each_practice() -> None:
    text = DEFAULT.choose_practice(["Bright Smiles", "Oak Dental"], 5)
    assert "Reply 1 for Bright Smiles, 2 for Oak Dental" in text
    assert fits(text)


@pytest.mark.parametrize("count", [2, 5, 12, 40])
def test_the_practice_list_fits_however_many_long_names(count: int) -> None:
    names = [f"Practice number {i} of the Very Long Name Dental Group" for i in range(count)]
    text = LONGEST.choose_practice(names, 5)
    assert "Reply 1 for " in text
    assert gsm7_septets(text) is not None
    assert len(text) <= MAX_GSM7_SEPTETS


def test_names_are_shortened_not_dropped_while_they_can_be() -> None:
    names = [f"Practice {i} Dental Group of the Greater Metropolitan Area" for i in range(4)]
    text = DEFAULT.choose_practice(names, 5)
    assert all(f"{i + 1} for Practice {i}" in text for i in range(4))
    assert "first" not in text


def test_the_no_codeword_reply_fits_with_the_longest_name() -> None:
    assert len(LONGEST.no_codeword("N" * 200)) <= MAX_GSM7_SEPTETS
