"""Finding a practice, its page, and texting the codeword to one of its admins."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby

from flask import (
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from console import bp, sessions, words
from core.errors import InvalidInput, NotFound, ServiceError
from core.extensions import directory
from ivr import outbound
from ivr.session import Purpose
from sms.codeword_texts import may_receive_codeword, text_codeword_on_request
from store import clock
from store.directory import EventRecord, PracticeRecord, UserRecord
from store.errors import LimitExceeded
from store.numbers import InvalidNumber, mask, normalise

# Practices listed for one search; more means the search should be narrower.
SEARCH_LIMIT = 20
# Audit events on one page of the trail.
TRAIL_PAGE = 20
REQUESTED_BY_MAX = 200
SEARCH_MAX = 200
LANGUAGES = {"en": "English", "es": "Spanish"}
# The call form's idempotency key: made with the page, so a form sent twice places one call.
CALL_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


@bp.get("/")
@bp.get("")
def home() -> Response:
    """The search form; with a query, the practices it finds (or the one it finds)."""
    query = " ".join((request.args.get("q") or "").split())
    if not query:
        return make_response(render_template("console/search.html", query="", results=None))
    if len(query) > SEARCH_MAX:
        raise InvalidInput("that search is too long; try a name, an id or a number")
    try:
        number = normalise(query, current_app.config["ALLOWED_COUNTRIES"])
    except InvalidNumber:
        number = None
    found = directory().search_practices(query, number, limit=SEARCH_LIMIT + 1)
    if len(found) == 1:
        return redirect(url_for("console.practice", practice_id=found[0].id), 303)
    results = [(p, mask(p.office_number)) for p in found[:SEARCH_LIMIT]]
    return make_response(
        render_template(
            "console/search.html",
            query=query,
            results=results,
            more=len(found) > SEARCH_LIMIT,
        )
    )


@bp.get("/practices/<practice_id>")
def practice(practice_id: str) -> Response:
    """A practice: its numbers, people, live call and audit trail, and what support may do."""
    before = request.args.get("before", type=int)
    return render_practice(practice_or_404(practice_id), before=before)


@bp.post("/practices/<practice_id>/users/<user_id>/codeword-texts")
def text_codeword(practice_id: str, user_id: str) -> Response:
    """Text the codeword to an admin's verified cell, as the support API does."""
    found = practice_or_404(practice_id)
    user = next((u for u in found.users if u.id == user_id), None)
    try:
        requested_by = requested_by_from_form()
        sent = text_codeword_on_request(found.id, user_id, actor=g.actor, requested_by=requested_by)
    except (ServiceError, LimitExceeded) as refused:
        error = words.as_service_error(refused)
        refusal = words.text_refusal(error, found, user, current_app.config)
        return render_practice(found, refusal=refusal, error=error)
    who = user.name if user else "the admin"
    sessions.keep_notice(
        g.console_session,
        sessions.Notice(
            "done",
            f"The codeword text to {who} at {sent.to} is on its way, "
            f"at {words.possessive(requested_by)} request.",
        ),
    )
    return redirect(url_for("console.practice", practice_id=found.id), 303)


def practice_or_404(practice_id: str) -> PracticeRecord:
    found = directory().get_practice(practice_id) if len(practice_id) <= 64 else None
    if found is None:
        raise NotFound("no such practice")
    return found


def requested_by_from_form() -> str:
    """Who asked for the codeword: required, printable, at most 200 characters."""
    value = " ".join((request.form.get("requested_by") or "").split())
    if not value or len(value) > REQUESTED_BY_MAX or not value.isprintable():
        raise InvalidInput("requested_by is required", field="requested_by")
    return value


@dataclass(frozen=True)
class Person:
    """A user as the practice page lists them."""

    user: UserRecord
    cell: str | None
    may_get_codeword: bool
    opted_out: bool


@dataclass(frozen=True)
class TrailLine:
    at: datetime
    text: str


def render_practice(
    found: PracticeRecord,
    *,
    before: int | None = None,
    refusal: str | None = None,
    error: ServiceError | None = None,
) -> Response:
    """The practice page; after a refused action, with the refusal (its status, its wait)
    and the form as it was sent."""
    events = directory().list_events(found.id, limit=TRAIL_PAGE + 1, before=before)
    reachable = {u.id for u in directory().admins_to_notify(found.id)}
    people = [
        Person(
            user=u,
            cell=mask(u.cell_number),
            may_get_codeword=may_receive_codeword(u),
            opted_out=may_receive_codeword(u) and u.id not in reachable,
        )
        for u in sorted(found.users, key=lambda u: (u.role != "admin", u.name.lower()))
    ]
    live = outbound.live_call(found.id)
    notice = sessions.take_notice(g.console_session) if refusal is None else None
    page = render_template(
        "console/practice.html",
        practice=found,
        language=LANGUAGES.get(found.language, found.language),
        office_number=mask(found.office_number),
        people=people,
        live=live,
        live_status=live.status_at(clock.now()) if live else None,
        live_is_codeword_call=bool(live and live.purpose is Purpose.CODEWORD),
        trail=_trail_by_day(events[:TRAIL_PAGE]),
        older=events[TRAIL_PAGE - 1].id if len(events) > TRAIL_PAGE else None,
        paged=before is not None,
        notice=notice,
        refusal=refusal,
        requested_by=request.form.get("requested_by", "") if refusal else "",
        call_key=secrets.token_urlsafe(18),
    )
    response = make_response(page, error.status if error else 200)
    if error is not None and error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _trail_by_day(events: list[EventRecord]) -> list[tuple[str, list[TrailLine]]]:
    """The trail's lines grouped under their day (UTC), newest first."""
    lines = [TrailLine(e.at.astimezone(UTC), words.audit_line(e)) for e in events]
    today = datetime.fromtimestamp(clock.now(), UTC).date()
    return [
        ("Today" if day == today else day.strftime("%-d %B %Y"), list(day_lines))
        for day, day_lines in groupby(lines, key=lambda line: line.at.date())
    ]


def call_key_from_form() -> str | None:
    """The form's idempotency key, when it is one the page could have made."""
    value = request.form.get("call_key") or ""
    return value if CALL_KEY.fullmatch(value) else None
