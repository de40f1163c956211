"""Liveness and readiness."""

from __future__ import annotations

from flask.testing import FlaskClient

from devservers.redis_server import RedisProcess


def test_healthz_answers_while_the_process_lives(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_ready_with_redis_and_the_database(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"redis": "ok", "database": "ok"}


def test_readyz_is_503_while_redis_is_down_and_recovers(
    client: FlaskClient, redis_process: RedisProcess
) -> None:
    redis_process.stop()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.get_json()["checks"]["redis"] == "unavailable"
    assert down.headers["Retry-After"]
    redis_process.start()
    assert client.get("/readyz").status_code == 200
