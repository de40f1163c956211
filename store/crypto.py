"""The codeword at rest: Fernet encryption over a rotating list of keys."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CodewordCipher:
    """Encrypts with the first key of ``CODEWORD_KEYS``; decrypts with any."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("CODEWORD_KEYS needs at least one Fernet key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            # Never echo the offending value: it is a key.
            raise ValueError("CODEWORD_KEYS holds a value that is not a Fernet key") from exc

    def encrypt(self, codeword: str) -> bytes:
        return self._fernet.encrypt(codeword.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise ValueError("the stored codeword cannot be decrypted with CODEWORD_KEYS") from exc

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the first key."""
        return self._fernet.rotate(token)
