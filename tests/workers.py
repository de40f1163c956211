"""Background workers for tests: real ``flask --app wsgi worker`` processes, and one in-process.

with worker_process(env) as worker:
    ...
    worker.kill()        # SIGKILL, as a crash would
    worker.start()       # and again
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from flask import Flask

from core import queue
from core.worker import run_worker
from devservers.processes import REPO, log_tail


class WorkerProcess:
    """One worker process, started with ``env`` from the repository's root."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = {**os.environ, **env}
        self._dir = tempfile.TemporaryDirectory(prefix="test-worker-")
        self.log_path = Path(self._dir.name) / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker: nothing it held is finished or given back."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        """SIGTERM, as a platform stops a worker; SIGKILL if it does not end in 10 s."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def log(self) -> str:
        return log_tail(self.log_path, 60)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


@contextlib.contextmanager
def worker_process(env: Mapping[str, str]) -> Iterator[WorkerProcess]:
    """A running worker process, stopped at the end."""
    worker = WorkerProcess(env)
    worker.start()
    try:
        yield worker
    finally:
        worker.close()


def work(app: Flask) -> None:
    """Work the queue in this process until it is empty (RQ's burst mode)."""
    with app.app_context():
        run_worker(app, queue.worker_connection(app.config["QUEUE_REDIS_URL"]), burst=True)


def sweep(app: Flask) -> int:
    """Run the outbox sweep once in this process; how many rows it enqueued again."""
    with app.app_context():
        return queue.sweep()
