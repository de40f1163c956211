"""The production setup holds 50 slow clients while webhooks still answer within a second.

gunicorn (2 workers x 4 threads) gives each request a thread until it has arrived: eight
clients sending a byte a second stop it answering. In production nginx stands in front
(deploy/nginx.conf) and reads each request whole before gunicorn sees it. This runs that
setup on loopback: gunicorn with the repo's config, nginx with the repo's site file, 50
slow clients for 30 s, and signed webhooks and /healthz timed one after another meanwhile.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import requests

from devservers.gunicorn_server import gunicorn_server
from devservers.nginx_server import nginx_server
from tests.gunicorn_flows import TWILIO_TOKEN, production_env
from tests.helpers import PUBLIC_BASE_URL, twilio_signature
from tests.slow_clients import hold_slow_clients
from tests.voice import ACCOUNT_SID, OUR_NUMBER

SLOW_CLIENTS = 50
SECONDS = 30
# What Twilio and a load balancer's health check must see, whatever else is going on.
WITHIN = 1.0


def signed_webhook(
    url: str, path: str, form: dict[str, str]
) -> Callable[[float], requests.Response]:
    def send(timeout: float) -> requests.Response:
        signature = twilio_signature(PUBLIC_BASE_URL + path, form, TWILIO_TOKEN)
        return requests.post(
            f"{url}{path}", data=form, headers={"X-Twilio-Signature": signature}, timeout=timeout
        )

    return send


def probes(url: str) -> list[tuple[str, Callable[[float], requests.Response]]]:
    """A call to the service's number, a HELP text, and the health check."""
    call = {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + secrets.token_hex(16),
            "From": "+12025550188", "To": OUR_NUMBER}  # fmt: skip
    text = {"AccountSid": ACCOUNT_SID, "MessageSid": "SM" + secrets.token_hex(16),
            "From": "+12025550188", "To": OUR_NUMBER, "Body": "HELP"}  # fmt: skip
    return [
        ("ivr inbound", signed_webhook(url, "/ivr/inbound", call)),
        ("sms inbound", signed_webhook(url, "/sms/inbound", text)),
        ("healthz", lambda timeout: requests.get(f"{url}/healthz", timeout=timeout)),
    ]


def test_fifty_slow_clients_for_thirty_seconds_leave_webhooks_answering_within_a_second(
    tmp_path: Path, redis_url: str
) -> None:
    env = production_env(
        redis_url,
        f"sqlite:///{tmp_path / 'd.sqlite3'}",
        twilio_url="",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        # The probes text HELP from one number for 30 s: not a flood here.
        SMS_INBOUND_PER_NUMBER="100000/hour",
    )
    with gunicorn_server(env) as upstream, nginx_server(upstream) as url:
        report = hold_slow_clients(url, probes(url), clients=SLOW_CLIENTS, seconds=SECONDS)

    assert report.open_at_end == SLOW_CLIENTS, report.summary()
    assert report.closed_by_server == 0, report.summary()
    assert len(report.probes) >= 3 * 20, report.summary()
    assert report.failed == [], report.summary()
    # Held threads delay every probe past its timeout; a machine busy with other work can
    # delay one now and then. So: nineteen in twenty within the second, none near a timeout.
    seconds = sorted(probe.seconds for probe in report.probes)
    assert seconds[len(seconds) * 19 // 20] < WITHIN, report.summary()
    assert report.slowest < 3 * WITHIN, report.summary()
