"""The service as production runs it: gunicorn with the repo's config, a real Redis."""

from __future__ import annotations

from pathlib import Path

import requests

from devservers.gunicorn_server import gunicorn_server
from devservers.processes import REPO
from tests.gunicorn_flows import TWILIO_TOKEN, production_env
from tests.helpers import ADMIN, PUBLIC_BASE_URL, twilio_signature


def test_gunicorn_serves_the_app_with_a_prepared_database(tmp_path: Path, redis_url: str) -> None:
    # No call or text is placed here: Twilio's API is never reached.
    env = production_env(redis_url, f"sqlite:///{tmp_path / 'd.sqlite3'}", twilio_url="")
    with gunicorn_server(env) as url:
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 200
        created = requests.put(
            f"{url}/api/v1/practices/p-1",
            json={"name": "Bright Smiles", "office_number": "202-555-0100"},
            headers=ADMIN,
            timeout=5,
        )
        assert created.status_code == 201
        form = {"CallSid": "CA" + "1" * 32, "From": "+12025550100"}
        signature = twilio_signature(PUBLIC_BASE_URL + "/ivr/inbound", form, TWILIO_TOKEN)
        inbound = requests.post(
            f"{url}/ivr/inbound", data=form, headers={"X-Twilio-Signature": signature}, timeout=5
        )
        assert inbound.status_code == 200
        assert inbound.headers["Content-Type"].startswith("text/xml")


def test_the_wsgi_app_refuses_to_load_in_production_without_secrets(tmp_path: Path) -> None:
    """Loading the WSGI app in production fails, naming what is missing."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=REPO,
        env={"APP_ENV": "production", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "CODEWORD_KEYS" in result.stderr
