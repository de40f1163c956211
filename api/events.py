"""The admin API's outcome events: how their delivery went, and sending one again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api import validation as v
from core import queue
from core.auth import require_token
from core.errors import InvalidInput, NotFound
from store import clock
from store.models import OutcomeEvent
from store.outbox import EVENT_STATUSES

bp = Blueprint("events", __name__, url_prefix="/api/v1/events")

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def event_json(event: OutcomeEvent) -> dict[str, Any]:
    """An event as the admin API shows it: its delivery, never its body."""
    return {
        "id": event.id,
        "type": event.type,
        "status": event.status,
        "attempts": event.attempts,
        "created_at": datetime.fromtimestamp(event.created_at, UTC).isoformat(timespec="seconds"),
        "last_error": event.last_error,
    }


def _limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


@bp.get("")
@require_token("admin")
def list_events() -> Response:
    """Outcome events, newest first, of one delivery status or all."""
    status = request.args.get("status")
    if status is not None and status not in EVENT_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(EVENT_STATUSES)}", field="status")
    events = queue.outbox().events(status=status, limit=_limit())
    return jsonify({"events": [event_json(e) for e in events]})


@bp.post("/<event_id>/redeliver")
@require_token("admin")
def redeliver(event_id: str) -> tuple[Response, int]:
    """Send the event again, with the same ``webhook-id``, from the start of the schedule."""
    job = queue.outbox().redeliver(v.identifier(event_id, "id"), now=clock.now())
    if job is None:
        raise NotFound("no such event")
    queue.enqueue([job])
    return jsonify({"id": event_id, "status": "pending"}), 202
