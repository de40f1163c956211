"""Settings of the background worker: outcome events, redaction at Twilio, its sweep and lease.

Checked at start, so a wrong value stops the service with a message naming it instead
of failing the first event or text.
"""

from __future__ import annotations

import binascii
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook


class SettingError(RuntimeError):
    """A background setting cannot run the service (a ConfigError to the caller)."""


# Close to Standard Webhooks' own schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,50400,72000,86400"
DEFAULT_REDACT_AFTER = 900
# How often each worker looks for rows past due (a lost job, a retry that has come).
DEFAULT_SWEEP_SECONDS = 5
# How long a worker holds a row it took: past it, a worker that died holding the row
# lets another take it. Longer than any one attempt (the events receiver gets 10 s).
DEFAULT_LEASE_SECONDS = 30


def events_url(env: dict[str, str], production: bool) -> str | None:
    """Where outcome events go: an http(s) URL, https in production; None for no events."""
    url = env.get("EVENTS_URL")
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError("EVENTS_URL must be an http:// or https:// URL")
    if production and parts.scheme != "https":
        raise SettingError("EVENTS_URL must be https in production")
    return url


def events_secret(env: dict[str, str], url: str | None) -> str | None:
    """The Standard Webhooks secret (``whsec_`` + base64), required with EVENTS_URL."""
    secret = env.get("EVENTS_SECRET")
    if url is None:
        return None
    if not secret:
        raise SettingError("EVENTS_SECRET is required with EVENTS_URL")
    try:
        Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError):
        raise SettingError("EVENTS_SECRET must be whsec_ followed by base64") from None
    return secret


def seconds_list(env: dict[str, str], name: str, default: str) -> list[float]:
    """Comma-separated non-negative seconds, e.g. ``5,300,1800``."""
    raw = env.get(name, default)
    try:
        values = [float(item) for item in raw.split(",") if item.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 <= v <= 7 * 86400 for v in values):
        raise SettingError(f"{name} must read like 5,300,1800 (seconds, at most a week each)")
    return values


def positive_seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        value = 0
    if not value > 0:
        raise SettingError(f"{name} must be a positive number of seconds")
    return value


def worker_settings(env: dict[str, str], production: bool) -> dict[str, Any]:
    """The worker's part of the Flask config (its queue's QUEUE_REDIS_URL is read with
    REDIS_URL, core/config.py)."""
    url = events_url(env, production)
    return {
        "EVENTS_URL": url,
        "EVENTS_SECRET": events_secret(env, url),
        "EVENTS_RETRY_SCHEDULE": seconds_list(env, "EVENTS_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE),
        "REDACT_AFTER_SECONDS": positive_seconds(env, "REDACT_AFTER_SECONDS", DEFAULT_REDACT_AFTER),
        "WORKER_LEASE_SECONDS": positive_seconds(
            env, "WORKER_LEASE_SECONDS", DEFAULT_LEASE_SECONDS
        ),
        "WORKER_SWEEP_SECONDS": int(
            positive_seconds(env, "WORKER_SWEEP_SECONDS", DEFAULT_SWEEP_SECONDS)
        )
        or 1,
    }
