"""Outcome events: what the main application hears, signed as Standard Webhooks.

An event is written to the outbox with the audit event it tells of (``event``), then
POSTed to EVENTS_URL by the worker (``deliver_event``), signed with the
``standardwebhooks`` library under EVENTS_SECRET. Every attempt carries the same
``webhook-id`` and body; only ``webhook-timestamp`` and the signature are new. A 2xx
answer delivers it; any other answer, or none within 10 s, is tried again on
EVENTS_RETRY_SCHEDULE (or after the receiver's ``Retry-After`` on 429 and 503); a 410
ends it at once. After the last attempt it stays, as ``failed``.

Data never carries the codeword, a challenge code or a token: each type's fields are
listed here, and nothing else goes in.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast

import requests
from flask import current_app
from standardwebhooks.webhooks import Webhook

from core import queue
from store import clock
from store.models import OutcomeEvent
from store.numbers import mask
from store.outbox import EventToDeliver

log = logging.getLogger(__name__)

# The receiver has this long to answer, connecting included.
TIMEOUT = 10.0
# Longest wait a receiver's Retry-After may ask for.
MAX_RETRY_AFTER = 86400.0
USER_AGENT = "practice-codeword-events/1"

DISCLOSED = "codeword.disclosed"
CALL_COMPLETED = "verification_call.completed"
TEXT_COMPLETED = "codeword_text.completed"


def enabled() -> bool:
    """Whether outcome events are sent at all (EVENTS_URL is set)."""
    return bool(current_app.config.get("EVENTS_URL"))


def event(event_type: str, subject: str, data: dict[str, Any], at: float) -> EventToDeliver:
    """An outcome event with a new ``webhook-id``, its body fixed now for every attempt."""
    body = json.dumps(
        {
            "type": event_type,
            "timestamp": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
            "data": data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return EventToDeliver(
        id="msg_" + secrets.token_hex(16), type=event_type, body=body, subject=subject
    )


def codeword_disclosed(
    *,
    practice_id: str,
    channel: str,
    to: str | None,
    actor: str,
    requested_by: str | None,
    reference: str | None,
    subject: str,
    at: float,
) -> EventToDeliver:
    """``codeword.disclosed``: voice, sms or app; ``to`` masked."""
    return event(
        DISCLOSED,
        subject,
        {
            "practice_id": practice_id,
            "channel": channel,
            "to": mask(to),
            "actor": actor,
            "requested_by": requested_by,
            "reference": reference,
        },
        at,
    )


def verification_call_completed(
    *, call_id: str, practice_id: str, status: str, requested_by: str, actor: str, at: float
) -> EventToDeliver:
    """``verification_call.completed``: the call's final status."""
    return event(
        CALL_COMPLETED,
        f"call:{call_id}",
        {
            "id": call_id,
            "practice_id": practice_id,
            "status": status,
            "requested_by": requested_by,
            "actor": actor,
        },
        at,
    )


def codeword_text_completed(
    *, text_id: str, practice_id: str, user_id: str | None, status: str, at: float
) -> EventToDeliver:
    """``codeword_text.completed``: delivered, undelivered or failed."""
    return event(
        TEXT_COMPLETED,
        f"text:{text_id}",
        {"id": text_id, "practice_id": practice_id, "user_id": user_id, "status": status},
        at,
    )


# Delivery (the worker) ---------------------------------------------------------------


def deliver_event(event_id: str) -> str:
    """One delivery attempt of an outcome event, if it is due and no one else holds it.

    Returns what came of it (for the job's record and tests): ``delivered``, ``retry``,
    ``failed`` or ``skipped``.
    """
    outbox = queue.outbox()
    started = clock.now()
    row = outbox.claim(OutcomeEvent, event_id, now=started, lease=queue.lease())
    if row is None:
        return "skipped"
    url = current_app.config.get("EVENTS_URL")
    secret = current_app.config.get("EVENTS_SECRET")
    if not url or not secret:
        outbox.settle(OutcomeEvent, row, status="failed", last_error="EVENTS_URL is not set")
        return "failed"
    answer, retry_after = _post(url, Webhook(secret), row)
    if answer is not None and 200 <= answer < 300:
        outbox.settle(
            OutcomeEvent, row, status="delivered", delivered_at=clock.now(), last_error=None
        )
        log.info("event %s (%s) delivered", row.id, row.type)
        return "delivered"
    error = f"HTTP {answer}" if answer is not None else (retry_after or "no answer")
    schedule: list[float] = current_app.config["EVENTS_RETRY_SCHEDULE"]
    failures = row.failures + 1
    if answer == 410 or failures > len(schedule):
        outbox.settle(OutcomeEvent, row, status="failed", failures=failures, last_error=str(error))
        log.warning(
            "event %s (%s) failed after %d attempt(s): %s%s",
            row.id,
            row.type,
            row.attempts,
            error,
            " (the receiver answered 410 Gone: no more attempts)" if answer == 410 else "",
        )
        return "failed"
    wait = schedule[failures - 1]
    if answer in (429, 503) and isinstance(retry_after, float):
        wait = retry_after
    outbox.settle(
        OutcomeEvent,
        row,
        failures=failures,
        due_at=clock.now() + wait,
        last_error=str(error),
    )
    log.info(
        "event %s (%s) not delivered (%s); next attempt in %.0f s", row.id, row.type, error, wait
    )
    return "retry"


def _post(url: str, signer: Webhook, row: OutcomeEvent) -> tuple[int | None, Any]:
    """POST the event once: the answer's status and its Retry-After (seconds), or (None,
    the error's type) when no answer came."""
    sent_at = datetime.now(UTC)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": row.id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signer.sign(row.id, sent_at, row.body),
    }
    try:
        response = _http().post(
            url,
            data=row.body.encode(),
            headers=headers,
            # Within the row's lease, so no other worker takes it while we wait.
            timeout=min(TIMEOUT, queue.lease() / 2),
            allow_redirects=False,
            # The answer's body is never read: its status and Retry-After say it all.
            stream=True,
        )
    except requests.RequestException as exc:
        return None, type(exc).__name__
    with response:
        return response.status_code, retry_after(response.headers.get("Retry-After"))


def _http() -> requests.Session:
    """The app's HTTP session for events: connections to the receiver are kept open
    between deliveries (a worker runs one job at a time)."""
    session = current_app.extensions.get("events_http")
    if session is None:
        session = current_app.extensions.setdefault("events_http", requests.Session())
    return cast(requests.Session, session)


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
