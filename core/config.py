"""Configuration from the environment, with safe development defaults.

``APP_ENV=production`` selects production, where the service refuses to start
without the secrets it needs. Anywhere else, missing secrets are generated once
and kept in the instance folder so that restarts keep reading old codewords.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from limits import parse_many

from core.worker_settings import SettingError, worker_settings
from store.redis_client import CLUSTER, SENTINEL, RedisLocation

REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "CODEWORD_KEYS",
    "TWILIO_AUTH_TOKEN",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    # Without these two, production would silently run on the simulated carrier.
    "TWILIO_ACCOUNT_SID",
    "TWILIO_FROM_NUMBER",
)


class ConfigError(RuntimeError):
    """The environment cannot run the service."""


def parse_tokens(raw: str | None) -> dict[str, str]:
    """Parse ``name=token,name=token`` into ``{token: name}``."""
    tokens: dict[str, str] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, token = item.partition("=")
        if not sep or not name.strip() or not token.strip():
            raise ConfigError("token lists take the form name=token,name=token")
        tokens[token.strip()] = name.strip()
    return tokens


def rate_limit(env: dict[str, str], name: str, default: str) -> str:
    """A rate limit setting such as ``3/hour;10/day``, checked at start, not at first use."""
    value = env.get(name, default)
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} must read like 3/hour or 3/hour;10/day, not {value!r}") from None
    return value


def redis_urls(env: dict[str, str]) -> tuple[str, str]:
    """``REDIS_URL`` and ``QUEUE_REDIS_URL``, checked: the queue cannot live on a cluster."""
    url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        state = RedisLocation.parse(url)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL: {exc}") from None
    queue_url = env.get("QUEUE_REDIS_URL")
    if queue_url is None:
        if state.scheme == CLUSTER:
            raise ConfigError(
                "QUEUE_REDIS_URL is required when REDIS_URL is a Redis Cluster: the background"
                " queue cannot run on a cluster, so name a single Redis (redis://, rediss://)"
                " or a Sentinel (redis+sentinel://) for it"
            )
        queue_url = url
    try:
        queue = RedisLocation.parse(queue_url)
    except ValueError as exc:
        raise ConfigError(f"QUEUE_REDIS_URL: {exc}") from None
    if queue.scheme == CLUSTER:
        raise ConfigError(
            "QUEUE_REDIS_URL must be a single Redis (redis://, rediss://) or a Sentinel"
            " (redis+sentinel://): the background queue cannot run on a Redis Cluster"
        )
    return url, queue_url


def replica_acks(env: dict[str, str], redis_url: str) -> int:
    """How many replicas must hold a call's one-time writes; 1 through Sentinel, else 0."""
    default = "1" if RedisLocation.parse(redis_url).scheme == SENTINEL else "0"
    value = env.get("REDIS_REPLICA_ACKS", default)
    if not value.isdigit():
        raise ConfigError(f"REDIS_REPLICA_ACKS must be a whole number, not {value!r}")
    return int(value)


LOG_FORMATS = ("json", "text")


def log_format(env: dict[str, str], production: bool) -> str:
    """``LOG_FORMAT``: JSON lines for machines in production, short text lines elsewhere."""
    value = env.get("LOG_FORMAT", "json" if production else "text").lower()
    if value not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be json or text, not {value!r}")
    return value


def _dev_secrets(instance_path: Path) -> dict[str, str]:
    """Secrets generated once for development and kept in the instance folder."""
    path = instance_path / "dev-secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    generated = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "CODEWORD_KEYS": Fernet.generate_key().decode(),
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
    }
    instance_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(generated, f)
    return generated


def load_config(environ: dict[str, str], instance_path: Path) -> dict[str, Any]:
    """Build the Flask config from environment variables."""
    env = {k: v for k, v in environ.items() if v != ""}
    production = env.get("APP_ENV", "development") == "production"
    if production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if name not in env]
        if missing:
            raise ConfigError("missing required settings in production: " + ", ".join(missing))
    else:
        for name, value in _dev_secrets(instance_path).items():
            env.setdefault(name, value)

    port = env.get("PORT", "8000")
    redis_url, queue_redis_url = redis_urls(env)
    try:
        background = worker_settings(env, production)
    except SettingError as exc:
        raise ConfigError(str(exc)) from None
    return {
        **background,
        "APP_ENV": "production" if production else "development",
        "SECRET_KEY": env["SECRET_KEY"],
        "CODEWORD_KEYS": [k.strip() for k in env["CODEWORD_KEYS"].split(",") if k.strip()],
        "REDIS_URL": redis_url,
        "QUEUE_REDIS_URL": queue_redis_url,
        "REDIS_REPLICA_ACKS": replica_acks(env, redis_url),
        "DATABASE_URL": env.get("DATABASE_URL", f"sqlite:///{instance_path / 'directory.sqlite3'}"),
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}").rstrip("/"),
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID"),
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN"),
        "TWILIO_FROM_NUMBER": env.get("TWILIO_FROM_NUMBER", "+15005550006"),
        "TWILIO_API_BASE_URL": env.get("TWILIO_API_BASE_URL"),
        "ADMIN_TOKENS": parse_tokens(env.get("ADMIN_TOKENS")),
        "SUPPORT_TOKENS": parse_tokens(env.get("SUPPORT_TOKENS")),
        "METRICS_TOKEN": env.get("METRICS_TOKEN"),
        "ALLOWED_COUNTRIES": [
            c.strip().upper() for c in env.get("ALLOWED_COUNTRIES", "US,CA").split(",") if c.strip()
        ],
        "BRAND_NAME": env.get("BRAND_NAME", "Practice by Numbers"),
        "SUPPORT_CONTACT": env.get("SUPPORT_CONTACT", "support at practicebynumbers.com"),
        "MAX_CONTENT_LENGTH": int(env.get("MAX_CONTENT_LENGTH", 64 * 1024)),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        "LOG_FORMAT": log_format(env, production),
        "SMS_CODEWORD_TEXTS_PER_NUMBER": rate_limit(env, "SMS_CODEWORD_TEXTS_PER_NUMBER", "3/hour"),
        "SMS_CODEWORD_TEXTS_PER_PRACTICE": rate_limit(
            env, "SMS_CODEWORD_TEXTS_PER_PRACTICE", "5/day"
        ),
        "SMS_INBOUND_PER_NUMBER": rate_limit(env, "SMS_INBOUND_PER_NUMBER", "20/hour"),
        "VERIFICATION_CALLS_PER_PRACTICE": rate_limit(
            env, "VERIFICATION_CALLS_PER_PRACTICE", "3/hour;10/day"
        ),
        "VERIFICATION_CALLS_PER_SUPPORT_TOKEN": rate_limit(
            env, "VERIFICATION_CALLS_PER_SUPPORT_TOKEN", "30/hour"
        ),
        "OFFICE_VERIFICATIONS_PER_PRACTICE": rate_limit(
            env, "OFFICE_VERIFICATIONS_PER_PRACTICE", "3/hour"
        ),
        "CELL_VERIFICATION_TEXTS_PER_USER": rate_limit(
            env, "CELL_VERIFICATION_TEXTS_PER_USER", "3/hour"
        ),
        "CONSOLE_SIGN_IN_FAILURES_PER_CLIENT": rate_limit(
            env, "CONSOLE_SIGN_IN_FAILURES_PER_CLIENT", "5/minute;20/hour"
        ),
    }
