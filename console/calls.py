"""Calling a practice's office from the console, and watching the call as it goes.

The page polls a small JSON status (once a second, a few hundred bytes): each poll
is a short request, so an open page holds no server thread between polls.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, make_response, render_template, url_for
from werkzeug.wrappers import Response

from console import bp, words
from console.practices import (
    call_key_from_form,
    practice_or_404,
    render_practice,
    requested_by_from_form,
)
from core.errors import ServiceError
from ivr import outbound, session
from store import clock
from store.errors import LimitExceeded
from store.numbers import mask

# Seconds between the page's polls of a call's status.
POLL_SECONDS = 1


@bp.post("/practices/<practice_id>/calls")
def place_call(practice_id: str) -> Response:
    """Place a verification call, as the support API does; show its challenge code once."""
    found = practice_or_404(practice_id)
    key = call_key_from_form()
    try:
        requested = outbound.request_call(
            practice_id=found.id,
            requested_by=requested_by_from_form(),
            actor=g.actor,
            # Scoped to this token by the flow; "console:" keeps it apart from API keys.
            idempotency_key=f"console:{key}" if key else None,
        )
    except (ServiceError, LimitExceeded) as refused:
        error = words.as_service_error(refused)
        refusal = words.call_refusal(error, found, current_app.config)
        return render_practice(found, refusal=refusal, error=error)
    return _call_page(requested.call, challenge_code=requested.challenge_code, status=201)


@bp.get("/calls/<string(maxlength=64):call_id>")
def call(call_id: str) -> Response:
    """A verification call's page, for following it; the challenge code is not shown again."""
    return _call_page(outbound.get_call(call_id), challenge_code=None, status=200)


@bp.get("/calls/<string(maxlength=64):call_id>/status")
def call_status(call_id: str) -> Response:
    """What the call page polls: the API's status word and what it means. Never a code."""
    found = outbound.get_call(call_id)
    return jsonify(_status_json(found))


def _status_json(found: session.CallSession) -> dict[str, Any]:
    now = clock.now()
    progress = words.call_progress(found, now, mask(found.to) or "")
    return {
        "id": found.id,
        "status": progress.status,
        "stage": progress.stage,
        "progress": progress.sentence,
        "final": progress.final,
        "tries_left": progress.tries_left,
        "expires_in": max(0, int(found.expires_at - now)),
    }


def _call_page(found: session.CallSession, *, challenge_code: str | None, status: int) -> Response:
    state = _status_json(found)
    page = render_template(
        "console/call.html",
        call=found,
        to=mask(found.to),
        state=state,
        stages=words.STAGES,
        challenge_code=challenge_code if not state["final"] else None,
        status_url=url_for("console.call_status", call_id=found.id),
        poll_ms=POLL_SECONDS * 1000,
    )
    return make_response(page, status)
