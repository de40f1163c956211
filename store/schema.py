"""The directory's schema, created and moved forward by Alembic migrations (store/migrations)."""

from __future__ import annotations

import functools

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from store.models import Base

# The schema every deployment had before migrations: tables made by create_all.
BASELINE = "0001"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "store:migrations")
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this code knows."""
    revision = _scripts().get_current_head()
    assert revision is not None
    return revision


def create_all(engine: Engine) -> None:
    """Create the tables straight from the models, marked as at the newest revision.

    Quicker than running every migration (tests build a fresh database each); a test
    holds the migrations to the same schema.
    """
    with engine.begin() as connection:
        Base.metadata.create_all(connection)
        MigrationContext.configure(connection).stamp(_scripts(), "head")


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty or unmigrated one."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Move the database forward to ``revision``.

    A database made by ``create_all`` before migrations existed has the baseline's
    tables but no version: it is stamped at the baseline first, then upgraded.
    """
    with engine.begin() as connection:
        config = _config(connection)
        unversioned = MigrationContext.configure(connection).get_current_revision() is None
        if unversioned and inspect(connection).has_table("practices"):
            command.stamp(config, BASELINE)
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Move the database back to ``revision`` ("base" undoes every migration)."""
    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)
