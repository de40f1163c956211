"""The outbox: work that must happen after a response, kept in SQL until it is done.

What must happen (an outcome event, a notice to another admin, a redaction at Twilio)
is written in the same transaction as the audit event that causes it (``add``). A queue
job carries the row's kind and id; the worker that runs it first ``claim``s the row in
SQL (one UPDATE, so two workers never both hold it), does the work, then ``settle``s it.
A claim is a lease: a worker killed mid-job leaves the row to be claimed again once the
lease ends. ``due`` lists the rows a sweep must enqueue again: due, unclaimed and pending.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import (
    CodewordText,
    DisclosureNotice,
    OptOut,
    OutboxRow,
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


# Working the rows -------------------------------------------------------------------


def _claimable(model: type[OutboxRow], now: float) -> list[ColumnElement[bool]]:
    return [
        model.status == PENDING,
        model.due_at <= now,
        or_(model.claimed_until.is_(None), model.claimed_until <= now),
    ]


class Outbox:
    """The outbox rows, in the directory's database."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self.session = sessions

    def write(self, intents: Sequence[Intent], *, now: float) -> list[Job]:
        """Write rows that follow no audit event of their own, in one transaction."""
        with self.session() as s:
            return add(s, intents, now=now, audit_event_id=None)

    def claim(self, model: type[Row], row_id: Any, *, now: float, lease: float) -> Row | None:
        """Take a due, pending row for ``lease`` seconds; None if it is not due, done or held.

        The row comes back detached, with the claim to settle it under.
        """
        token = uuid.uuid4().hex
        with self.session() as s:
            # One statement: the row is taken and read at once (RETURNING, on SQLite and
            # PostgreSQL alike).
            row = s.scalars(
                update(model)
                .where(model.id == row_id, *_claimable(model, now))
                .values(claim=token, claimed_until=now + lease, attempts=model.attempts + 1)
                .returning(model)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if row is not None:
                s.expunge(row)
            return row

    def settle(self, model: type[Row], row: Row, **values: Any) -> bool:
        """Record how the claimed attempt went and let the row go; False if the claim was
        lost meanwhile (the lease ran out and another worker took the row)."""
        with self.session() as s:
            result = s.execute(
                update(model)
                .where(model.id == row.id, model.claim == row.claim)
                .values(claim=None, claimed_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def due(self, *, now: float, limit: int = 500) -> list[Job]:
        """Rows a worker should work now: pending, due, not held (the sweep's list)."""
        jobs: list[Job] = []
        with self.session() as s:
            for kind, model in KINDS.items():
                rows = s.execute(
                    select(model.id, model.job_id)
                    .where(*_claimable(model, now))
                    .order_by(model.due_at)
                    .limit(limit)
                ).all()
                jobs += [Job(kind, row_id, job_id or "") for row_id, job_id in rows]
        return jobs

    def assign_job(self, job: Job) -> Job | None:
        """Name a new queue job for the row, if its job is still ``job.job_id``; the new job."""
        model = KINDS[job.kind]
        new = Job(job.kind, job.row_id, new_job_id())
        with self.session() as s:
            result = s.execute(
                update(model)
                .where(model.id == job.row_id, _same_job(model, job.job_id))
                .values(job_id=new.job_id)
                .execution_options(synchronize_session=False)
            )
            return new if result.rowcount else None  # type: ignore[attr-defined]

    def due_now(self, message_sid: str, *, now: float) -> Job | None:
        """A delivery report came: the text's redaction is due now; the job to enqueue."""
        job_id = new_job_id()
        with self.session() as s:
            result = s.execute(
                update(Redaction)
                .where(Redaction.message_sid == message_sid, Redaction.status == PENDING)
                .values(due_at=now, job_id=job_id)
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            row_id = s.scalar(select(Redaction.id).where(Redaction.message_sid == message_sid))
        return Job("redaction", row_id, job_id)

    # Outcome events, for the admin API and metrics ------------------------------------

    def events(self, *, status: str | None, limit: int) -> list[OutcomeEvent]:
        """The newest outcome events first, of one status or all."""
        query = select(OutcomeEvent).order_by(
            OutcomeEvent.created_at.desc(), OutcomeEvent.id.desc()
        )
        if status is not None:
            query = query.where(OutcomeEvent.status == status)
        with self.session() as s:
            rows = list(s.scalars(query.limit(limit)))
            for row in rows:
                s.expunge(row)
            return rows

    def redeliver(self, event_id: str, *, now: float) -> Job | None:
        """Send an event again from the start of the schedule; None for an unknown id."""
        job_id = new_job_id()
        with self.session() as s:
            result = s.execute(
                update(OutcomeEvent)
                .where(OutcomeEvent.id == event_id)
                .values(status=PENDING, due_at=now, failures=0, job_id=job_id)
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
        return Job("event", event_id, job_id)

    def counts(self) -> Iterator[tuple[str, str, int]]:
        """(kind, status, rows) for every kind and status present."""
        with self.session() as s:
            for kind, model in KINDS.items():
                for status, count in s.execute(
                    select(model.status, func.count()).group_by(model.status)
                ):
                    yield kind, status, int(count)

    def oldest_pending(self) -> dict[str, float | None]:
        """When the oldest pending row of each kind was written (epoch seconds)."""
        with self.session() as s:
            return {
                kind: s.scalar(select(func.min(model.created_at)).where(model.status == PENDING))
                for kind, model in KINDS.items()
            }


def _same_job(model: type[OutboxRow], job_id: str) -> ColumnElement[bool]:
    column = model.job_id
    return column.is_(None) if not job_id else column == job_id
