"""Every text the texting flow sends, each within two SMS segments.

Only ``codeword`` carries the codeword, and it goes out through the REST API,
never as a TwiML reply. Practice names are shortened when a text would
otherwise take a third segment; the codeword never is. The disclosure notice,
which follows voice and app disclosures too, is worded in core/disclosures.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.segments import fit_name, fits, shorten

# Shortest a practice name gets in the list before entries are left out instead.
MIN_NAME = 8


@dataclass(frozen=True)
class Texts:
    """The replies and texts, in the configured brand's name."""

    brand: str
    support: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Texts:
        return cls(brand=config["BRAND_NAME"], support=config["SUPPORT_CONTACT"])

    @property
    def help(self) -> str:
        return (
            f"{self.brand}: Practice Codeword texts for practice admins. Text CODEWORD from "
            f"your verified cell to get it. Help: {self.support}. Msg&data rates may apply. "
            "Reply STOP to opt out."
        )

    @property
    def generic(self) -> str:
        """The one reply for everyone who may not have the codeword texted."""
        return (
            f"{self.brand}: we text the Practice Codeword only to a practice admin's "
            f"verified cell phone. Please ask your practice admin, or contact {self.support}. "
            "Reply STOP to opt out."
        )

    @property
    def hint(self) -> str:
        return (
            f"{self.brand}: text CODEWORD for your Practice Codeword, HELP for help, "
            "STOP to opt out."
        )

    @property
    def limit_reached(self) -> str:
        return (
            f"{self.brand}: the codeword was requested too often. Please try again later, "
            f"or contact {self.support}."
        )

    def no_codeword(self, practice_name: str) -> str:
        return fit_name(
            lambda name: (
                f"{self.brand}: {name} has no Practice Codeword yet. An admin can set one "
                f"in {self.brand} under Settings > User Accounts."
            ),
            practice_name,
        )

    def choose_practice(self, practice_names: Sequence[str], minutes: int) -> str:
        """Ask an admin of several practices which one: "Reply 1 for ..., 2 for ..."."""

        def build(names: Sequence[str], total: int) -> str:
            entries = ", ".join(f"{i} for {name}" for i, name in enumerate(names, 1))
            more = "" if len(names) == total else f" (first {len(names)} of {total})"
            return (
                f"{self.brand}: Reply {entries}{more} to get that practice's codeword "
                f"within {minutes} minutes."
            )

        total = len(practice_names)
        longest = max((len(n) for n in practice_names), default=0)
        for length in range(longest, MIN_NAME - 1, -1):
            text = build([shorten(n, length) for n in practice_names], total)
            if fits(text):
                return text
        # Too many to name: offer the first ones, each name at its shortest.
        for count in range(total - 1, 0, -1):
            text = build([shorten(n, MIN_NAME) for n in practice_names[:count]], total)
            if fits(text):
                return text
        return build([shorten(practice_names[0], MIN_NAME)], total)

    def cell_verification_code(self, code: str, minutes: int) -> str:
        """The code that proves a cell number; never the codeword."""
        return (
            f"{self.brand}: your code to verify this cell phone is {code}. It expires in "
            f"{minutes} minutes. If you did not expect it, ignore this text."
        )

    def codeword(self, practice_name: str, codeword: str, *, by_support: bool) -> str:
        """The codeword text itself."""
        requested = f" Sent at the request of {self.brand} support." if by_support else ""
        return fit_name(
            lambda name: (
                f"{self.brand}: the Practice Codeword for {name} is {codeword}\n"
                f"Keep it private.{requested} Reply STOP to opt out."
            ),
            practice_name,
        )
