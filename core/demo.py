"""``flask demo reset``: let a newcomer replay the demo ``scripts/run`` seeds.

The demo invites wrong codes, silence and voicemail, and its limits (3 calls an hour)
outlast a restart: Redis keeps them under ``instance/``. ``reset`` forgets, in Redis,
what the demo practice's calls and texts left: the rate-limit windows of the practice,
its numbers, its users and the demo tokens; its live call; its call sessions with their
challenge codes (and the idempotency keys naming them); its admins' pending cell codes and
practice choices. It also undoes a STOP texted from an admin's cell. The directory (the
practice, its codeword, the audit trail) stays. Development only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import click
import redis
from flask import current_app
from flask.cli import AppGroup

from core.extensions import directory, redis_client
from store import keys
from store.directory import PracticeRecord

DEMO_PRACTICE = "demo-practice"
# The name scripts/run gives the support and admin tokens it makes: the actor of the demo.
DEMO_ACTOR = "demo"

demo = AppGroup("demo", help="The demo practice that scripts/run seeds (development only).")


@dataclass(frozen=True)
class Cleared:
    """What a reset removed, to tell the person who asked."""

    limit_windows: int
    live_call: bool
    call_sessions: int
    other_keys: int


def _names_a_subject(key: str, subjects: set[str]) -> bool:
    """Whether a rate-limit key counts for one of ``subjects`` (a whole part of its name)."""
    return any(
        re.search(rf"(?:^|[/:{{}}]){re.escape(subject)}(?:$|[/:{{}}])", key) for subject in subjects
    )


def reset_practice(client: redis.Redis, practice: PracticeRecord, token_names: set[str]) -> Cleared:
    """Forget the rate limits, live call, call sessions and codes of ``practice``."""
    cells = {user.cell_number for user in practice.users if user.cell_number}
    subjects = {
        practice.id,
        *{f"{practice.id}/{user.id}" for user in practice.users},
        *cells,
        *token_names,
    }
    if practice.office_number:
        subjects.add(practice.office_number)
    limit_windows = [
        key
        for key in cast("list[str]", list(client.scan_iter(match=keys.key("limits", "*"))))
        if _names_a_subject(key.removeprefix(keys.key("limits", "")), subjects)
    ]
    sessions = {
        key.rpartition(":")[2]: key
        for key in cast("list[str]", list(client.scan_iter(match=keys.ALL_CALL_SESSIONS)))
        if client.hget(key, "practice_id") == practice.id
    }
    replays = [
        key
        for key in cast("list[str]", list(client.scan_iter(match=keys.every_idempotency_key())))
        if client.get(key) in sessions
    ]
    codes_and_choices = [
        *cast(
            "list[str]", list(client.scan_iter(match=keys.verification("cell", f"{practice.id}/*")))
        ),
        *(keys.sms_choice(cell) for cell in cells),
    ]
    pipe = client.pipeline()
    pipe.delete(keys.live_call(practice.id))
    for key in [*limit_windows, *sessions.values(), *replays, *codes_and_choices]:
        pipe.delete(key)
    deleted = cast("list[int]", pipe.execute())
    return Cleared(
        limit_windows=len(limit_windows),
        live_call=bool(deleted[0]),
        call_sessions=len(sessions),
        other_keys=sum(deleted[1 + len(limit_windows) + len(sessions) :]),
    )


@demo.command("reset")
def reset() -> None:
    """Clear the demo practice's rate limits, live call and codes, to replay the demo."""
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("demo reset is for development only (APP_ENV=production)")
    practice = directory().get_practice(DEMO_PRACTICE)
    if practice is None:
        raise click.ClickException(
            f"no practice {DEMO_PRACTICE!r}: scripts/run (or 'flask --app wsgi seed-demo') adds it"
        )
    try:
        cleared = reset_practice(redis_client(), practice, {DEMO_ACTOR})
    except redis.RedisError as exc:
        # Host and port only: the URL may carry a password.
        where = urlsplit(current_app.config["REDIS_URL"])
        raise click.ClickException(
            f"cannot reach Redis at {where.hostname}:{where.port} ({type(exc).__name__}):"
            " is REDIS_URL the one the service uses?"
        ) from None
    for user in practice.users:
        if user.cell_number:
            directory().opt_in(user.cell_number)
    click.echo(
        f"{DEMO_PRACTICE}: cleared {cleared.limit_windows} rate-limit window(s), "
        f"{'the live call' if cleared.live_call else 'no live call'}, "
        f"{cleared.call_sessions} call session(s) with their codes and "
        f"{cleared.other_keys} other code(s) or choice(s). The demo can start again."
    )
