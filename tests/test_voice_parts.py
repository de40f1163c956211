"""The call flow's plain parts: spelling the codeword, the challenge code, callback tokens."""

from __future__ import annotations

import string

import pytest
from flask import Flask
from itsdangerous import URLSafeTimedSerializer

from ivr import speech, tokens
from ivr.session import CallSession, Purpose
from ivr.speech import Spoken
from store import onetime
from tests.voice import Clock

# Spelling ------------------------------------------------------------------------------


def test_letters_and_digits_are_spelled_one_by_one() -> None:
    assert speech.spell("ab7") == [Spoken(None, "a"), Spoken(None, "b"), Spoken(None, "7")]


def test_capitals_are_announced() -> None:
    assert speech.spell("Mm") == [Spoken("capital", "M"), Spoken(None, "m")]
    assert speech.spell("M", "es") == [Spoken("mayúscula", "M")]


def test_a_dash_is_said_as_dash() -> None:
    assert speech.spell("a-b")[1] == Spoken("dash", None)
    assert speech.spell("a-b", "es")[1] == Spoken("guion", None)


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_printable_ascii_character_is_said_as_a_word_or_spelled(language: str) -> None:
    for ch in string.printable[:95]:  # letters, digits, punctuation, space
        [item] = speech.spell(ch, language)
        if ch.isalnum():
            assert item.spell == ch
        else:
            assert item.spell is None
            assert item.word and item.word.strip() and item.word != ch


def test_an_unknown_language_is_spelled_in_english() -> None:
    assert speech.spell("-", "fr") == [Spoken("dash", None)]


# The challenge code --------------------------------------------------------------------


def test_a_challenge_code_is_six_digits() -> None:
    codes = {onetime.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # random, not a sequence or a constant


def test_a_code_hash_is_bound_to_its_session_and_key() -> None:
    first = onetime.code_hash("key", "VC1", "123456")
    assert first == onetime.code_hash("key", "VC1", "123456")
    assert first != onetime.code_hash("key", "VC2", "123456")
    assert first != onetime.code_hash("other-key", "VC1", "123456")
    assert "123456" not in first


def test_same_code_compares_hashes() -> None:
    digest = onetime.code_hash("key", "VC1", "123456")
    assert onetime.same_code(digest, onetime.code_hash("key", "VC1", "123456"))
    assert not onetime.same_code(digest, onetime.code_hash("key", "VC1", "123457"))
    assert not onetime.same_code(digest, "")


# Callback tokens -----------------------------------------------------------------------


REF = tokens.CallRef("VC1", "p-1", "es")


def test_a_token_names_its_session(app: Flask) -> None:
    with app.test_request_context():
        assert tokens.load(tokens.sign(REF)) == REF


def test_an_altered_token_names_nothing(app: Flask) -> None:
    with app.test_request_context():
        token = tokens.sign(REF)
        payload, _, signature = token.rpartition(".")
        # Change a middle character: the last one's low bits can be base64 padding.
        middle = len(signature) // 2
        flipped = "A" if signature[middle] != "A" else "B"
        altered = f"{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
        assert tokens.load(altered) is None
        assert tokens.load(token[:-1]) is None
        assert tokens.load("") is None


def test_a_token_for_another_purpose_names_nothing(app: Flask) -> None:
    other = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="another-purpose")
    with app.test_request_context():
        assert tokens.load(other.dumps({"s": "VC1", "p": "p-1", "l": "en"})) is None


def test_a_token_expires_after_an_hour(app: Flask) -> None:
    clock = Clock()
    app.config["CLOCK"] = clock
    with app.test_request_context():
        token = tokens.sign(REF)
        clock.advance(tokens.MAX_AGE)
        assert tokens.load(token) == REF
        clock.advance(1)
        assert tokens.load(token) is None


def test_the_next_step_reuses_the_token_the_webhook_came_with(app: Flask) -> None:
    """One token serves every callback of a call; a reference made anew gets a signed one."""
    with app.test_request_context():
        token = tokens.sign(REF)
        loaded = tokens.load(token)
        assert loaded is not None and tokens.token_for(loaded) == token
        assert tokens.load(tokens.token_for(REF)) == REF


def test_a_callback_url_is_on_the_public_origin(app: Flask) -> None:
    with app.test_request_context():
        url = tokens.callback_url("ivr.verification_code", "abc")
    assert url == "https://codeword.example.com/ivr/verification/code?t=abc"


# The call session --------------------------------------------------------------------


def test_a_call_session_reads_back_from_its_hash_as_it_was_written() -> None:
    fresh = CallSession(
        id="VC1",
        practice_id="p-1",
        practice_name="Bright Smiles",
        language="es",
        to="+12025550100",
        actor="helpdesk",
        requested_by="Dr. Ana Ruiz",
        created_at=1_700_000_000.25,
        expires_at=1_700_000_600.25,
        purpose=Purpose.OFFICE,
        code_hash="ab" * 32,
    )
    for call in (fresh, fresh.placed_as("CA" + "1" * 32, "ringing")):
        assert CallSession.from_hash(call.id, call.to_hash()) == call
    assert "code_sealed" not in fresh.to_hash() and "call_sid" not in fresh.to_hash()
