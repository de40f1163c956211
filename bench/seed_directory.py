"""Fill a PostgreSQL directory with many practices and users, as a large deployment has.

    python -m bench.seed_directory --database-url postgresql://... [--practices 100000]

Rows go in with COPY, a few minutes at most for 100,000 practices and 1,000,000 users.
Every practice gets an encrypted codeword, a verified office number, admins with verified
cells, staff, and one audit event; one practice (``p-audit``) gets a long audit trail to
page through. Numbers are fictional (555) and distinct per user.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import psycopg
from cryptography.fernet import Fernet

from store.crypto import CodewordCipher
from store.directory import Directory

AREA_CODES = ("202", "212", "303", "312", "415", "503", "617", "646", "702", "713")
ROLES_PER_PRACTICE = ("admin", "admin", *("staff",) * 8)
AUDIT_PRACTICE = "p-audit"


def practice_id(n: int) -> str:
    return f"p-{n:06d}"


def number(n: int) -> str:
    """The n-th distinct fictional North American number (+1 AAA EEE LLLL)."""
    area = AREA_CODES[n % len(AREA_CODES)]
    exchange, line = divmod(n // len(AREA_CODES), 10_000)
    return f"+1{area}{200 + exchange % 800}{line:04d}"


def _practices(count: int, cipher: CodewordCipher, now: datetime) -> Iterator[tuple[object, ...]]:
    # One Fernet token per practice, as in production; encrypting is the slow part.
    for n in range(count):
        token = cipher.encrypt(f"maple-otter-{n % 100:02d}")
        yield (practice_id(n), f"Practice {n} Dental", number(n), True, "en", token, now, now)


def _users(practices: int, per_practice: int, now: datetime) -> Iterator[tuple[object, ...]]:
    for n in range(practices):
        for k in range(per_practice):
            role = ROLES_PER_PRACTICE[k % len(ROLES_PER_PRACTICE)]
            serial = practices + n * per_practice + k
            cell = number(serial) if role == "admin" or k % 2 == 0 else None
            verified = role == "admin"
            yield (practice_id(n), f"u-{k}", f"User {k}", role, cell, verified, now, now)


def _events(practice: str, count: int, start: datetime) -> Iterator[tuple[object, ...]]:
    for n in range(count):
        at = start + timedelta(seconds=n)
        yield (
            practice,
            at,
            "voice",
            "disclosed",
            "+1******0100",
            "helpdesk",
            "Dana",
            f"CA{n:032x}",
        )


def _interleave(
    many: Sequence[tuple[object, ...]], few: Iterator[tuple[object, ...]], few_count: int
) -> Iterator[tuple[object, ...]]:
    """``few`` spread evenly through ``many``, as events of one practice arrive among all."""
    others = iter(many)
    for n, row in enumerate(few, start=1):
        yield row
        yield from itertools.islice(
            others, len(many) * n // few_count - len(many) * (n - 1) // few_count
        )
    yield from others


def _copy(
    conn: psycopg.Connection, table: str, columns: str, rows: Iterator[tuple[object, ...]]
) -> int:
    count = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def admin_cell(practice: int, practices: int, users_per_practice: int = 10) -> str:
    """The verified cell of the first admin of the ``practice``-th practice."""
    return number(practices + practice * users_per_practice)


def seed(
    database_url: str, *, practices: int, users_per_practice: int, audit_events: int, key: str
) -> None:
    """Create the schema and fill it, codewords under Fernet ``key``; the tables must be empty."""
    Directory(database_url, CodewordCipher([key])).migrate()
    cipher = CodewordCipher([key])
    now = datetime.now(UTC)
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        started = time.monotonic()
        done = _copy(
            conn,
            "practices",
            "id, name, office_number, office_number_verified, language, codeword_encrypted,"
            " created_at, updated_at",
            _practices(practices, cipher, now),
        )
        print(f"practices: {done} in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        _copy(
            conn,
            "practices",
            "id, name, office_number, office_number_verified, language, created_at, updated_at",
            iter([(AUDIT_PRACTICE, "Audit Trail Dental", "+12025550199", True, "en", now, now)]),
        )
        done = _copy(
            conn,
            "users",
            "practice_id, id, name, role, cell_number, cell_number_verified,"
            " created_at, updated_at",
            _users(practices, users_per_practice, now),
        )
        print(f"users: {done} in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        # Three events a practice (its numbers set, a read by the app), as after a sync.
        everyone = [
            (practice_id(n), now, "app", outcome, None, "mainapp", None, None)
            for outcome in ("office_number_set", "cell_number_set", "disclosed")
            for n in range(practices)
        ]
        columns = "practice_id, at, channel, outcome, to_masked, actor, requested_by, reference"
        # Interleaved, as events arrive: the long trail is spread among everyone else's.
        mixed = _interleave(everyone, _events(AUDIT_PRACTICE, audit_events, now), audit_events)
        done = _copy(conn, "audit_events", columns, mixed)
        print(f"audit events: {done} in {time.monotonic() - started:.1f} s")
        # One staff cell in a hundred texted STOP.
        stopped = (
            (number(practices + n * users_per_practice + 2), now) for n in range(0, practices, 100)
        )
        done = _copy(conn, "opt_outs", "number, opted_out_at", stopped)
        print(f"opt-outs: {done}")
        conn.commit()
        conn.execute("ANALYZE")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="postgresql://... (empty database)")
    parser.add_argument("--practices", type=int, default=100_000)
    parser.add_argument("--users-per-practice", type=int, default=10)
    parser.add_argument("--audit-events", type=int, default=100_000, help=f"for {AUDIT_PRACTICE}")
    args = parser.parse_args(argv)
    key = os.environ.get("CODEWORD_KEYS", "").split(",")[0] or Fernet.generate_key().decode()
    if not os.environ.get("CODEWORD_KEYS"):
        print("CODEWORD_KEYS unset: codewords encrypted under a new key, readable by no service")
    seed(
        args.database_url,
        practices=args.practices,
        users_per_practice=args.users_per_practice,
        audit_events=args.audit_events,
        key=key,
    )


if __name__ == "__main__":
    main()
