"""gunicorn with the repo's config, from start to stop: clean lines, nothing left behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from devservers.gunicorn_server import gunicorn_command, gunicorn_output
from devservers.processes import HOST, REPO, stop_group, wait_until
from tests.gunicorn_flows import production_env


def development_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """What scripts/run gives gunicorn, in a folder of the test's own."""
    return {
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "LOG_FORMAT": "",
    }


@pytest.mark.parametrize("app_env", ["development", "production"])
def test_gunicorns_own_lines_print_as_lines_not_logging_errors(
    app_env: str, tmp_path: Path, redis_url: str
) -> None:
    """Start, serve, stop: gunicorn's own lines (Listening, Booting worker, Handling
    signal) print as they should, and nothing prints a traceback."""
    if app_env == "production":
        env = production_env(
            redis_url,
            f"sqlite:///{tmp_path / 'd.sqlite3'}",
            twilio_url="",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        )
    else:
        env = development_env(tmp_path, redis_url)

    def serve(url: str) -> None:
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200

    output = gunicorn_output(env, serve)
    for expected in ("Listening at", "Booting worker", "Handling signal: term", "Shutting down"):
        assert expected in output, output[-3000:]
    assert "Logging error" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def test_development_logs_a_short_text_line_per_request(tmp_path: Path, redis_url: str) -> None:
    def serve(url: str) -> None:
        requests.get(f"{url}/healthz", timeout=5)
        requests.get(f"{url}/no-such-page?token=secret-query", timeout=5)

    output = gunicorn_output(development_env(tmp_path, redis_url), serve)
    assert re.search(r"^\d\d:\d\d:\d\d GET /healthz -> 200 in \d+ ms$", output, re.M), output
    assert re.search(r"^\d\d:\d\d:\d\d GET /no-such-page -> 404 in \d+ ms$", output, re.M), output
    assert "secret-query" not in output
    assert '{"ts"' not in output


def own_metrics_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("codeword-metrics-*"))


def test_the_metrics_folder_gunicorn_makes_is_removed_when_it_stops(
    tmp_path: Path, redis_url: str
) -> None:
    """With no PROMETHEUS_MULTIPROC_DIR set, gunicorn makes one in the temporary folder,
    and removes it when it stops."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        **development_env(tmp_path, redis_url),
        "PROMETHEUS_MULTIPROC_DIR": "",
        "TMPDIR": str(tmp),
    }
    seen: list[list[Path]] = []

    def serve(url: str) -> None:
        requests.get(f"{url}/healthz", timeout=5)
        seen.append(own_metrics_folders(tmp))

    output = gunicorn_output(env, serve)
    assert len(seen[0]) == 1, "gunicorn made a metrics folder while it ran"
    assert own_metrics_folders(tmp) == [], output


def test_a_gunicorn_that_cannot_bind_leaves_no_metrics_folder(
    tmp_path: Path, redis_url: str
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        **development_env(tmp_path, redis_url),
        "PROMETHEUS_MULTIPROC_DIR": "",
        "TMPDIR": str(tmp),
    }
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=REPO,
            env={**os.environ, **env, "HOST": HOST, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "Connection in use" in result.stderr
    assert own_metrics_folders(tmp) == []


def request_lines_as_logged(tmp_path: Path, env: dict[str, str], dotenv: str) -> str:
    """Start gunicorn in a folder holding ``dotenv`` as its .env; ``json`` or ``text``."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / ".env").write_text(dotenv)

    def serve(url: str) -> None:
        requests.get(f"{url}/healthz", timeout=5)

    output = gunicorn_output({**env, "FLASK_SKIP_DOTENV": ""}, serve, cwd=workdir)
    if '"msg": "request"' in output:
        return "json"
    assert re.search(r"GET /healthz -> 200 in \d+ ms", output), output
    return "text"


def test_gunicorn_reads_a_dotenv_file_in_development(tmp_path: Path, redis_url: str) -> None:
    env = development_env(tmp_path, redis_url)
    del env["LOG_FORMAT"]
    assert request_lines_as_logged(tmp_path, env, "LOG_FORMAT=json\n") == "json"


def test_the_environment_wins_over_the_dotenv_file(tmp_path: Path, redis_url: str) -> None:
    env = {**development_env(tmp_path, redis_url), "LOG_FORMAT": "text"}
    assert request_lines_as_logged(tmp_path, env, "LOG_FORMAT=json\n") == "text"


def test_production_reads_no_dotenv_file(tmp_path: Path, redis_url: str) -> None:
    env = production_env(
        redis_url,
        f"sqlite:///{tmp_path / 'd.sqlite3'}",
        twilio_url="",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    assert request_lines_as_logged(tmp_path, env, "LOG_FORMAT=text\n") == "json"


def ignores_sigint(pid: int) -> bool:
    """Whether the process ignores SIGINT, from /proc/PID/status."""
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.M).group(1), 16)  # type: ignore[union-attr]
    return bool(ignored & (1 << (signal.SIGINT - 1)))


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(proc.name))
    return found


def test_ctrl_c_stops_gunicorn_at_once_and_kills_no_worker(tmp_path: Path, redis_url: str) -> None:
    """Ctrl-C signals the master and its workers together (the terminal's process group).
    The workers leave it to the master, whose SIGQUIT stops them: a worker that took both
    used to hang until the master killed it ten seconds later."""
    env = {**development_env(tmp_path, redis_url), "WEB_CONCURRENCY": "2"}
    url, cmd, full_env = gunicorn_command(env, "wsgi:app", REPO / "gunicorn.conf.py")
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=full_env, stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            wait_until(
                lambda: requests.get(f"{url}/healthz", timeout=2).status_code == 200,
                20, "gunicorn", proc,
            )  # fmt: skip
            # Both workers booted, and ready (the hook runs once the app is loaded).
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                workers = children(proc.pid)
                if len(workers) == 2 and all(ignores_sigint(worker) for worker in workers):
                    break
                time.sleep(0.1)
            assert len(workers) == 2
            assert all(ignores_sigint(worker) for worker in workers)
            assert not ignores_sigint(proc.pid), "the master stops on Ctrl-C"
            os.killpg(proc.pid, signal.SIGINT)
            started = time.monotonic()
            proc.wait(30)
            took = time.monotonic() - started
        finally:
            stop_group(proc)
        output.seek(0)
        printed = output.read().decode("utf-8", "replace")
    assert "Shutting down: Master" in printed, printed
    assert "SIGKILL" not in printed, printed
    assert took < 5, printed
