"""The codeword at rest: encrypted, readable across key rotation, generated codewords."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from cryptography.fernet import Fernet
from flask import Flask

from store.codewords import DIGITS, WORDS, generate_codeword, validate_codeword
from store.crypto import CodewordCipher
from store.directory import Directory


def test_any_configured_key_decrypts_but_the_first_encrypts() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = CodewordCipher([old]).encrypt("maple-otter-47")
    rotated_cipher = CodewordCipher([new, old])
    assert rotated_cipher.decrypt(token) == "maple-otter-47"
    assert CodewordCipher([new]).decrypt(rotated_cipher.encrypt("x-y-22")) == "x-y-22"


def test_a_codeword_under_an_unknown_key_does_not_decrypt() -> None:
    token = CodewordCipher([Fernet.generate_key().decode()]).encrypt("maple-otter-47")
    with pytest.raises(ValueError) as raised:
        CodewordCipher([Fernet.generate_key().decode()]).decrypt(token)
    assert "maple" not in str(raised.value)


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as raised:
        CodewordCipher(["not-a-fernet-key"])
    assert "not-a-fernet-key" not in str(raised.value)


def test_rotation_command_reencrypts_so_only_the_new_key_is_needed(
    tmp_path: Path, make_app: Callable[..., Flask]
) -> None:
    """After `flask rotate-codeword-keys`, every codeword reads back with the new key alone."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    before = Directory(url, CodewordCipher([old]))
    before.create_all()
    for n in range(3):
        before.put_practice(f"p-{n}", name="P", office_number="+12025550100", codeword=f"cw-{n}-22")
    before.put_practice("p-none", name="P", office_number="+12025550100")

    app = make_app(DATABASE_URL=url, CODEWORD_KEYS=f"{new},{old}")
    result: Result = app.test_cli_runner().invoke(args=["rotate-codeword-keys"])
    assert result.exit_code == 0, result.output
    assert "3 codeword" in result.output

    after = Directory(url, CodewordCipher([new]))
    assert [after.read_codeword(f"p-{n}") for n in range(3)] == ["cw-0-22", "cw-1-22", "cw-2-22"]
    assert after.read_codeword("p-none") is None


def test_generated_codewords_are_two_words_and_two_clear_digits() -> None:
    for _ in range(200):
        first, second, digits = generate_codeword().split("-")
        assert first in WORDS and second in WORDS and first != second
        assert len(digits) == 2 and set(digits) <= set(DIGITS)


@pytest.mark.parametrize("bad", ["abc", "x" * 65, "tab\there", "naïve-word", 42, None])
def test_chosen_codewords_must_be_printable_ascii_of_sensible_length(bad: object) -> None:
    with pytest.raises(ValueError):
        validate_codeword(bad)


def test_a_chosen_codeword_is_trimmed() -> None:
    assert validate_codeword("  Maple-Otter-47 ") == "Maple-Otter-47"
