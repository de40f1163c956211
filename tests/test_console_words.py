"""What the console says: audit events as lines, waits and limits in words, a call's progress;
and the directory search behind "Find"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import text

from console import words
from core.extensions import directory
from ivr.session import CallSession
from store import schema
from store.crypto import CodewordCipher
from store.directory import Directory, EventRecord

AT = datetime(2025, 3, 4, 10, 42, tzinfo=UTC)


def event(channel: str, outcome: str, **fields: str | None) -> EventRecord:
    values: dict[str, str | None] = {
        "to": "+1******0100",
        "actor": "helpdesk",
        "requested_by": None,
        "reference": None,
        **fields,
    }
    return EventRecord(at=AT, channel=channel, outcome=outcome, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "line"),
    [
        (
            event("voice", "disclosed", requested_by="Dana Admin"),
            "codeword read by phone to +1******0100, at Dana Admin’s request, by helpdesk",
        ),
        (
            event("voice", "locked", requested_by="James"),
            "call to +1******0100 locked after three wrong codes; codeword not read, "
            "at James’ request, by helpdesk",
        ),
        (event("voice", "no-answer"), "call to +1******0100 not answered, by helpdesk"),
        (
            event("voice", "office_verification_no-answer", actor="mainapp"),
            "office number check call to +1******0100: no answer, by mainapp",
        ),
        (
            event("sms", "sent", to="+1******0111", actor="self"),
            "codeword texted to +1******0111, by the admin’s own text",
        ),
        (
            event("sms", "delivered", to="+1******0111", actor="twilio"),
            "codeword text to +1******0111 delivered, reported by the carrier",
        ),
        (
            event("app", "disclosed", to=None, actor="mainapp"),
            "codeword shown in the main application, by mainapp",
        ),
        (
            event("sms", "opted_out", to="+1******0111", actor="twilio"),
            "admin cell +1******0111 opted out of texts, reported by the carrier",
        ),
    ],
)
def test_audit_events_read_as_lines(record: EventRecord, line: str) -> None:
    assert words.audit_line(record) == line


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (1, "1 second"),
        (42, "42 seconds"),
        (61, "2 minutes"),
        (3540, "59 minutes"),
        (3600, "1 hour"),
        (3601, "1 hour 1 minute"),
        (86400, "24 hours"),
    ],
)
def test_waits_read_in_words(seconds: int, said: str) -> None:
    assert words.wait_in_words(seconds) == said


def test_limits_read_in_words() -> None:
    assert words.limits_in_words("3/hour;10/day") == "3 an hour and 10 a day"
    assert words.limits_in_words("5/minute") == "5 a minute"
    assert words.limits_in_words("2/15 minutes") == "2 every 15 minutes"


def _call(status: str, wrong_codes: int = 0, expires_at: float = 2000.0) -> CallSession:
    return CallSession(
        id="VC1",
        practice_id="p-1",
        practice_name="Bright Smiles",
        language="en",
        to="+12025550100",
        actor="helpdesk",
        requested_by="Dana",
        status=status,
        created_at=1000.0,
        expires_at=expires_at,
        call_sid="CA1",
        code_sealed=None,
        placed=True,
        wrong_codes=wrong_codes,
    )


@pytest.mark.parametrize(
    ("call", "status", "stage", "final", "sentence"),
    [
        (_call("queued"), "queued", "queued", False, "Placing the call to +1******0100…"),
        (_call("ringing"), "ringing", "ringing", False, "The office phone (+1******0100) is ringing."),
        (_call("in-progress"), "in-progress", "answered", False, "Answered. Waiting for the code to be keyed in."),
        (_call("in-progress", 2), "in-progress", "answered", False, "Answered. A wrong code was keyed in: 1 try left."),
        (_call("voicemail"), "voicemail", "ended", True, "Voicemail answered, so nothing was read. Try again later."),
        (_call("no-answer"), "no-answer", "ended", True, "Nobody answered the office phone."),
        (_call("ringing", expires_at=1500.0), "expired", "ended", True, "The challenge code expired before it was keyed in."),
    ],
)  # fmt: skip
def test_a_calls_progress_in_words(
    call: CallSession, status: str, stage: str, final: bool, sentence: str
) -> None:
    progress = words.call_progress(call, 1600.0, "+1******0100")
    assert (progress.status, progress.stage, progress.final, progress.sentence) == (
        status,
        stage,
        final,
        sentence,
    )


# --- the directory search --------------------------------------------------------------


@pytest.fixture
def practices(app: Flask) -> Flask:
    with app.app_context():
        for practice_id, name, number in (
            ("p-1", "Bright Smiles Dental", "+12025550100"),
            ("p-2", "Smiles On Main", "+12025550100"),
            ("smiles", "Oak Dental", "+12025550177"),
            ("p-4", "100% Dental_Care", "+12025550188"),
        ):
            directory().put_practice(practice_id, name=name, office_number=number)
    return app


def _ids(app: Flask, words_: str, number: str | None = None, limit: int = 20) -> list[str]:
    with app.app_context():
        return [p.id for p in directory().search_practices(words_, number, limit=limit)]


def test_search_puts_the_id_first_then_the_number_then_names_in_order(practices: Flask) -> None:
    assert _ids(practices, "smiles") == ["smiles", "p-1", "p-2"]
    assert _ids(practices, "zzz", "+12025550100") == ["p-1", "p-2"]
    assert _ids(practices, "SMILES ON") == ["p-2"]
    assert _ids(practices, "smiles", limit=2) == ["smiles", "p-1"]


def test_search_takes_wildcards_literally(practices: Flask) -> None:
    assert _ids(practices, "100%") == ["p-4"]
    assert _ids(practices, "%") == ["p-4"]
    assert _ids(practices, "a_e") == []  # as a wildcard, "_" would find "Care"
    assert _ids(practices, "dental_") == ["p-4"]


def test_search_uses_the_indexes(practices: Flask) -> None:
    """The office number is an index look-up; names are read in index order, not sorted."""
    with practices.app_context():
        engine = directory().engine
        with engine.connect() as conn:
            by_number = conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT id FROM practices "
                    "WHERE office_number = '+12025550100' ORDER BY name, id LIMIT 20"
                )
            ).all()
            by_name = conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT id FROM practices "
                    "WHERE lower(name) LIKE '%smiles%' ORDER BY lower(name), id LIMIT 20"
                )
            ).all()
    assert "ix_practices_office_number" in " ".join(str(row) for row in by_number)
    assert "ix_practices_name_lower" in " ".join(str(row) for row in by_name)


def test_a_directory_from_before_the_console_gains_its_indexes_by_migration(
    tmp_path: Path,
) -> None:
    directory = Directory(
        f"sqlite:///{tmp_path / 'd.sqlite3'}", CodewordCipher([Fernet.generate_key().decode()])
    )
    schema.upgrade(directory.engine, "0002")
    directory.put_practice("p-1", name="Bright Smiles", office_number="+12025550100")
    directory.migrate()
    with directory.engine.connect() as conn:
        names = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master"))}
    assert {"ix_practices_office_number", "ix_practices_name_lower"} <= names
    assert [p.id for p in directory.search_practices("smiles", "+12025550100")] == ["p-1"]
    schema.downgrade(directory.engine, "0002")
    with directory.engine.connect() as conn:
        names = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master"))}
    assert not {"ix_practices_office_number", "ix_practices_name_lower"} & names
