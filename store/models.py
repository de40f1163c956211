"""The directory's tables: practices, their users, opt-outs and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
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
