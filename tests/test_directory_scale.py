"""A large directory on PostgreSQL: the seeding script fills it, and every hot query is an
index look-up (the plan, not a timing, is what a test can hold steady)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from bench.explain import plans
from bench.seed_directory import AUDIT_PRACTICE, admin_cell, practice_id, seed
from devservers.postgres_server import postgres_available, postgres_server
from store.crypto import CodewordCipher
from store.directory import Directory

PRACTICES = 3_000


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[Directory, str]]:
    if not postgres_available():
        pytest.skip("PostgreSQL is not installed")
    key = Fernet.generate_key().decode()
    with postgres_server() as url:
        seed(url, practices=PRACTICES, users_per_practice=10, audit_events=5_000, key=key)
        directory = Directory(url, CodewordCipher([key]))
        yield directory, url
        directory.engine.dispose()


def test_the_seeded_directory_answers_as_the_service_asks(seeded: tuple[Directory, str]) -> None:
    directory, _ = seeded
    cell = admin_cell(42, PRACTICES)
    assert directory.sender(cell).admin_cell
    [(admin, practice)] = directory.admins_with_verified_cell(cell)
    assert (admin.role, practice.id) == ("admin", practice_id(42))
    assert directory.read_codeword(practice_id(42)) == "maple-otter-42"


def test_every_hot_query_is_an_index_look_up(seeded: tuple[Directory, str]) -> None:
    directory, _ = seeded
    # A few thousand rows fit in pages a scan reads as fast as an index: ask the planner
    # whether an index can serve each query; a query without one still shows a Seq Scan.
    found = plans(
        directory.engine,
        practices=PRACTICES,
        practice=42,
        audit_practice=AUDIT_PRACTICE,
        avoid_seq_scan=True,
    )
    assert len(found) == 6
    assert "ix_audit_practice_id" in found["audit trail: a practice's newest page"]
    assert "Rows Removed" not in found["audit trail: a practice's newest page"]
    for what, plan in found.items():
        assert "Seq Scan" not in plan, f"{what}:\n{plan}"
        assert "Index" in plan, f"{what}:\n{plan}"
        # A page reads about its own rows, never the whole trail: the planner may walk the
        # primary key for the long trail, a third of all events, and skip the others' rows.
        removed = re.search(r"Rows Removed by Filter: (\d+)", plan)
        assert removed is None or int(removed.group(1)) < 1_000, f"{what}:\n{plan}"
