"""Twilio's delivery reports for codeword texts: record them, then redact the body.

Once Twilio reports a codeword text delivered, undelivered or failed, the body
is redacted at Twilio (``Body=""`` on the message), so the codeword does not
stay in Twilio's message log. The redaction runs on the background pool, off
the webhook's path, so a Twilio answering late cannot hold the webhook; what
came of it is logged in a line of its own.
"""

from __future__ import annotations

import logging
import re

from core import background
from core.errors import ServiceError
from core.extensions import carrier, directory
from store.identifiers import is_identifier
from store.numbers import mask

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-f]{32}")
# The actor recorded for what Twilio reports.
TWILIO = "twilio"


def record_delivery(practice_id: str, message_sid: str, status: str, to: str | None) -> str:
    """Act on one status report: at a final status, have the text redacted and audit it.

    Returns what came of it, for the request log: the status (``delivered``), or
    ``ignored`` before a final status.
    """
    if status not in FINAL_STATUSES or not MESSAGE_SID.fullmatch(message_sid):
        return "ignored"
    # Handed over first: a database that fails the audit must not keep the body at Twilio.
    background.run(lambda: redact(message_sid, to))
    if is_identifier(practice_id):
        directory().record_event(
            practice_id,
            channel="sms",
            outcome=status,
            actor=TWILIO,
            to_number=to,
            reference=message_sid,
        )
    return status


def redact(message_sid: str, to: str | None) -> None:
    """Blank the text's body at Twilio, and log whether it was."""
    try:
        carrier().redact_message(message_sid)
    except ServiceError as exc:
        log.error(
            "codeword text %s to %s not redacted: %s",
            message_sid,
            mask(to),
            exc.code,
            extra={"message_sid": message_sid},
        )
        return
    log.info(
        "codeword text %s to %s redacted", message_sid, mask(to), extra={"message_sid": message_sid}
    )
