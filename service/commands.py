"""``flask`` commands for operators: prepare the database, rotate keys, demo data."""

from __future__ import annotations

import click
import redis
from flask import Flask, current_app
from flask.cli import with_appcontext

from core.demo import DEMO_PRACTICE, demo
from core.extensions import directory, redis_client
from core.queue import worker_connection
from core.worker import run_worker
from ivr.session import reseal_codes
from store import schema


def register_commands(app: Flask) -> None:
    """Add the operator commands to ``flask``.

    ``flask phone`` is not added here: the terminal phone sits above the service and
    registers itself through the ``flask.commands`` entry point (pyproject.toml).
    """
    app.cli.add_command(demo)
    app.cli.add_command(init_db)
    app.cli.add_command(db)
    app.cli.add_command(rotate_codeword_keys)
    app.cli.add_command(seed_demo)
    app.cli.add_command(worker)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create the directory's tables, or migrate them to the newest schema."""
    directory().migrate()
    click.echo(f"database ready at revision {schema.current(directory().engine)}")


@click.group("db")
def db() -> None:
    """The directory's schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Migrate the directory to REVISION (default: the newest)."""
    schema.upgrade(directory().engine, revision)
    click.echo(f"database at revision {schema.current(directory().engine)}")


@db.command("current")
@with_appcontext
def db_current() -> None:
    """Print the revision the directory is at, and the newest this code knows."""
    click.echo(f"database: {schema.current(directory().engine) or 'none'}; newest: {schema.head()}")


@click.command("rotate-codeword-keys")
@with_appcontext
def rotate_codeword_keys() -> None:
    """Re-encrypt every codeword and sealed challenge code under the first CODEWORD_KEYS key."""
    count = directory().rotate_codewords()
    click.echo(f"re-encrypted {count} codeword(s) under the first key")
    try:
        sealed = reseal_codes(redis_client(), directory().cipher.rotate)
    except redis.RedisError:
        raise click.ClickException(
            "Redis is unavailable: run this again to re-encrypt the sealed challenge codes"
        ) from None
    click.echo(f"re-encrypted {sealed} sealed challenge code(s) in Redis")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Work until the queue is empty, then stop.")
@with_appcontext
def worker(burst: bool) -> None:
    """Run the background worker: codeword texts, notices, redaction at Twilio, events."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_worker(app, worker_connection(app.config["QUEUE_REDIS_URL"]), burst=burst)


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Add a demo practice with a verified office number and an admin with a verified cell."""
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("demo data is for development only")
    store = directory()
    store.migrate()
    practice, created = store.put_practice(
        DEMO_PRACTICE,
        name="Bright Smiles Dental",
        office_number="+12025550100",
        office_number_verified=True,
        language="en",
    )
    if created or not practice.has_codeword:
        store.set_codeword(DEMO_PRACTICE, "maple-otter-47")
    store.put_user(
        DEMO_PRACTICE,
        "demo-admin",
        name="Dana Admin",
        role="admin",
        cell_number="+12025550111",
        cell_number_given=True,
        cell_number_verified=True,
    )
    click.echo(f"demo practice {DEMO_PRACTICE!r}: office +12025550100, admin cell +12025550111")
