"""The schema comes from Alembic migrations, and they build exactly what the models describe."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import Result
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from devservers.postgres_server import postgres_available, postgres_server
from store import schema
from store.crypto import CodewordCipher
from store.directory import Directory
from store.models import Base


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection, warnings.catch_warnings():
        # SQLite cannot reflect an index on an expression (lower(name)), so it is not
        # compared there; the PostgreSQL test compares it.
        warnings.filterwarnings("ignore", message=".*expression-based index")
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_migrating_an_empty_sqlite_database_builds_the_models_schema(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    schema.upgrade(engine)
    assert schema.current(engine) == schema.head()
    assert _differences(engine) == []


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if not postgres_available():
        pytest.skip("PostgreSQL is not installed")
    with postgres_server() as url:
        yield url


def test_migrating_an_empty_postgresql_database_builds_the_models_schema(
    postgres_url: str,
) -> None:
    directory = Directory(postgres_url, CodewordCipher([Fernet.generate_key().decode()]))
    try:
        directory.migrate()
        assert schema.current(directory.engine) == schema.head()
        assert _differences(directory.engine) == []
        # Down to nothing and up again: every migration can be undone on the production engine.
        schema.downgrade(directory.engine, "base")
        assert inspect(directory.engine).get_table_names() == ["alembic_version"]
        directory.migrate()
        assert _differences(directory.engine) == []
    finally:
        with directory.engine.begin() as conn:
            for table in [*Base.metadata.sorted_tables][::-1]:
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        directory.engine.dispose()


def test_a_database_made_before_migrations_keeps_its_data_and_moves_forward(
    tmp_path: Path,
) -> None:
    """Tables made by create_all are stamped at the baseline, then migrated; nothing is lost."""
    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    directory = Directory(url, CodewordCipher([Fernet.generate_key().decode()]))
    # The tables as create_all made them then: the baseline, without a version.
    schema.upgrade(directory.engine, schema.BASELINE)
    with directory.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    assert schema.current(directory.engine) is None
    directory.put_practice("p-1", name="Bright Smiles", office_number="+12025550100")

    directory.migrate()

    assert schema.current(directory.engine) == schema.head()
    assert directory.get_practice("p-1") is not None
    assert _differences(directory.engine) == []


def test_the_release_command_migrates_and_can_run_again(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    runner = app.test_cli_runner()
    for _ in range(2):
        result: Result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert f"database at revision {schema.head()}" in result.output
    result = runner.invoke(args=["db", "current"])
    assert f"database: {schema.head()}; newest: {schema.head()}" in result.output.splitlines()
