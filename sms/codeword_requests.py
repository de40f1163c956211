"""Who gets what when a text comes in.

- STOP and Twilio's other opt-out words record a durable opt-out; START, YES
  and UNSTOP lift it. Both are honoured even during a flood, and get no reply
  from us (Twilio's own opt-out handling confirms them).
- An opted-out number gets nothing at all.
- A sender that is the verified cell of an admin, texting CODEWORD, gets the
  codeword by REST (never as a reply), sent by the background worker: the webhook
  never waits for Twilio. An admin of several practices first gets a numbered
  list and answers with a number within CHOICE_TTL.
- Everyone else texting CODEWORD gets one generic reply, the same for an
  unknown number, a staff member and an unverified cell.
- HELP gets the help text, anything else a short hint.
- A number texting more than SMS_INBOUND_PER_NUMBER is dropped without a reply.

Redis: one round trip before deciding (the flood count, the codeword-text
windows and any pending list, in one pipeline) and after it either the
reservation of a codeword text's slots and its job on the queue (two), or storing a
list (one). The windows read first spare a text over the limit those trips; the
reservation is what holds when texts arrive together.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from core import rate_limits
from core.carrier import RecipientOptedOut
from core.extensions import directory, limiter, redis_client
from sms.codeword_texts import SELF, NoCodeword, ask
from sms.keywords import Keyword, Kind, parse_keyword
from sms.messages import Texts
from store import keys
from store.directory import PracticeRecord, UserRecord
from store.errors import LimitExceeded
from store.numbers import InvalidNumber, mask, normalise
from store.ratelimit import Pending, Window

log = logging.getLogger(__name__)

# Seconds a practice list waits for the admin's numbered answer.
CHOICE_TTL = 300
# The opt-out table's number column.
MAX_NUMBER_LENGTH = 20

Admin = tuple[UserRecord, PracticeRecord]


@dataclass(frozen=True)
class Answer:
    """What to reply (a TwiML <Message>; None for none) and why, for the request log."""

    reply: str | None
    outcome: str


def answer_inbound_text(sender: str, body: str) -> Answer:
    """Decide the answer to an inbound text."""
    keyword = parse_keyword(body)
    number = sender_number(sender)
    if keyword.kind in (Kind.OPT_OUT, Kind.OPT_IN):
        # Kept for any sender, even one we would never text, as Twilio keeps it.
        kept_as = number or sender.strip()
        if kept_as and len(kept_as) <= MAX_NUMBER_LENGTH:
            if keyword.kind is Kind.OPT_OUT:
                opt_out(kept_as)
            else:
                directory().opt_in(kept_as)
        return Answer(None, keyword.kind.value)
    if number is None:
        return Answer(None, "not-textable")
    known = directory().sender(number)
    if known.opted_out:
        return Answer(None, "opted-out")

    texts = Texts.from_config(current_app.config)
    wants_codeword = keyword.kind in (Kind.CODEWORD, Kind.CHOICE)
    admin_of = (
        directory().admins_with_verified_cell(number) if wants_codeword and known.admin_cell else []
    )
    looked_up = look_up(number, keyword, admin_of)

    if not looked_up.accepted:
        rate_limits.refused(rate_limits.SMS_INBOUND)
        return Answer(None, "flood")
    if keyword.kind is Kind.HELP:
        return Answer(texts.help, "help")
    if keyword.kind is Kind.CODEWORD and not admin_of:
        return Answer(texts.generic, "generic")
    if keyword.kind is Kind.CODEWORD:
        return answer_admin_codeword(number, admin_of, looked_up, texts)
    if keyword.kind is Kind.CHOICE and admin_of and keyword.choice is not None:
        return answer_admin_choice(number, keyword.choice, admin_of, looked_up, texts)
    return Answer(texts.hint, "hint")


@dataclass
class LookedUp:
    """What one Redis round trip told about a sender before deciding."""

    flood_spends: list[Pending[bool]]
    number_windows: list[Pending[Window]] = field(default_factory=list)
    practice_windows: dict[str, list[Pending[Window]]] = field(default_factory=dict)
    pending_list: Pending[str | None] | None = None

    @property
    def accepted(self) -> bool:
        """Whether the text is within the flood limit (it was counted either way)."""
        return all(spent.value for spent in self.flood_spends)

    def open(self, practice_id: str | None = None) -> bool:
        """Whether another codeword text may go to this number (and of that practice)."""
        windows = list(self.number_windows)
        if practice_id is not None:
            if practice_id not in self.practice_windows:
                return False
            windows += self.practice_windows[practice_id]
        return bool(windows) and all(w.value.open for w in windows)


def look_up(number: str, keyword: Keyword, admin_of: list[Admin]) -> LookedUp:
    """One round trip: count the text against the flood limit and, for an admin, read
    the codeword-text windows and take any pending practice list."""
    batch = limiter().batch()
    looked_up = LookedUp([batch.spend(rule) for rule in rate_limits.inbound_texts_from(number)])
    if admin_of:
        looked_up.number_windows = [
            batch.window(rule) for rule in rate_limits.codeword_texts_to(number)
        ]
        # A list to choose from needs no practice window yet; a text about to go does.
        if keyword.kind is Kind.CHOICE or len(admin_of) == 1:
            looked_up.practice_windows = {
                p.id: [batch.window(rule) for rule in rate_limits.codeword_texts_of(p.id)]
                for _, p in admin_of
            }
        if keyword.kind is Kind.CHOICE:
            looked_up.pending_list = batch.command(
                lambda pipe: pipe.getdel(keys.sms_choice(number))
            )
    batch.execute()
    return looked_up


def answer_admin_codeword(
    number: str, admin_of: list[Admin], looked_up: LookedUp, texts: Texts
) -> Answer:
    """An admin texted CODEWORD: the codeword, or first the list of their practices."""
    if not looked_up.open():
        return limit_reached(texts)
    if len(admin_of) > 1:
        return offer_practices(number, admin_of, texts)
    user, practice = admin_of[0]
    if not looked_up.open(practice.id):
        return limit_reached(texts)
    return text_codeword_to_admin(user, practice, texts)


def answer_admin_choice(
    number: str, choice: int, admin_of: list[Admin], looked_up: LookedUp, texts: Texts
) -> Answer:
    """An admin answered the practice list with a number."""
    assert looked_up.pending_list is not None
    listed = _listed_practice_ids(looked_up.pending_list.value)
    if listed is None:
        return Answer(texts.hint, "hint")
    if not 1 <= choice <= len(listed):
        return offer_practices(number, admin_of, texts)
    found = [(u, p) for u, p in admin_of if p.id == listed[choice - 1]]
    if not found:
        # No longer this practice's admin since the list went out.
        return Answer(texts.generic, "generic")
    user, practice = found[0]
    if not looked_up.open(practice.id):
        return limit_reached(texts)
    return text_codeword_to_admin(user, practice, texts)


def sender_number(sender: str) -> str | None:
    """The sender as E.164 in an allowed country; None for anything we must not text."""
    try:
        return normalise(sender, current_app.config["ALLOWED_COUNTRIES"])
    except InvalidNumber:
        return None


def opt_out(number: str) -> None:
    """Record a durable opt-out: no text of any kind goes to ``number`` until START."""
    try:
        directory().opt_out(number)
    except SQLAlchemyError:
        # Twilio's own opt-out still blocks our texts; this line is what is left to redo.
        log.error("opt-out from %s could not be stored", mask(number))
        raise


def limit_reached(texts: Texts) -> Answer:
    rate_limits.refused(rate_limits.SMS_CODEWORD)
    return Answer(texts.limit_reached, "rate-limited")


def offer_practices(number: str, admin_of: list[Admin], texts: Texts) -> Answer:
    """List the admin's practices by number and remember the list for CHOICE_TTL."""
    practice_ids = [p.id for _, p in admin_of]
    redis_client().set(keys.sms_choice(number), json.dumps(practice_ids), ex=CHOICE_TTL)
    return Answer(texts.choose_practice([p.name for _, p in admin_of], CHOICE_TTL // 60), "listed")


def text_codeword_to_admin(user: UserRecord, practice: PracticeRecord, texts: Texts) -> Answer:
    """Reserve the text's slots and have the worker text the codeword to the admin who
    asked; the webhook answers at once.

    No reply on success: the codeword comes by REST, never as a TwiML reply.
    """
    try:
        reservation = rate_limits.reserve_codeword_text(user.cell_number or "", practice.id)
    except LimitExceeded:
        # Another text of this number or practice took the last slot meanwhile.
        return Answer(texts.limit_reached, "rate-limited")
    try:
        with rate_limits.given_back_on_failure(reservation):
            ask(practice, user, reservation, actor=SELF, requested_by=user.name)
    except NoCodeword:
        return Answer(texts.no_codeword(practice.name), "no-codeword")
    except RecipientOptedOut:
        return Answer(None, "opted-out")
    return Answer(None, "queued")


def _listed_practice_ids(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    try:
        listed = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(listed, list) or not all(isinstance(i, str) for i in listed):
        return None
    return listed
