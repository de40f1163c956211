"""One-time codes: six digits that work once, for ten minutes, and burn after three misses.

The call challenge and the office-number check (ivr/) and the cell check (sms/)
all use these. A code comes from ``secrets`` and is kept only as an HMAC (keyed
by SECRET_KEY) bound to what it proves, so Redis never holds it in clear and it
works nowhere else. The scripts that check a code compare hashes in constant time
(store/lua/same_hash.lua) and count misses; Python compares once more before acting.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

CODE_DIGITS = 6
# Seconds a code works after it is made.
CODE_LIFETIME = 10 * 60
# Wrong codes that burn a code (and lock a call).
MAX_WRONG_CODES = 3


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(secret_key: str, binding: str, code: str) -> str:
    """HMAC-SHA256 of the code, bound to ``binding`` (a call session, a user's cell)."""
    # The prefix predates the cell check; kept so that codes pending at a deploy still work.
    message = f"challenge-code:{binding}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def same_code(expected_hash: str, submitted_hash: str) -> bool:
    """Whether two code hashes are equal, compared in constant time."""
    return hmac.compare_digest(expected_hash.encode(), submitted_hash.encode())
