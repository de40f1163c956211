"""The outbox: work that must happen after a response, kept in SQL until it is done.

What must happen (an outcome event, a notice to another admin, a redaction at Twilio)
is written in the same transaction as the audit event that causes it (``add``), and a
queue job carries the row's kind and id once that transaction has committed. How a
worker takes, settles and sweeps for the rows: store/outbox_rows.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import (
    CodewordText,
    DisclosureNotice,
    OptOut,
    OutcomeEvent,
    Redaction,
    User,
)
from store.numbers import mask

PENDING = "pending"
Row = TypeVar("Row", OutcomeEvent, DisclosureNotice, Redaction, CodewordText)

# Each kind of work, by the name its jobs and metrics use.
KINDS: dict[
    str, type[OutcomeEvent] | type[DisclosureNotice] | type[Redaction] | type[CodewordText]
] = {
    "text": CodewordText,
    "event": OutcomeEvent,
    "notice": DisclosureNotice,
    "redaction": Redaction,
}
EVENT_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class Job:
    """A queue job to enqueue once the transaction that wrote its row has committed."""

    kind: str
    row_id: Any  # the row's primary key: an int, or an event's id
    job_id: str


def new_job_id() -> str:
    return uuid.uuid4().hex


# What an audit event may leave to do -----------------------------------------------


@dataclass(frozen=True)
class EventToDeliver:
    """An outcome event: its ``webhook-id``, type, the exact body, and what it is about."""

    id: str
    type: str
    body: str
    subject: str


@dataclass(frozen=True)
class NoticesToAdmins:
    """Text the practice's admins (verified cell, not opted out) of a disclosure,
    all but the number the codeword went to."""

    practice_id: str
    channel: str
    disclosed_to: str | None  # in full (the notice masks it); None for an app read
    requested_by: str
    by_support: bool


@dataclass(frozen=True)
class RedactionDue:
    """Blank a codeword text's body at Twilio once ``due_at`` has come."""

    message_sid: str
    practice_id: str
    to: str | None  # in full; stored masked
    due_at: float


Intent = EventToDeliver | NoticesToAdmins | RedactionDue


def add(
    session: Session, intents: Sequence[Intent], *, now: float, audit_event_id: int | None
) -> list[Job]:
    """Write the rows ``intents`` call for in ``session``; the jobs to enqueue after commit."""
    jobs: list[Job] = []
    for intent in intents:
        if isinstance(intent, EventToDeliver):
            jobs += _add_event(session, intent, now)
        elif isinstance(intent, NoticesToAdmins):
            if audit_event_id is None:
                raise ValueError("notices belong to an audit event")
            jobs += _add_notices(session, intent, now, audit_event_id)
        else:
            _add_redaction(session, intent, now)
    return jobs


def _insert_once(session: Session, model: type[Any], values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same unique key exists; whether it was inserted.

    ``ON CONFLICT DO NOTHING`` keeps a repeat (a second final status callback, say)
    from failing the transaction, and with it the audit event it belongs to.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(model).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(model).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - the service runs on SQLite or PostgreSQL
        statement = insert(model).values(**values)
    result = session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _add_event(session: Session, event: EventToDeliver, now: float) -> list[Job]:
    job_id = new_job_id()
    inserted = _insert_once(
        session,
        OutcomeEvent,
        {
            "id": event.id,
            "type": event.type,
            "body": event.body,
            "subject": event.subject,
            "status": PENDING,
            "created_at": now,
            "due_at": now,
            "attempts": 0,
            "failures": 0,
            "job_id": job_id,
        },
    )
    return [Job("event", event.id, job_id)] if inserted else []


def admins_to_notify(practice_id: str) -> Select[User]:
    """The practice's admins with a verified cell that has not opted out."""
    return (
        select(User)
        .outerjoin(OptOut, OptOut.number == User.cell_number)
        .where(
            User.practice_id == practice_id,
            User.role == "admin",
            User.cell_number.is_not(None),
            User.cell_number_verified.is_(True),
            OptOut.number.is_(None),
        )
        .order_by(User.id)
    )


def _add_notices(
    session: Session, notices: NoticesToAdmins, now: float, audit_event_id: int
) -> list[Job]:
    admins = session.scalars(admins_to_notify(notices.practice_id)).all()
    jobs = []
    told: set[str] = set()
    for admin in admins:
        user_id, number = admin.id, admin.cell_number
        # The recipient of the codeword is not told of it; a number shared by two
        # admin records is told once.
        if number is None or number == notices.disclosed_to or number in told:
            continue
        told.add(number)
        row = DisclosureNotice(
            audit_event_id=audit_event_id,
            practice_id=notices.practice_id,
            user_id=user_id,
            to_number=number,
            channel=notices.channel,
            disclosed_to=notices.disclosed_to,
            requested_by=notices.requested_by[:200],
            by_support=notices.by_support,
            disclosed_at=now,
            status=PENDING,
            created_at=now,
            due_at=now,
            attempts=0,
            job_id=new_job_id(),
        )
        session.add(row)
        session.flush()
        jobs.append(Job("notice", row.id, row.job_id or ""))
    return jobs


def _add_redaction(session: Session, redaction: RedactionDue, now: float) -> None:
    # Enqueued by the sweep once due, or at once by the delivery report (``due_now``).
    _insert_once(
        session,
        Redaction,
        {
            "message_sid": redaction.message_sid,
            "practice_id": redaction.practice_id,
            "to_masked": mask(redaction.to),
            "status": PENDING,
            "created_at": now,
            "due_at": redaction.due_at,
            "attempts": 0,
        },
    )
