"""The admin API's number checks: call the office number with a code, text a code to a cell."""

from __future__ import annotations

import re

from flask import Blueprint, Response, g, jsonify

from api import validation as v
from api.verification_calls import call_json
from core.auth import require_token
from core.errors import InvalidInput
from ivr import office_number
from sms import cell_verification
from store import clock
from store.clock import iso
from store.numbers import mask

bp = Blueprint("number_verification", __name__, url_prefix="/api/v1/practices/<practice_id>")

CODE = re.compile(r"[0-9]{6}")


@bp.post("/office-number/verification")
@require_token("admin")
def create_office_verification(practice_id: str) -> tuple[Response, int, dict[str, str]]:
    """Call the office number; whoever answers keys in ``code`` to verify it."""
    practice_id = v.identifier(practice_id, "practice_id")
    body = v.optional_json_body()
    requested = office_number.request_verification(
        practice_id,
        actor=g.actor,
        requested_by=v.text(body, "requested_by", required=False),
    )
    call = requested.call
    location = f"/api/v1/practices/{practice_id}/office-number/verification/{call.id}"
    return (
        jsonify(
            {
                "id": call.id,
                "code": requested.challenge_code,
                "status": call.status_at(clock.now()),
                "expires_at": iso(call.expires_at),
                "to": mask(call.to),
            }
        ),
        201,
        {"Location": location},
    )


@bp.get("/office-number/verification/<verification_id>")
@require_token("admin")
def get_office_verification(practice_id: str, verification_id: str) -> Response:
    """An office number verification's status; never its code."""
    call = office_number.get_verification(
        v.identifier(practice_id, "practice_id"), v.identifier(verification_id, "id")
    )
    return jsonify(call_json(call))


@bp.post("/users/<user_id>/cell-verification")
@require_token("admin")
def send_cell_code(practice_id: str, user_id: str) -> tuple[Response, int]:
    """Text a six-digit code to the user's cell."""
    sent = cell_verification.send_code(
        v.identifier(practice_id, "practice_id"), v.identifier(user_id, "user_id")
    )
    return jsonify(sent.to_json()), 202


@bp.post("/users/<user_id>/cell-verification/check")
@require_token("admin")
def check_cell_code(practice_id: str, user_id: str) -> Response:
    """The code the user read off their cell: right, and the cell is verified."""
    practice_id = v.identifier(practice_id, "practice_id")
    user_id = v.identifier(user_id, "user_id")
    code = v.json_body().get("code")
    if not isinstance(code, str) or not CODE.fullmatch(code.strip()):
        raise InvalidInput("code must be the six digits texted to the cell", field="code")
    cell_verification.check_code(practice_id, user_id, code.strip(), actor=g.actor)
    return jsonify({"cell_number_verified": True})
