"""The service (or another WSGI app) under gunicorn, with the production settings."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from devservers.processes import HOST, REPO, free_port, run_process


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
    port = free_port()
    url = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}"]
    if config is not None:
        cmd += ["-c", str(config)]
    cmd.append(app)
    full_env = {**os.environ, **env, "HOST": HOST, "PORT": str(port)}

    def ready() -> bool:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200

    with run_process(cmd, f"gunicorn {app}", ready, timeout, full_env, Path(cwd)) as log:
        yield Gunicorn(url, log)
