"""Helpers for the texting tests: a seeded directory and signed inbound texts."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from core.segments import MAX_GSM7_SEPTETS, gsm7_septets
from tests.helpers import post_signed, put_practice, put_user

SERVICE_NUMBER = "+15005550006"
ADMIN_CELL = "+12025550111"
SECOND_ADMIN_CELL = "+12025550112"
STAFF_CELL = "+12025550122"
UNVERIFIED_CELL = "+12025550133"
MULTI_ADMIN_CELL = "+12025550144"
UNKNOWN_CELL = "+12025550199"
CODEWORD = "maple-otter-47"
OAK_CODEWORD = "cedar-robin-58"


def seed(client: FlaskClient) -> None:
    """Bright Smiles (p-1) and Oak Dental (p-2), with every kind of user.

    p-1: Dana, admin, verified ADMIN_CELL; Sam, admin, verified SECOND_ADMIN_CELL;
    Stan, staff, verified STAFF_CELL; Uma, admin, unverified UNVERIFIED_CELL;
    Mia, admin, verified MULTI_ADMIN_CELL. p-2: Mia again, same cell.
    """
    assert put_practice(client, "p-1", name="Bright Smiles", codeword=CODEWORD).status_code == 201
    assert (
        put_practice(
            client, "p-2", name="Oak Dental", office_number="(202) 555-0101", codeword=OAK_CODEWORD
        ).status_code
        == 201
    )
    users = [
        ("p-1", "u-1", "Dana", "admin", ADMIN_CELL, True),
        ("p-1", "u-2", "Sam", "admin", SECOND_ADMIN_CELL, True),
        ("p-1", "u-3", "Stan", "staff", STAFF_CELL, True),
        ("p-1", "u-4", "Uma", "admin", UNVERIFIED_CELL, False),
        ("p-1", "u-5", "Mia", "admin", MULTI_ADMIN_CELL, True),
        ("p-2", "u-9", "Mia", "admin", MULTI_ADMIN_CELL, True),
    ]
    for practice_id, user_id, name, role, cell, verified in users:
        response = put_user(
            client,
            practice_id,
            user_id,
            name=name,
            role=role,
            cell_number=cell,
            cell_number_verified=verified,
        )
        assert response.status_code == 201


def text(client: FlaskClient, body: str, sender: str = ADMIN_CELL) -> TestResponse:
    """An inbound text from ``sender``, signed as Twilio signs it."""
    form = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": SERVICE_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }
    return post_signed(client, "/sms/inbound", form)


def reply_of(response: TestResponse) -> str | None:
    """The text of the TwiML <Message>, or None when the response sends nothing."""
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)  # noqa: S314 - our own response
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    assert len(root) == len(messages), "a reply holds nothing but a <Message>"
    if not messages:
        return None
    reply = messages[0].text or ""
    septets = gsm7_septets(reply)
    assert septets is not None and septets <= MAX_GSM7_SEPTETS, "a reply fits two segments"
    return reply
