"""The support API's codeword texts: support texts the codeword to an admin's verified cell."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from api import validation as v
from core.auth import require_token
from sms.codeword_texts import text_codeword_on_request

bp = Blueprint("codeword_texts", __name__, url_prefix="/api/v1/codeword-texts")


@bp.post("")
@require_token("support")
def create() -> tuple[Response, int]:
    """Text the practice's codeword to one of its admins; 202 once it is queued (the
    worker sends it: the request never waits for Twilio)."""
    body = v.json_body()
    practice_id = v.body_identifier(body, "practice_id")
    user_id = v.body_identifier(body, "user_id")
    requested_by = v.text(body, "requested_by")
    sent = text_codeword_on_request(practice_id, user_id, actor=g.actor, requested_by=requested_by)
    return jsonify(sent.to_json()), 202
