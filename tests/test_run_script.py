"""scripts/run cannot trip over itself: a port already taken is one clear line."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import requests

from devservers.gunicorn_server import gunicorn_output
from devservers.processes import HOST, REPO, free_port

RUN = REPO / "scripts" / "run"
PORT_HOLDER = REPO / "scripts" / "port_holder.py"


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUN), *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_prints_usage_and_starts_nothing() -> None:
    result = run_script("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: scripts/run [--help]")
    assert "PORT" in result.stdout and "demo reset" in result.stdout
    assert result.stderr == ""
    assert "==>" not in result.stdout, "nothing was installed or started"


def test_an_unknown_argument_is_refused_in_one_line() -> None:
    result = run_script("--port", "9000")
    assert result.returncode == 2
    assert result.stderr == "run: unknown argument: --port (scripts/run --help)\n"


def test_a_port_in_use_fails_in_one_line_naming_what_holds_it() -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_script(PORT=str(port))
    assert result.returncode == 1
    assert result.stdout == "", "nothing was installed or started"
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        rf"run: port {port} is in use by pid {os.getpid()} \(.*python.*\); "
        "stop it or set PORT to a free port",
        line,
    ), line


def test_the_holder_named_is_gunicorns_master_not_a_worker(tmp_path: Path, redis_url: str) -> None:
    """Master and workers share the listening socket; the master is the one to stop."""
    named: list[tuple[str, int | None]] = []

    def ask(url: str) -> None:
        requests.get(f"{url}/healthz", timeout=5)
        holder = subprocess.run(
            ["python3", str(PORT_HOLDER), url.rsplit(":", 1)[1]],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert holder.returncode == 1
        match = re.fullmatch(r"port \d+ is in use by pid (\d+) \((.*)\)\n", holder.stdout)
        assert match, holder.stdout
        stat = Path(f"/proc/{match.group(1)}/stat").read_text()
        named.append((match.group(2), int(stat.rsplit(")", 1)[1].split()[1])))

    env = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "WEB_CONCURRENCY": "2",
    }
    gunicorn_output(env, ask)
    [(command, parent)] = named
    assert "gunicorn" in command
    assert parent == os.getpid(), "the master, which this test started; not a worker"


def test_a_free_port_is_free() -> None:
    port = free_port()
    result = subprocess.run(
        ["python3", str(PORT_HOLDER), str(port)], capture_output=True, text=True, timeout=30
    )
    assert (result.returncode, result.stdout) == (0, "")
