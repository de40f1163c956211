"""Twilio's delivery reports for codeword texts: record them, then redact the body.

Once Twilio reports a codeword text delivered, undelivered or failed, the webhook
records the report with its audit event (and the ``codeword_text.completed``
outcome event) and makes the text's redaction due now; the worker blanks the body
at Twilio (``Body=""`` on the message), so the codeword does not stay in Twilio's
message log, and tries again until Twilio accepts. The redaction was written when
the text was sent, due REDACT_AFTER_SECONDS later: a report that never comes, or
comes while the database is down, delays it but cannot skip it.
"""

from __future__ import annotations

import logging
import re

from core import events, queue
from core.errors import ServiceError
from core.extensions import carrier, directory
from sms.codeword_texts import find_text
from store import clock, outbox
from store.identifiers import is_identifier
from store.models import Redaction

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-f]{32}")
TEXT_ID = re.compile(r"CT[0-9a-f]{32}")
# The actor recorded for what Twilio reports.
TWILIO = "twilio"


def record_delivery(
    practice_id: str, message_sid: str, status: str, to: str | None, text_id: str | None = None
) -> str:
    """Act on one status report: at a final status, audit it and have the text redacted now.

    Returns what came of it, for the request log: the status (``delivered``), or
    ``ignored`` before a final status.
    """
    if status not in FINAL_STATUSES or not MESSAGE_SID.fullmatch(message_sid):
        return "ignored"
    if not is_identifier(practice_id):
        _redact_now(message_sid)
        return status
    text = find_text(
        text_id if text_id and TEXT_ID.fullmatch(text_id) else None, message_sid, status
    )
    now = clock.now()
    intents: list[outbox.Intent] = [
        # Written here too for a text whose send went unconfirmed: only now is it known.
        outbox.RedactionDue(message_sid, practice_id, to, due_at=now)
    ]
    if text is not None and events.enabled():
        intents.append(
            events.codeword_text_completed(
                text_id=text.id,
                practice_id=text.practice_id,
                user_id=text.user_id,
                status=status,
                at=now,
            )
        )
    jobs = directory().record_event(
        practice_id,
        channel="sms",
        outcome=status,
        actor=TWILIO,
        to_number=to,
        reference=message_sid,
        intents=intents,
        now=now,
    )
    queue.enqueue(jobs)
    _redact_now(message_sid)
    return status


def _redact_now(message_sid: str) -> None:
    job = queue.outbox().due_now(message_sid, now=clock.now())
    if job is not None:
        queue.enqueue([job])


# The worker's side: one redaction row -------------------------------------------

# Seconds between attempts while Twilio refuses, doubling up to an hour: a body stays
# at Twilio until it is blanked, so there is no last attempt.
FIRST_RETRY = 30.0
MAX_RETRY = 3600.0


def redact_text(redaction_id: int) -> str:
    """Blank one codeword text's body at Twilio, if due and held by no one else."""
    outbox = queue.outbox()
    row = outbox.claim(Redaction, redaction_id, now=clock.now(), lease=queue.lease())
    if row is None:
        return "skipped"
    extra = {"message_sid": row.message_sid}
    try:
        carrier().redact_message(row.message_sid)
    except ServiceError as exc:
        wait = min(FIRST_RETRY * 2 ** (row.attempts - 1), MAX_RETRY)
        outbox.settle(Redaction, row, due_at=clock.now() + wait, last_error=exc.code)
        log.error(
            "codeword text %s to %s not redacted: %s; next attempt in %.0f s",
            row.message_sid,
            row.to_masked,
            exc.code,
            wait,
            extra=extra,
        )
        return "retry"
    outbox.settle(Redaction, row, status="redacted", last_error=None)
    log.info("codeword text %s to %s redacted", row.message_sid, row.to_masked, extra=extra)
    return "redacted"
