"""Codeword texts as the directory keeps them: asked for, sent by the worker, reported.

A request (an admin's CODEWORD, support's API call) only writes the row and answers;
the worker sends it (``outbox.claim`` on kind ``text``), then records in one transaction
what the send leaves: the row's new status, the audit event and its outbox rows (the
redaction, the notices, the outcome event). Twilio's delivery report finds the row by
its id (carried in the status callback's URL) or its MessageSid.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from store import outbox
from store.directory import add_audit_event
from store.models import CodewordText

# The row's status: pending (to send), then sent or unconfirmed (Twilio took it, or may
# have), refused (opted out, or no longer allowed) or failed (Twilio kept refusing).
SENT, UNCONFIRMED = "sent", "unconfirmed"


@dataclass(frozen=True)
class TextRecord:
    id: str
    practice_id: str
    user_id: str
    to_number: str
    actor: str
    requested_by: str | None
    status: str
    message_sid: str | None
    delivery: str | None


def _record(row: CodewordText) -> TextRecord:
    return TextRecord(
        id=row.id,
        practice_id=row.practice_id,
        user_id=row.user_id,
        to_number=row.to_number,
        actor=row.actor,
        requested_by=row.requested_by,
        status=row.status,
        message_sid=row.message_sid,
        delivery=row.delivery,
    )


def new_text_id() -> str:
    return "CT" + secrets.token_hex(16)


class CodewordTexts:
    """The codeword texts, in the directory's database."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self.session = sessions

    def ask(
        self,
        *,
        practice_id: str,
        user_id: str,
        to_number: str,
        actor: str,
        requested_by: str | None,
        reserved_at: float | None,
        now: float,
    ) -> tuple[TextRecord, outbox.Job]:
        """Keep a codeword text to send; it and the job that sends it."""
        row = CodewordText(
            id=new_text_id(),
            practice_id=practice_id,
            user_id=user_id,
            to_number=to_number,
            actor=actor,
            requested_by=requested_by,
            reserved_at=reserved_at,
            status=outbox.PENDING,
            created_at=now,
            due_at=now,
            attempts=0,
            job_id=outbox.new_job_id(),
        )
        with self.session() as s:
            s.add(row)
            s.flush()
            record = _record(row)
        return record, outbox.Job("text", record.id, row.job_id or "")

    def sent(
        self,
        row: CodewordText,
        *,
        status: str,
        message_sid: str | None,
        intents: Sequence[outbox.Intent],
        now: float,
    ) -> list[outbox.Job]:
        """Twilio took the text (``sent``) or may have (``unconfirmed``): record it, audit
        it and write what it leaves to do, in one transaction; the jobs to enqueue.

        Recorded even if the claim ran out meanwhile: a text that went must be audited.
        """
        with self.session() as s:
            s.execute(
                update(CodewordText)
                .where(CodewordText.id == row.id)
                .values(
                    status=status,
                    message_sid=message_sid,
                    claim=None,
                    claimed_until=None,
                    last_error=None if status == SENT else "carrier timeout",
                )
                .execution_options(synchronize_session=False)
            )
            return add_audit_event(
                s,
                row.practice_id,
                channel="sms",
                outcome=status,
                actor=row.actor,
                to_number=row.to_number,
                requested_by=row.requested_by,
                reference=message_sid,
                intents=intents,
                now=now,
            )

    def reported(
        self, *, text_id: str | None, message_sid: str, delivery: str
    ) -> TextRecord | None:
        """Twilio's final delivery report: note it on the text (by id, else MessageSid)."""
        match = CodewordText.message_sid == message_sid
        if text_id:
            match = or_(match, CodewordText.id == text_id)
        with self.session() as s:
            row = s.scalars(select(CodewordText).where(match).limit(1)).one_or_none()
            if row is None:
                return None
            row.delivery = delivery
            if row.message_sid is None:
                row.message_sid = message_sid  # an unconfirmed text, now known
            s.flush()
            return _record(row)

    def get(self, text_id: str) -> TextRecord | None:
        with self.session() as s:
            row = s.get(CodewordText, text_id)
            return _record(row) if row else None
