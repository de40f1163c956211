"""The service (or another WSGI app) under gunicorn, with the production settings."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from devservers.processes import HOST, REPO, free_port, run_process, stop_group, wait_until


@dataclass(frozen=True)
class Gunicorn:
    """A running gunicorn: its URL, and the file its master and workers write to."""

    url: str
    log: Path


@contextlib.contextmanager
def gunicorn_server(
    env: Mapping[str, str],
    app: str = "wsgi:app",
    timeout: float = 20,
    cwd: str | Path = REPO,
    config: str | Path | None = REPO / "gunicorn.conf.py",
) -> Iterator[str]:
    """Run app under gunicorn with config (None: none) and extra env; yield its URL."""
    with gunicorn(env, app, timeout, cwd, config) as server:
        yield server.url


@contextlib.contextmanager
def gunicorn(
    env: Mapping[str, str],
    app: str = "wsgi:app",
    timeout: float = 20,
    cwd: str | Path = REPO,
    config: str | Path | None = REPO / "gunicorn.conf.py",
) -> Iterator[Gunicorn]:
    """Like gunicorn_server, but yield the log too (stdout and stderr of every process)."""
    url, cmd, full_env = gunicorn_command(env, app, config)

    def ready() -> bool:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200

    with run_process(cmd, f"gunicorn {app}", ready, timeout, full_env, Path(cwd)) as log:
        yield Gunicorn(url, log)


def gunicorn_command(
    env: Mapping[str, str],
    app: str = "wsgi:app",
    config: str | Path | None = REPO / "gunicorn.conf.py",
) -> tuple[str, list[str], dict[str, str]]:
    """The URL, command line and environment of a gunicorn on a free loopback port."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}"]
    if config is not None:
        cmd += ["-c", str(config)]
    cmd.append(app)
    return f"http://{HOST}:{port}", cmd, {**os.environ, **env, "HOST": HOST, "PORT": str(port)}


def gunicorn_output(
    env: Mapping[str, str],
    while_running: Callable[[str], None] = lambda url: None,
    timeout: float = 20,
    cwd: Path = REPO,
) -> str:
    """Start gunicorn with the repo's config, call ``while_running(url)``, stop it with
    SIGTERM to its master as a platform does, and return everything its processes printed.

    Started in ``cwd``; the app is loaded from the repo wherever that is.
    """
    url, cmd, full_env = gunicorn_command(env)
    cmd[-1:-1] = ["--chdir", str(REPO)]

    def ready() -> bool:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200

    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(ready, timeout, "gunicorn wsgi:app", proc)
            while_running(url)
            # The master alone, as a platform signals it; it stops its workers itself,
            # within graceful_timeout (10 s).
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        finally:
            stop_group(proc)
        output.seek(0)
        return output.read().decode("utf-8", "replace")
