"""The admin API: the main application keeps the directory in sync through it."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from api import validation as v
from core.auth import require_token
from core.disclosures import Channel, Disclosure, codeword_disclosed
from core.errors import InvalidInput, NotFound
from core.extensions import directory
from store import clock
from store import directory as store
from store.codewords import generate_codeword, validate_codeword

bp = Blueprint("admin", __name__, url_prefix="/api/v1/practices")


def _practice_or_404(practice_id: str) -> store.PracticeRecord:
    practice = directory().get_practice(v.identifier(practice_id, "practice_id"))
    if practice is None:
        raise NotFound("no such practice")
    return practice


@bp.put("/<practice_id>")
@require_token("admin")
def put_practice(practice_id: str) -> tuple[Response, int]:
    """Create or update a practice."""
    body = v.json_body()
    codeword = body.get("codeword")
    if codeword is not None:
        try:
            codeword = validate_codeword(codeword)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="codeword") from None
    practice, created = directory().put_practice(
        v.identifier(practice_id, "practice_id"),
        name=v.text(body, "name"),
        office_number=v.phone_number(body.get("office_number"), "office_number"),
        office_number_verified=v.flag(body, "office_number_verified"),
        language=v.choice(body, "language", ("en", "es"), required=False),
        codeword=codeword,
        actor=g.actor,
    )
    if codeword is not None:
        directory().record_event(practice.id, channel="app", outcome="changed", actor=g.actor)
    return jsonify(practice.to_json()), 201 if created else 200


@bp.get("/<practice_id>")
@require_token("admin")
def get_practice(practice_id: str) -> Response:
    """A practice with its users; never the codeword."""
    return jsonify(_practice_or_404(practice_id).to_json())


@bp.put("/<practice_id>/users/<user_id>")
@require_token("admin")
def put_user(practice_id: str, user_id: str) -> tuple[Response, int]:
    """Create or update a user of a practice."""
    body = v.json_body()
    practice = _practice_or_404(practice_id)
    cell_given = "cell_number" in body
    cell = body.get("cell_number")
    if cell is not None:
        cell = v.phone_number(cell, "cell_number")
    # A practice deleted meanwhile raises NotInDirectory: the app answers it with 404.
    user, created = directory().put_user(
        practice.id,
        v.identifier(user_id, "user_id"),
        name=v.text(body, "name"),
        role=v.choice(body, "role", ("admin", "staff"), required=True),
        cell_number=cell,
        cell_number_given=cell_given,
        cell_number_verified=v.flag(body, "cell_number_verified"),
        actor=g.actor,
    )
    return jsonify(user.to_json()), 201 if created else 200


@bp.delete("/<practice_id>/users/<user_id>")
@require_token("admin")
def delete_user(practice_id: str, user_id: str) -> tuple[str, int]:
    """Remove a user from a practice."""
    practice = _practice_or_404(practice_id)
    if not directory().delete_user(practice.id, v.identifier(user_id, "user_id"), actor=g.actor):
        raise NotFound("no such user")
    return "", 204


@bp.get("/<practice_id>/codeword")
@require_token("admin")
def read_codeword(practice_id: str) -> Response:
    """The codeword, for the Settings > User Accounts banner; a disclosure like any other."""
    practice = _practice_or_404(practice_id)
    codeword = directory().read_codeword(practice.id)
    if codeword is None:
        raise NotFound("this practice has no codeword yet", code="no_codeword")
    codeword_disclosed(
        Disclosure(
            practice_id=practice.id,
            practice_name=practice.name,
            channel=Channel.APP,
            actor=g.actor,
            requested_by=None,
            to=None,
            at=clock.now(),
        )
    )
    return jsonify({"codeword": codeword})


@bp.post("/<practice_id>/codeword")
@require_token("admin")
def set_codeword(practice_id: str) -> Response:
    """Set the codeword, or generate an easy-to-say one when none is given."""
    practice = _practice_or_404(practice_id)
    body = v.optional_json_body()
    chosen = body.get("codeword")
    try:
        codeword = validate_codeword(chosen) if chosen is not None else generate_codeword()
    except ValueError as exc:
        raise InvalidInput(str(exc), field="codeword") from None
    directory().set_codeword(practice.id, codeword)
    outcome = "changed" if chosen is not None else "generated"
    directory().record_event(practice.id, channel="app", outcome=outcome, actor=g.actor)
    return jsonify({"codeword": codeword})


@bp.get("/<practice_id>/disclosures")
@require_token("admin", "support")
def list_disclosures(practice_id: str) -> Response:
    """A page of the practice's codeword audit trail, newest first (``?limit=``, ``?before=``)."""
    practice = _practice_or_404(practice_id)
    limit = v.query_int("limit", default=100, low=1, high=500)
    before = v.query_int("before", default=None, low=1)
    # One more than the page: whether it exists says if there is a next page.
    events = directory().list_events(practice.id, limit=limit + 1, before=before)
    next_before = events[limit - 1].id if len(events) > limit else None
    return jsonify({"events": [e.to_json() for e in events[:limit]], "next_before": next_before})
