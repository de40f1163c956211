"""Every setting the service reads is listed, with its meaning, in .env.example."""

from __future__ import annotations

import re

from dotenv import dotenv_values

from devservers.processes import REPO

# Read by the code, but not settings: a marker gunicorn.conf.py leaves for itself, and
# Flask's own switch for .env files.
NOT_SETTINGS = {"CODEWORD_OWN_METRICS_DIR", "FLASK_SKIP_DOTENV"}
READS = [
    re.compile(r"""(?:env|environ)(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']"""),
    re.compile(r"""rate_limit\(\s*env,\s*["']([A-Z][A-Z0-9_]+)["']"""),
]


def settings_read_by_the_service() -> set[str]:
    sources = [REPO / "gunicorn.conf.py"] + [
        path
        for path in REPO.glob("*/**/*.py")
        if path.relative_to(REPO).parts[0] not in {".venv", ".cache", "tests", "bench", "scripts"}
    ]
    names = {name for path in sources for read in READS for name in read.findall(path.read_text())}
    return names - NOT_SETTINGS


def settings_in_env_example() -> set[str]:
    text = (REPO / ".env.example").read_text()
    return set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", text, re.M))


def test_env_example_lists_every_setting_the_service_reads() -> None:
    read = settings_read_by_the_service()
    assert {"SECRET_KEY", "LOG_FORMAT", "HOST", "SMS_INBOUND_PER_NUMBER"} <= read
    assert read - settings_in_env_example() == set()


def test_env_example_lists_every_setting_of_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", table, re.M))
    documented |= set(re.findall(r"^\| `[A-Z_]+`, `([A-Z][A-Z0-9_]+)`", table, re.M))
    assert len(documented) > 20
    assert documented - settings_in_env_example() == set()


def test_a_copy_of_env_example_changes_nothing_until_a_line_is_uncommented() -> None:
    assert dotenv_values(REPO / ".env.example") == {}
