"""Configuration: safe development defaults, fail-fast production."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, load_config, parse_tokens

PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "s",
    "CODEWORD_KEYS": "k",
    "TWILIO_AUTH_TOKEN": "t",
    "TWILIO_ACCOUNT_SID": "AC1",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "PUBLIC_BASE_URL": "https://codeword.example.com",
}


@pytest.mark.parametrize(
    "missing",
    ["SECRET_KEY", "CODEWORD_KEYS", "TWILIO_AUTH_TOKEN", "REDIS_URL", "PUBLIC_BASE_URL"],
)
def test_production_refuses_to_start_without_a_required_setting(
    tmp_path: Path, missing: str
) -> None:
    """Production names the missing setting instead of starting."""
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        load_config(env, tmp_path)


def test_production_treats_an_empty_setting_as_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({**PRODUCTION, "SECRET_KEY": ""}, tmp_path)


def test_production_with_everything_set_starts(tmp_path: Path) -> None:
    config = load_config(PRODUCTION, tmp_path)
    assert config["APP_ENV"] == "production"
    assert not (tmp_path / "dev-secrets.json").exists()


def test_development_generates_secrets_once_and_keeps_them(tmp_path: Path) -> None:
    """Restarting in development reads the same keys, so old codewords still decrypt."""
    first = load_config({}, tmp_path)
    second = load_config({}, tmp_path)
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["CODEWORD_KEYS"] == second["CODEWORD_KEYS"]
    assert first["TWILIO_AUTH_TOKEN"] == second["TWILIO_AUTH_TOKEN"]
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0
    assert first["DATABASE_URL"].startswith("sqlite:///")


def test_codeword_keys_are_a_comma_separated_list(tmp_path: Path) -> None:
    config = load_config({"CODEWORD_KEYS": "new, old"}, tmp_path)
    assert config["CODEWORD_KEYS"] == ["new", "old"]


def test_token_lists_map_token_to_name() -> None:
    assert parse_tokens("mainapp=abc, desk=def") == {"abc": "mainapp", "def": "desk"}
    assert parse_tokens("") == {}
    with pytest.raises(ConfigError):
        parse_tokens("just-a-token")


CLUSTER_URL = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
SENTINEL_URL = "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/codeword"


def test_a_cluster_redis_url_without_a_queue_url_refuses_to_start_and_says_why(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"QUEUE_REDIS_URL is required .* Redis Cluster"):
        load_config({**PRODUCTION, "REDIS_URL": CLUSTER_URL}, tmp_path)


@pytest.mark.parametrize("queue_url", ["redis://10.0.0.9:6379/0", SENTINEL_URL])
def test_a_cluster_starts_beside_a_single_or_sentinel_queue(tmp_path: Path, queue_url: str) -> None:
    config = load_config(
        {**PRODUCTION, "REDIS_URL": CLUSTER_URL, "QUEUE_REDIS_URL": queue_url}, tmp_path
    )
    assert config["REDIS_URL"] == CLUSTER_URL
    assert config["QUEUE_REDIS_URL"] == queue_url


def test_the_queue_cannot_be_a_cluster(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"QUEUE_REDIS_URL must be .* cannot run on a Redis Cluster"
    ):
        load_config({**PRODUCTION, "QUEUE_REDIS_URL": CLUSTER_URL}, tmp_path)


@pytest.mark.parametrize("redis_url", ["redis://10.0.0.1:6379/0", SENTINEL_URL])
def test_the_queue_defaults_to_redis_url(tmp_path: Path, redis_url: str) -> None:
    config = load_config({**PRODUCTION, "REDIS_URL": redis_url}, tmp_path)
    assert config["QUEUE_REDIS_URL"] == redis_url


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:6379",
        "redis+sentinel://10.0.0.1:26379",
        "redis+cluster://",
        "redis+cluster://10.0.0.1",
    ],
)
def test_a_redis_url_that_names_no_usable_redis_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_config({**PRODUCTION, "REDIS_URL": url}, tmp_path)


@pytest.mark.parametrize(
    ("redis_url", "acks"),
    [("redis://10.0.0.1:6379/0", 0), (CLUSTER_URL, 0), (SENTINEL_URL, 1)],
)
def test_one_time_writes_wait_for_a_replica_through_sentinel_by_default(
    tmp_path: Path, redis_url: str, acks: int
) -> None:
    env = {**PRODUCTION, "REDIS_URL": redis_url, "QUEUE_REDIS_URL": "redis://10.0.0.9:6379/0"}
    assert load_config(env, tmp_path)["REDIS_REPLICA_ACKS"] == acks
    assert load_config({**env, "REDIS_REPLICA_ACKS": "2"}, tmp_path)["REDIS_REPLICA_ACKS"] == 2
    with pytest.raises(ConfigError, match="REDIS_REPLICA_ACKS"):
        load_config({**env, "REDIS_REPLICA_ACKS": "some"}, tmp_path)
