"""Running a server for development, tests and the benchmark: free ports, process groups, logs.

Each server starts on a free loopback port, is waited for until it answers, and
stops cleanly with its process group. The servers themselves: redis_server.py,
prism_server.py, gunicorn_server.py, postgres_server.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self

import requests

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll check() until it returns true; raise if proc exits or timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError, requests.RequestException):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not answer within {timeout:.0f} s")


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 10) -> None:
    """Signal the process group of proc; SIGKILL it if still alive after grace s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        # The leader is gone; make sure no child of it survives.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def log_tail(path: Path, lines: int = 30) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def run_process(
    cmd: list[str],
    what: str,
    ready: Any,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
) -> Iterator[Path]:
    """Run cmd in a new process group, output to a log; yield the log once ready()."""
    with tempfile.TemporaryDirectory(prefix="devserver-") as tmp:
        log_path = Path(tmp) / "output.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            try:
                wait_until(ready, timeout, what, proc)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}; its output:\n{log_tail(log_path)}") from None
            yield log_path
        finally:
            stop_group(proc)


class ServerProcess:
    """A server on a fixed loopback port, in its own folder, that a test can stop and restart.

    Subclasses say how to launch it (``_command``), when it is ready (``_ready``) and
    which signal stops it.
    """

    name = "server"
    stop_signal = signal.SIGTERM
    start_timeout = 10.0

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix=f"devserver-{self.name}-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return Path(self._dir.name) / f"{self.name}.log"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float | None = None) -> None:
        """Start the server (again) on the same port and wait until it answers."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._ready, timeout or self.start_timeout, self.name, self._proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}; its log:\n{log_tail(self.log_path)}") from None

    def stop(self, kill: bool = False) -> None:
        """Stop the server; kill=True sends SIGKILL, as a crash would."""
        if self._proc is not None:
            stop_group(self._proc, signal.SIGKILL if kill else self.stop_signal)
            self._proc = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
