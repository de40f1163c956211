"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from core.extensions import directory, redis_client

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int, dict[str, str]] | Response:
    """Redis and the database answer; 503 naming what does not."""
    checks: dict[str, str] = {}
    try:
        redis_client().ping()
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "unavailable"
    try:
        directory().ping()
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    if all(v == "ok" for v in checks.values()):
        return jsonify({"status": "ready", "checks": checks})
    return jsonify({"status": "unavailable", "checks": checks}), 503, {"Retry-After": "5"}
