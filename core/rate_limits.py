"""Every rate limit of the service, built once from its setting, and how a request spends it.

A request reserves the slots of every limit it is subject to before it acts (one Redis
round trip; store/ratelimit.py), so that requests arriving together cannot all pass.
If the act then provably did not happen, the slots are given back:

    reservation = rate_limits.reserve_codeword_text(number, practice_id)  # or LimitExceeded
    with rate_limits.given_back_on_failure(reservation):
        carrier().send_sms(...)

``codeword_rate_limited_total{scope}`` counts every refusal, here and nowhere else.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis
from flask import current_app
from limits import RateLimitItem, parse_many
from sqlalchemy.exc import SQLAlchemyError

from core.carrier import CarrierTimedOut
from core.errors import ServiceError
from core.extensions import limiter
from core.observability import RATE_LIMITED
from store.errors import LimitExceeded
from store.ratelimit import Reservation, Rule

log = logging.getLogger(__name__)

# The scopes refusals are counted under (the metric's label).
VERIFICATION_CALL = "verification_call"
OFFICE_VERIFICATION = "office_verification"
CELL_VERIFICATION = "cell_verification"
SMS_CODEWORD = "sms-codeword"
SMS_INBOUND = "sms-inbound"
CONSOLE_SIGN_IN = "console_sign_in"


@dataclass(frozen=True)
class Limit:
    """One setting (``3/hour;10/day``), parsed once, applied to any subject.

    ``name`` is the setting in lower case, as a 429 names the limit; ``scope`` keeps
    its windows apart in Redis (the names windows had before, so they carry over).
    """

    name: str
    scope: str
    items: tuple[RateLimitItem, ...]

    @classmethod
    def from_setting(cls, config: Mapping[str, Any], setting: str, scope: str) -> Limit:
        return cls(setting.lower(), scope, tuple(parse_many(config[setting])))

    def rules(self, subject: str) -> list[Rule]:
        """This limit applied to ``subject``: one rule per item of the setting."""
        return [Rule(self.name, item, self.scope, subject) for item in self.items]


class RateLimits:
    """The service's limits, parsed from the app's settings when the app is built."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        def limit(setting: str, scope: str) -> Limit:
            return Limit.from_setting(config, setting, scope)

        self.verification_calls_per_practice = limit(
            "VERIFICATION_CALLS_PER_PRACTICE", "verification-call:practice"
        )
        self.verification_calls_per_support_token = limit(
            "VERIFICATION_CALLS_PER_SUPPORT_TOKEN", "verification-call:support-token"
        )
        self.office_verifications_per_practice = limit(
            "OFFICE_VERIFICATIONS_PER_PRACTICE", "office-verification:practice"
        )
        self.cell_verification_texts_per_user = limit(
            "CELL_VERIFICATION_TEXTS_PER_USER", "cell-verification:user"
        )
        # Codeword texts count whoever asked (an admin's keyword or support).
        self.sms_codeword_texts_per_number = limit(
            "SMS_CODEWORD_TEXTS_PER_NUMBER", "sms-codeword-number"
        )
        self.sms_codeword_texts_per_practice = limit(
            "SMS_CODEWORD_TEXTS_PER_PRACTICE", "sms-codeword-practice"
        )
        # Texts we answer from one number; past it, a flood, dropped without a reply.
        self.sms_inbound_per_number = limit("SMS_INBOUND_PER_NUMBER", "sms-inbound")
        # Failed support console sign-ins from one client address.
        self.console_sign_in_failures_per_client = limit(
            "CONSOLE_SIGN_IN_FAILURES_PER_CLIENT", "console-sign-in:client"
        )


def rate_limits() -> RateLimits:
    """The limits of the current app."""
    return cast(RateLimits, current_app.extensions["rate_limits"])


# What each act spends -----------------------------------------------------------------


def verification_call_rules(practice_id: str, actor: str) -> list[Rule]:
    """Per practice (3/hour and 10/day by default) and per support token (30/hour)."""
    limits = rate_limits()
    return limits.verification_calls_per_practice.rules(
        practice_id
    ) + limits.verification_calls_per_support_token.rules(actor)


def codeword_text_rules(number: str, practice_id: str) -> list[Rule]:
    """Per number texted (3/hour by default) and per practice (5/day)."""
    return codeword_texts_to(number) + codeword_texts_of(practice_id)


def codeword_texts_to(number: str) -> list[Rule]:
    return rate_limits().sms_codeword_texts_per_number.rules(number)


def codeword_texts_of(practice_id: str) -> list[Rule]:
    return rate_limits().sms_codeword_texts_per_practice.rules(practice_id)


def inbound_texts_from(number: str) -> list[Rule]:
    return rate_limits().sms_inbound_per_number.rules(number)


def reserve_verification_call(practice_id: str, actor: str) -> Reservation:
    """A slot of each limit on support's verification calls, or LimitExceeded."""
    return reserve(VERIFICATION_CALL, verification_call_rules(practice_id, actor))


def reserve_office_verification(practice_id: str) -> Reservation:
    """Office-number verification calls per practice (3/hour by default)."""
    rules = rate_limits().office_verifications_per_practice.rules(practice_id)
    return reserve(OFFICE_VERIFICATION, rules)


def reserve_cell_verification_text(practice_id: str, user_id: str) -> Reservation:
    """Cell verification codes texted per user (3/hour by default)."""
    # "/" appears in no identifier, so no two users share a window.
    subject = f"{practice_id}/{user_id}"
    return reserve(CELL_VERIFICATION, rate_limits().cell_verification_texts_per_user.rules(subject))


def reserve_codeword_text(number: str, practice_id: str) -> Reservation:
    """A codeword text to ``number`` of ``practice_id``'s codeword, or LimitExceeded."""
    return reserve(SMS_CODEWORD, codeword_text_rules(number, practice_id))


def reserve_console_sign_in(client: str) -> Reservation:
    """A failed sign-in's slot, taken before the token is compared; given back if it was good."""
    rules = rate_limits().console_sign_in_failures_per_client.rules(client)
    return reserve(CONSOLE_SIGN_IN, rules)


# Reserving and giving back ------------------------------------------------------------


def reserve(scope: str, rules: list[Rule]) -> Reservation:
    """Take a slot of every rule in one round trip; a refusal is counted and raised."""
    try:
        return limiter().reserve(*rules)
    except LimitExceeded:
        refused(scope)
        raise


def refused(scope: str) -> None:
    """Count a request refused by a limit of ``scope``."""
    RATE_LIMITED.labels(scope).inc()


def provably_not_done(error: BaseException) -> bool:
    """Whether the act cannot have happened when ``error`` stopped the request.

    Our own refusals (a service error raised before Twilio was asked), Twilio refusing
    the request with an error answer, Redis or the database failing on the way: the act
    did not happen. Twilio taking the request and not answering in time proves nothing,
    nor does an error we do not know.
    """
    if isinstance(error, CarrierTimedOut):
        return False
    return isinstance(error, (ServiceError, redis.RedisError, SQLAlchemyError))


@contextlib.contextmanager
def given_back_on_failure(reservation: Reservation) -> Iterator[Reservation]:
    """Give ``reservation`` back if the block fails before its act could have happened.

    A block that may still fail once the act happened calls ``reservation.keep()`` first.
    """
    try:
        yield reservation
    except BaseException as error:
        if not reservation.kept and provably_not_done(error):
            give_back(reservation)
        raise


def give_back(reservation: Reservation) -> None:
    """Give the slots back; if Redis fails, they lapse with their windows instead."""
    try:
        limiter().refund(reservation)
    except redis.RedisError as exc:
        log.warning("rate-limit slots not given back: %s", type(exc).__name__)
