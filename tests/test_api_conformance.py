"""The running service answers as openapi.yaml describes it, checked by Schemathesis.

gunicorn serves the app with a real Redis and Twilio's API played by Prism; Schemathesis
(``st run``) sends the admin, the support and the metrics operations what their
description allows and what it does not, each with its own token, and checks that no
answer is a 5xx and that every status, content type and body is one the description gives.
A fixed seed and a bounded number of examples keep the run short and repeatable.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devservers.gunicorn_server import gunicorn_server
from devservers.processes import REPO
from devservers.redis_server import redis_server
from tests.gunicorn_flows import production_env
from tests.helpers import ADMIN, ADMIN_TOKEN, METRICS_TOKEN, SUPPORT_TOKEN

SCHEMATHESIS = Path(sys.executable).parent / "st"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
# Per operation; with the fixed seed the same cases run each time: about a minute in all.
MAX_EXAMPLES = 30
SEED = 20261130


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, prism_url: str) -> Iterator[str]:
    """gunicorn with its own Redis and Prism for Twilio, seeded with the description's examples."""
    tmp = tmp_path_factory.mktemp("conformance")
    with redis_server() as redis_url:
        env = production_env(redis_url, f"sqlite:///{tmp / 'directory.sqlite3'}", prism_url)
        with gunicorn_server(env) as url:
            practice = {
                "name": "Bright Smiles",
                "office_number": "(202) 555-0100",
                "office_number_verified": True,
                "codeword": "maple-otter-47",
            }
            user = {
                "name": "Dana",
                "role": "admin",
                "cell_number": "+12025550111",
                "cell_number_verified": True,
            }
            for path, body in (("p-1", practice), ("p-1/users/u-1", user)):
                response = requests.put(
                    f"{url}/api/v1/practices/{path}", json=body, headers=ADMIN, timeout=10
                )
                assert response.status_code == 201, response.text
            yield url


@pytest.mark.parametrize(
    ("tag", "token"),
    [("admin", ADMIN_TOKEN), ("support", SUPPORT_TOKEN), ("health", METRICS_TOKEN)],
)
def test_the_service_answers_as_its_description_says(
    service: str, tmp_path: Path, tag: str, token: str
) -> None:
    command = [
        str(SCHEMATHESIS), "run", str(REPO / "openapi.yaml"),
        "--url", service,
        "--include-tag", tag,
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-database", "none",
        "--request-timeout", "10",
        "--no-color",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
