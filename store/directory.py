"""The directory: practices, users, numbers, the encrypted codeword, the audit trail.

Functions here return plain frozen records, never live ORM objects, so callers
cannot trigger lazy loads after the session closed, and nothing here ever puts
the plain codeword into a record other than the one ``read_codeword`` returns.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, create_engine, delete, event, exists, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload, sessionmaker

from store import outbox, schema
from store.crypto import CodewordCipher
from store.errors import NotInDirectory
from store.models import AuditEvent, OptOut, Practice, User
from store.numbers import mask


@dataclass(frozen=True)
class UserRecord:
    id: str
    practice_id: str
    name: str
    role: str
    cell_number: str | None
    cell_number_verified: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "cell_number": self.cell_number,
            "cell_number_verified": self.cell_number_verified,
        }


@dataclass(frozen=True)
class PracticeRecord:
    id: str
    name: str
    office_number: str
    office_number_verified: bool
    language: str
    has_codeword: bool
    created_at: datetime
    updated_at: datetime
    users: tuple[UserRecord, ...] = ()

    def to_json(self, with_users: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "office_number": self.office_number,
            "office_number_verified": self.office_number_verified,
            "language": self.language,
            "has_codeword": self.has_codeword,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
        if with_users:
            body["users"] = [u.to_json() for u in self.users]
        return body


@dataclass(frozen=True)
class EventRecord:
    at: datetime
    channel: str
    to: str | None
    actor: str
    requested_by: str | None
    outcome: str
    reference: str | None
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "channel": self.channel,
            "to": self.to,
            "actor": self.actor,
            "requested_by": self.requested_by,
            "outcome": self.outcome,
            "reference": self.reference,
        }


def _user_record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        practice_id=user.practice_id,
        name=user.name,
        role=user.role,
        cell_number=user.cell_number,
        cell_number_verified=user.cell_number_verified,
    )


def _practice_record(practice: Practice, with_users: bool = True) -> PracticeRecord:
    return PracticeRecord(
        id=practice.id,
        name=practice.name,
        office_number=practice.office_number,
        office_number_verified=practice.office_number_verified,
        language=practice.language,
        has_codeword=practice.codeword_encrypted is not None,
        created_at=_aware(practice.created_at),
        updated_at=_aware(practice.updated_at),
        users=tuple(_user_record(u) for u in practice.users) if with_users else (),
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# Actors of changes no token asked for: a CLI command or script; Twilio refusing a
# recipient (error 21610); the number's owner texting STOP or START.
SYSTEM = "system"
TWILIO_ACTOR = "twilio"
SELF = "self"


# The look-ups every inbound text makes, built once: building a statement (and its
# cache key) costs more than running it.
_OPTED_OUT = select(OptOut.number).where(OptOut.number == bindparam("number"))
_IS_ADMIN_CELL = (
    User.cell_number == bindparam("number"),
    User.cell_number_verified.is_(True),
    User.role == "admin",
)
# Both questions an inbound text asks first, in one statement (one round trip).
_SENDER = select(
    exists(_OPTED_OUT).label("opted_out"),
    exists(select(User.id).where(*_IS_ADMIN_CELL)).label("admin_cell"),
)


@dataclass(frozen=True)
class Sender:
    """What the directory knows of a number that texted us."""

    opted_out: bool
    admin_cell: bool  # the verified cell of at least one admin


_ADMINS_WITH_VERIFIED_CELL = (
    select(User, Practice)
    .join(Practice, Practice.id == User.practice_id)
    .where(*_IS_ADMIN_CELL)
    .order_by(Practice.name, Practice.id)
)


class Directory:
    """Access to the SQL directory."""

    def __init__(self, database_url: str, cipher: CodewordCipher) -> None:
        self.cipher = cipher
        self.engine = _make_engine(database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def create_all(self) -> None:
        """Create the tables straight from the models (tests; production migrates)."""
        schema.create_all(self.engine)

    def migrate(self) -> None:
        """Create the tables, or move them forward, with the newest migration."""
        schema.upgrade(self.engine)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # Practices ---------------------------------------------------------------

    def put_practice(
        self,
        practice_id: str,
        *,
        name: str,
        office_number: str,
        office_number_verified: bool | None = None,
        language: str | None = None,
        codeword: str | None = None,
        actor: str = SYSTEM,
    ) -> tuple[PracticeRecord, bool]:
        """Create or update a practice; returns it and whether it was created.

        A change to where the codeword may be spoken (the office number set or changed,
        vouched for or no longer) is audited in the same transaction, under ``actor``.
        """
        with self.session() as s:
            practice = s.get(Practice, practice_id, options=[selectinload(Practice.users)])
            created = practice is None
            was_verified = False
            if practice is None:
                practice = Practice(id=practice_id, users=[])
                s.add(practice)
                practice.office_number_verified = bool(office_number_verified)
                number_change = "office_number_set"
            elif practice.office_number != office_number:
                # A new number is unproven unless this very request vouches for it.
                practice.office_number_verified = bool(office_number_verified)
                number_change = "office_number_changed"
            else:
                was_verified = practice.office_number_verified
                if office_number_verified is not None:
                    practice.office_number_verified = office_number_verified
                number_change = None
            practice.name = name
            practice.office_number = office_number
            if language is not None:
                practice.language = language
            elif created:
                practice.language = "en"
            if codeword is not None:
                practice.codeword_encrypted = self.cipher.encrypt(codeword)
            s.flush()  # the practice's row first: its audit events refer to it
            audit = _Audit(s, practice_id, actor, channel="app")
            if number_change:
                audit.add(number_change, to_number=office_number)
            if practice.office_number_verified and not was_verified:
                audit.add("office_number_verified", to_number=office_number)
            elif was_verified and not practice.office_number_verified:
                audit.add("office_number_unverified", to_number=office_number)
            return _practice_record(practice), created

    def get_practice(self, practice_id: str) -> PracticeRecord | None:
        with self.session() as s:
            practice = s.get(Practice, practice_id, options=[selectinload(Practice.users)])
            return _practice_record(practice) if practice else None

    def search_practices(
        self, words: str, office_number: str | None = None, limit: int = 20
    ) -> list[PracticeRecord]:
        """Practices whose id is ``words``, whose office number is ``office_number``, or
        whose name contains ``words`` (any case): in that order, at most ``limit``, no users.
        """
        found: dict[str, Practice] = {}
        with self.session() as s:
            by_id = s.get(Practice, words)
            if by_id is not None:
                found[by_id.id] = by_id
            if office_number:
                for practice in s.scalars(
                    select(Practice)
                    .where(Practice.office_number == office_number)
                    .order_by(Practice.name, Practice.id)
                    .limit(limit)
                ):
                    found.setdefault(practice.id, practice)
            if len(found) < limit:
                lowered = func.lower(Practice.name)
                for practice in s.scalars(
                    select(Practice)
                    .where(lowered.contains(words.lower(), autoescape=True))
                    .order_by(lowered, Practice.id)
                    .limit(limit)
                ):
                    found.setdefault(practice.id, practice)
            return [_practice_record(p, with_users=False) for p in list(found.values())[:limit]]

    def set_office_number_verified(self, practice_id: str, office_number: str) -> bool:
        """Mark the office number verified if it is still ``office_number``."""
        with self.session() as s:
            practice = s.get(Practice, practice_id)
            if practice is None or practice.office_number != office_number:
                return False
            practice.office_number_verified = True
            return True

    # Users -------------------------------------------------------------------

    def put_user(
        self,
        practice_id: str,
        user_id: str,
        *,
        name: str,
        role: str,
        cell_number: str | None,
        cell_number_given: bool,
        cell_number_verified: bool | None = None,
        actor: str = SYSTEM,
    ) -> tuple[UserRecord, bool]:
        """Create or update a user; raises NotInDirectory for an unknown practice.

        A change to where the codeword may be texted (the cell set, changed, removed,
        vouched for or no longer; the admin role given or taken) is audited in the same
        transaction, under ``actor``, with the user's id as the event's reference.
        """
        with self.session() as s:
            if s.get(Practice, practice_id) is None:
                raise NotInDirectory("no such practice")
            user = s.get(User, (practice_id, user_id))
            created = user is None
            if user is None:
                user = User(practice_id=practice_id, id=user_id, cell_number=None)
                s.add(user)
                user.cell_number_verified = False
            old_cell, was_verified, old_role = (
                user.cell_number,
                user.cell_number_verified,
                user.role,
            )
            new_cell = cell_number if cell_number_given else user.cell_number
            if new_cell != user.cell_number or created:
                user.cell_number_verified = bool(cell_number_verified) and new_cell is not None
            elif cell_number_verified is not None:
                user.cell_number_verified = cell_number_verified and new_cell is not None
            user.cell_number = new_cell
            user.name = name
            user.role = role
            audit = _Audit(s, practice_id, actor, channel="app", reference=user_id)
            if new_cell != old_cell:
                change = "set" if old_cell is None else "removed" if new_cell is None else "changed"
                audit.add(f"cell_number_{change}", to_number=new_cell or old_cell)
                was_verified = False
            if user.cell_number_verified and not was_verified:
                audit.add("cell_number_verified", to_number=new_cell)
            elif was_verified and not user.cell_number_verified:
                audit.add("cell_number_unverified", to_number=new_cell)
            if created and role == "admin":
                audit.add("admin_added", to_number=new_cell)
            elif not created and role != old_role:
                audit.add(f"role_changed_to_{role}", to_number=new_cell)
            s.flush()
            return _user_record(user), created

    def get_user(self, practice_id: str, user_id: str) -> UserRecord | None:
        with self.session() as s:
            user = s.get(User, (practice_id, user_id))
            return _user_record(user) if user else None

    def delete_user(self, practice_id: str, user_id: str, *, actor: str = SYSTEM) -> bool:
        """Remove a user; an admin's removal is audited, since their cell no longer counts."""
        with self.session() as s:
            user = s.get(User, (practice_id, user_id))
            if user is None:
                return False
            if user.role == "admin":
                _Audit(s, practice_id, actor, channel="app", reference=user_id).add(
                    "admin_removed", to_number=user.cell_number
                )
            s.delete(user)
            return True

    def set_cell_number_verified(self, practice_id: str, user_id: str, cell_number: str) -> bool:
        """Mark a user's cell verified if it is still ``cell_number``."""
        with self.session() as s:
            user = s.get(User, (practice_id, user_id))
            if user is None or user.cell_number != cell_number:
                return False
            user.cell_number_verified = True
            return True

    def sender(self, number: str) -> Sender:
        """Whether ``number`` opted out, and whether it is an admin's verified cell."""
        with self.engine.connect() as conn:
            row = conn.execute(_SENDER, {"number": number}).one()
        return Sender(opted_out=bool(row.opted_out), admin_cell=bool(row.admin_cell))

    def admins_with_verified_cell(self, number: str) -> list[tuple[UserRecord, PracticeRecord]]:
        """Every admin whose verified cell is ``number``, with their practice.

        Inbound texts ask ``sender`` first, which tells (in the same statement as the
        opt-out) whether there is any, and come here only then.
        """
        with self.session() as s:
            rows = s.execute(_ADMINS_WITH_VERIFIED_CELL, {"number": number}).all()
            return [(_user_record(u), _practice_record(p, with_users=False)) for u, p in rows]

    def admins_to_notify(self, practice_id: str) -> list[UserRecord]:
        """The practice's admins with a verified cell that has not opted out (one query):
        who a disclosure's notices go to (store/outbox.py)."""
        with self.session() as s:
            rows = s.scalars(outbox.admins_to_notify(practice_id)).all()
            return [_user_record(u) for u in rows]

    # Codeword ----------------------------------------------------------------

    def read_codeword(self, practice_id: str) -> str | None:
        """The plain codeword; raises NotInDirectory for an unknown practice."""
        with self.session() as s:
            practice = s.get(Practice, practice_id)
            if practice is None:
                raise NotInDirectory("no such practice")
            if practice.codeword_encrypted is None:
                return None
            return self.cipher.decrypt(practice.codeword_encrypted)

    def read_codeword_for_office(self, practice_id: str, office_number: str) -> str | None:
        """The plain codeword, only while ``office_number`` is still the verified office number."""
        with self.session() as s:
            practice = s.get(Practice, practice_id)
            if (
                practice is None
                or practice.codeword_encrypted is None
                or practice.office_number != office_number
                or not practice.office_number_verified
            ):
                return None
            return self.cipher.decrypt(practice.codeword_encrypted)

    def set_codeword(self, practice_id: str, codeword: str) -> None:
        with self.session() as s:
            practice = s.get(Practice, practice_id)
            if practice is None:
                raise NotInDirectory("no such practice")
            practice.codeword_encrypted = self.cipher.encrypt(codeword)

    def rotate_codewords(self) -> int:
        """Re-encrypt every codeword under the first key; returns how many."""
        count = 0
        with self.session() as s:
            for practice in s.scalars(
                select(Practice).where(Practice.codeword_encrypted.is_not(None))
            ):
                assert practice.codeword_encrypted is not None
                practice.codeword_encrypted = self.cipher.rotate(practice.codeword_encrypted)
                count += 1
        return count

    # Opt-outs ----------------------------------------------------------------

    def opt_out(self, number: str, *, actor: str = SELF) -> None:
        """Stop every text to ``number``; audited for each practice where it is an admin's cell."""
        with self.session() as s:
            if s.get(OptOut, number) is None:
                s.add(OptOut(number=number))
                _audit_admin_cell(s, number, "opted_out", actor)

    def opt_in(self, number: str, *, actor: str = SELF) -> None:
        """Texts to ``number`` may go again; audited as its opt-out was."""
        with self.session() as s:
            removed = s.execute(delete(OptOut).where(OptOut.number == number))
            if removed.rowcount:  # type: ignore[attr-defined]
                _audit_admin_cell(s, number, "opted_in", actor)

    def is_opted_out(self, number: str) -> bool:
        # A plain read on a pooled connection: no ORM session needed to test one key.
        with self.engine.connect() as conn:
            return conn.execute(_OPTED_OUT, {"number": number}).first() is not None

    # Audit -------------------------------------------------------------------

    def record_event(
        self,
        practice_id: str,
        *,
        channel: str,
        outcome: str,
        actor: str,
        to_number: str | None = None,
        requested_by: str | None = None,
        reference: str | None = None,
        intents: Sequence[outbox.Intent] = (),
        now: float | None = None,
    ) -> list[outbox.Job]:
        """Append to the audit trail; the number is stored masked.

        What the event leaves to do (``intents``) is written to the outbox in the same
        transaction; the jobs to enqueue once it has committed are returned.
        """
        with self.session() as s:
            return add_audit_event(
                s,
                practice_id,
                channel=channel,
                outcome=outcome,
                actor=actor,
                to_number=to_number,
                requested_by=requested_by,
                reference=reference,
                intents=intents,
                now=time.time() if now is None else now,
            )

    def list_events(
        self, practice_id: str, limit: int = 200, before: int | None = None
    ) -> list[EventRecord]:
        """The practice's audit trail, newest first; only events older than ``before`` if given."""
        query = select(AuditEvent).where(AuditEvent.practice_id == practice_id)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        with self.session() as s:
            # Ids grow with time; (practice_id, id) is indexed, so a page costs the same anywhere.
            rows = s.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
            return [
                EventRecord(
                    id=e.id,
                    at=_aware(e.at),
                    channel=e.channel,
                    to=e.to_masked,
                    actor=e.actor,
                    requested_by=e.requested_by,
                    outcome=e.outcome,
                    reference=e.reference,
                )
                for e in rows
            ]


class _Audit:
    """Audit events of one change, added to the session that makes it (one transaction)."""

    def __init__(
        self,
        session: Session,
        practice_id: str,
        actor: str,
        *,
        channel: str,
        reference: str | None = None,
    ) -> None:
        self.session, self.practice_id, self.actor = session, practice_id, actor
        self.channel, self.reference = channel, reference

    def add(self, outcome: str, *, to_number: str | None) -> None:
        self.session.add(
            AuditEvent(
                practice_id=self.practice_id,
                channel=self.channel,
                outcome=outcome,
                actor=self.actor,
                to_masked=mask(to_number),
                reference=self.reference,
            )
        )


def _audit_admin_cell(s: Session, number: str, outcome: str, actor: str) -> None:
    """Audit ``outcome`` of ``number`` for every practice where it is an admin's cell."""
    admins = s.execute(
        select(User.practice_id, User.id).where(User.cell_number == number, User.role == "admin")
    ).all()
    for practice_id, user_id in admins:
        _Audit(s, practice_id, actor, channel="sms", reference=user_id).add(
            outcome, to_number=number
        )


def add_audit_event(
    session: Session,
    practice_id: str,
    *,
    channel: str,
    outcome: str,
    actor: str,
    to_number: str | None,
    requested_by: str | None,
    reference: str | None,
    intents: Sequence[outbox.Intent],
    now: float,
) -> list[outbox.Job]:
    """Add an audit event, and the outbox rows it leaves, to ``session``'s transaction."""
    event = AuditEvent(
        practice_id=practice_id,
        channel=channel,
        outcome=outcome,
        actor=actor,
        to_masked=mask(to_number),
        requested_by=requested_by,
        reference=reference,
    )
    session.add(event)
    if not intents:
        return []
    session.flush()
    return outbox.add(session, intents, now=now, audit_event_id=event.id)


def _make_engine(database_url: str) -> Engine:
    # Hosted PostgreSQL URLs name no driver; ours is psycopg 3.
    for scheme in ("postgres://", "postgresql://"):
        if database_url.startswith(scheme):
            database_url = "postgresql+psycopg://" + database_url[len(scheme) :]
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 5}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(
        database_url,
        pool_pre_ping=True,
        pool_timeout=2,
        connect_args={"connect_timeout": 2} if database_url.startswith("postgresql") else {},
    )
