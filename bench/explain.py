"""EXPLAIN ANALYZE of the directory's hot queries, as the service issues them.

    python -m bench.explain --database-url postgresql://... [--cell +1...] [--practice p-...]

Each statement is the one the code runs (compiled by SQLAlchemy for PostgreSQL), so a
plan here is the plan a webhook gets. Used by docs/scale.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from cryptography.fernet import Fernet
from sqlalchemy import Select, func, select
from sqlalchemy.engine import Engine

from bench.seed_directory import AUDIT_PRACTICE, admin_cell, practice_id
from store import directory as d
from store.crypto import CodewordCipher
from store.models import AuditEvent, Practice


def hot_queries(
    cell: str, practice: str, audit_practice: str, audit_before: int
) -> Iterator[tuple[str, object, dict[str, object]]]:
    """(what, statement, parameters) for every query a hot webhook or a page makes."""
    yield "inbound text: opt-out and admin cell, one statement", d._SENDER, {"number": cell}
    yield "CODEWORD: the admin's practices", d._ADMINS_WITH_VERIFIED_CELL, {"number": cell}
    yield "answer: the practice by id", select(Practice).where(Practice.id == practice), {}
    for whose, trail in (("a practice's", practice), ("the long", audit_practice)):
        yield f"audit trail: {whose} newest page", _page(trail, None), {}
    yield (
        f"audit trail: the long one, far back (before={audit_before})",
        _page(audit_practice, audit_before),
        {},
    )


def _page(practice: str, before: int | None) -> Select[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.practice_id == practice)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return query.order_by(AuditEvent.id.desc()).limit(100)


def explain(
    engine: Engine, statement: object, params: dict[str, object], *, avoid_seq_scan: bool = False
) -> str:
    """The plan PostgreSQL runs ``statement`` with.

    ``avoid_seq_scan`` makes a sequential scan the last resort, so that a small table
    shows whether an index can serve the query (a large one needs no such push).
    """
    compiled = statement.compile(engine)  # type: ignore[attr-defined]
    with engine.begin() as conn:
        if avoid_seq_scan:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {compiled}", {**compiled.params, **params}
        )
        return "\n".join(row[0] for row in rows)


def plans(
    engine: Engine,
    *,
    practices: int,
    practice: int,
    audit_practice: str,
    avoid_seq_scan: bool = False,
) -> dict[str, str]:
    """What each hot query does on a directory seeded by bench.seed_directory."""
    with engine.connect() as conn:
        # The middle of the long trail: a page as far back as paging goes on average.
        audit_before = conn.scalar(
            select(func.percentile_disc(0.5).within_group(AuditEvent.id)).where(
                AuditEvent.practice_id == audit_practice
            )
        )
    cell = admin_cell(practice, practices)
    queries = hot_queries(cell, practice_id(practice), audit_practice, int(audit_before or 0))
    return {
        what: explain(engine, statement, params, avoid_seq_scan=avoid_seq_scan)
        for what, statement, params in queries
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--practices", type=int, default=100_000, help="as seeded")
    parser.add_argument("--practice", type=int, default=4_242, help="which practice to look up")
    parser.add_argument("--audit-practice", default=AUDIT_PRACTICE)
    args = parser.parse_args(argv)
    engine = d.Directory(args.database_url, CodewordCipher([Fernet.generate_key().decode()])).engine
    found = plans(
        engine, practices=args.practices, practice=args.practice, audit_practice=args.audit_practice
    )
    for what, plan in found.items():
        print(f"-- {what}\n{plan}\n")


if __name__ == "__main__":
    main()
