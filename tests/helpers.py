"""What many tests share: the test tokens, signing a webhook as Twilio does, the admin API calls."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

PUBLIC_BASE_URL = "https://codeword.example.com"
TWILIO_AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-for-tests-0000000001"
SUPPORT_TOKEN = "support-token-for-tests-00000001"
METRICS_TOKEN = "metrics-token-for-tests-0000001"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SUPPORT = {"Authorization": f"Bearer {SUPPORT_TOKEN}"}
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def twilio_signature(url: str, form: dict[str, Any], token: str = TWILIO_AUTH_TOKEN) -> str:
    """Sign a webhook exactly as Twilio does."""
    return RequestValidator(token).compute_signature(url, form)


def post_signed(
    client: FlaskClient,
    path: str,
    form: dict[str, Any],
    *,
    base_url: str = PUBLIC_BASE_URL,
    token: str = TWILIO_AUTH_TOKEN,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """POST a form to ``path`` (which may carry a query string), signed as Twilio would."""
    signature = twilio_signature(base_url + path, form, token)
    return client.post(
        path, data=form, headers={"X-Twilio-Signature": signature, **(headers or {})}
    )


def put_practice(client: FlaskClient, practice_id: str = "p-1", **fields: Any) -> TestResponse:
    """Create a practice through the admin API."""
    body = {"name": "Bright Smiles", "office_number": "(202) 555-0100", **fields}
    return client.put(f"/api/v1/practices/{practice_id}", json=body, headers=ADMIN)


def put_user(
    client: FlaskClient, practice_id: str = "p-1", user_id: str = "u-1", **fields: Any
) -> TestResponse:
    """Create a user through the admin API."""
    body = {"name": "Dana", "role": "admin", **fields}
    return client.put(f"/api/v1/practices/{practice_id}/users/{user_id}", json=body, headers=ADMIN)
