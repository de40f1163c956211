"""Working the outbox's rows: taken by a worker under a lease, settled, swept for.

A worker ``claim``s a row with one UPDATE (so two workers never both hold it), does the
work, then ``settle``s it under the same claim. A claim is a lease: a worker killed
mid-job leaves the row to be claimed again once the lease ends. ``due`` lists the rows
the sweep must enqueue again: pending, due and not held. The admin API and /metrics read
the rows here too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from store.models import OutboxRow, OutcomeEvent, Redaction
from store.outbox import KINDS, PENDING, Intent, Job, Row, add, new_job_id


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
