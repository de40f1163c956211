"""The directory's tables: practices, their users, opt-outs, the audit trail, and the outbox.

The outbox tables hold work that must happen after a response (an outcome event to
deliver, a notice to text, a codeword text's body to redact at Twilio). Each row is
written in the same transaction as the audit event that caused it, and stays until the
work is done, so a killed process or a flushed Redis loses nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Practice(Base):
    __tablename__ = "practices"
    __table_args__ = (
        # The support console finds practices by office number (and by name: below).
        Index("ix_practices_office_number", "office_number"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    office_number: Mapped[str] = mapped_column(String(20))
    office_number_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(2), default="en")
    # Fernet token; never the plain codeword.
    codeword_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    users: Mapped[list[User]] = relationship(
        back_populates="practice", cascade="all, delete-orphan", order_by="User.id"
    )


# Name search walks this index in name order and stops at the first page of matches.
Index("ix_practices_name_lower", func.lower(Practice.name))


class User(Base):
    __tablename__ = "users"

    practice_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("practices.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10))
    cell_number: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    cell_number_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    practice: Mapped[Practice] = relationship(back_populates="users")


class OptOut(Base):
    """A number that texted STOP: no text of any kind goes to it until START."""

    __tablename__ = "opt_outs"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """Something that happened to a practice's codeword: who, how, to where, outcome."""

    __tablename__ = "audit_events"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["practices.id"], ondelete="CASCADE"),
        # The trail pages newest first by id (?before=<id>): one index range per page.
        Index("ix_audit_practice_id", "practice_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    practice_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    channel: Mapped[str] = mapped_column(String(10))  # voice | sms | app
    outcome: Mapped[str] = mapped_column(String(32))
    to_masked: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(64), nullable=True)  # CallSid etc.


class OutboxRow:
    """What every outbox row carries: its state, when it is due, and who holds it.

    Times are epoch seconds (floats): compared in SQL the same way on SQLite and PostgreSQL.
    """

    # pending until the work is done; then a final status of the row's own kind.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[float] = mapped_column(Float)
    # The next attempt may start at this time.
    due_at: Mapped[float] = mapped_column(Float)
    # A worker holds the row until this time (its lease), under the claim it wrote.
    claimed_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    claim: Mapped[str | None] = mapped_column(String(32), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The queue job last enqueued for the row; the sweep enqueues another only when it is gone.
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Why the last attempt failed: a status code or an error type, never a body.
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class OutcomeEvent(OutboxRow, Base):
    """An outcome event for the main application, POSTed signed to ``EVENTS_URL``."""

    __tablename__ = "outcome_events"
    __table_args__ = (
        Index("ix_outcome_events_due", "status", "due_at"),
        Index("ix_outcome_events_created", "created_at"),
    )

    # The ``webhook-id``: the same on every attempt, the receiver's idempotency key.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    # The exact body sent (and signed) on every attempt.
    body: Mapped[str] = mapped_column(Text)
    # What the event is about (``voice:CA...``), so one outcome makes one event.
    subject: Mapped[str] = mapped_column(String(120), unique=True)
    # Failed attempts since it was last (re)delivered: the place in EVENTS_RETRY_SCHEDULE.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class DisclosureNotice(OutboxRow, Base):
    """A text telling another admin of a disclosure: one per disclosure and admin."""

    __tablename__ = "disclosure_notices"
    __table_args__ = (
        ForeignKeyConstraint(["audit_event_id"], ["audit_events.id"], ondelete="CASCADE"),
        UniqueConstraint("audit_event_id", "user_id", name="uq_notice_per_admin"),
        Index("ix_disclosure_notices_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_event_id: Mapped[int] = mapped_column(Integer)
    practice_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    to_number: Mapped[str] = mapped_column(String(20))
    # What the notice tells, as it was at the disclosure.
    channel: Mapped[str] = mapped_column(String(10))
    disclosed_to: Mapped[str | None] = mapped_column(String(20), nullable=True)  # the number
    requested_by: Mapped[str] = mapped_column(String(200))
    by_support: Mapped[bool] = mapped_column(Boolean)
    disclosed_at: Mapped[float] = mapped_column(Float)


class Redaction(OutboxRow, Base):
    """A codeword text whose body must be blanked at Twilio: after its delivery report,
    or ``REDACT_AFTER_SECONDS`` after it was sent if none comes."""

    __tablename__ = "redactions"
    __table_args__ = (Index("ix_redactions_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_sid: Mapped[str] = mapped_column(String(34), unique=True)
    practice_id: Mapped[str] = mapped_column(String(64))
    to_masked: Mapped[str | None] = mapped_column(String(32), nullable=True)


class CodewordText(OutboxRow, Base):
    """A codeword text to send: asked for by an admin (CODEWORD) or by support, sent by the
    worker, then followed to its delivery report."""

    __tablename__ = "codeword_texts"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["practices.id"], ondelete="CASCADE"),
        Index("ix_codeword_texts_due", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    practice_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    to_number: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message_sid: Mapped[str | None] = mapped_column(String(34), nullable=True, unique=True)
    # Twilio's final word: delivered, undelivered or failed (None until the report).
    delivery: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # When the request reserved the text's rate-limit slots: given back if it never goes.
    reserved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
