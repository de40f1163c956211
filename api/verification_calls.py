"""The support API for verification calls: ask for one, then follow its status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from api import validation as v
from core.auth import require_token
from core.errors import InvalidInput
from ivr import outbound
from ivr.session import CallSession
from store import clock
from store.clock import iso
from store.numbers import mask

bp = Blueprint("verification_calls", __name__, url_prefix="/api/v1/verification-calls")

IDEMPOTENCY_KEY_MAX = 255


def _idempotency_key() -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > IDEMPOTENCY_KEY_MAX or not value.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} printable characters",
            field="Idempotency-Key",
        )
    return value


def call_json(call: CallSession) -> dict[str, Any]:
    """A verification call as support sees it; never the code or the full number."""
    return {
        "id": call.id,
        "status": call.status_at(clock.now()),
        "practice_id": call.practice_id,
        "to": mask(call.to),
        "requested_by": call.requested_by,
        "actor": call.actor,
        "call_sid": call.call_sid,
        "created_at": iso(call.created_at),
        "expires_at": iso(call.expires_at),
    }


@bp.post("")
@require_token("support")
def create_verification_call() -> tuple[Response, int, dict[str, str]]:
    """Call the practice's verified office number; the answer carries the challenge code."""
    idempotency_key = _idempotency_key()
    body = v.json_body()
    requested = outbound.request_call(
        practice_id=v.body_identifier(body, "practice_id"),
        requested_by=v.text(body, "requested_by"),
        actor=g.actor,
        idempotency_key=idempotency_key,
    )
    call = requested.call
    headers = {"Location": f"{bp.url_prefix}/{call.id}"}
    if requested.replayed:
        headers["Idempotent-Replayed"] = "true"
    return (
        jsonify(
            {
                "id": call.id,
                "status": call.status_at(clock.now()),
                "challenge_code": requested.challenge_code,
                "expires_at": iso(call.expires_at),
                "to": mask(call.to),
            }
        ),
        201,
        headers,
    )


@bp.get("/<call_id>")
@require_token("support")
def get_verification_call(call_id: str) -> Response:
    """A verification call's status."""
    return jsonify(call_json(outbound.get_call(v.identifier(call_id, "id"))))
