"""Work off the request path: a small thread pool in each process.

A webhook that must reach Twilio's REST API hands that request to this pool, so
that a Twilio answering late cannot hold the webhook past its one-second budget:
``run`` for work nobody waits for (redacting a delivered text), ``call`` for work
the webhook waits for a little while (sending the codeword text).

The pool belongs to the process, not to an app: jobs of any app run on it, each
in its own app's context. It is created on first use in each process: a gunicorn
worker forked from the master, whose threads it does not inherit, makes its own. Every job runs in
the app context of the app that handed it over, and what it raises is logged by
type only (a message could quote a secret).

Work a job leaves for after the response (``after_response``, the disclosure
notices) goes with its result to a webhook still waiting for it, and runs once
that webhook's response is sent, as it would had the webhook done the job itself.
When nobody waits, or the webhook gave up waiting, the pool runs it when the job ends.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar, cast

from flask import Flask, Response, after_this_request, current_app, has_request_context

log = logging.getLogger(__name__)

# Threads per process: a handful of Twilio requests in flight at once is plenty for
# a few texts a minute; more work waits its turn.
MAX_WORKERS = 4

T = TypeVar("T")
Work = Callable[[], object]


class _Pool:
    """The executor of one process, and how many jobs it holds (queued or running)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.executor = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="background")
        self.jobs = 0
        self.idle = threading.Condition()


_pool: _Pool | None = None
_pool_lock = threading.Lock()
# The job the current pool thread is running, for ``after_response``.
_running = threading.local()


def _current_pool() -> _Pool:
    """This process's pool, created on first use (again after a fork)."""
    global _pool
    pool = _pool
    if pool is None or pool.pid != os.getpid():
        with _pool_lock:
            if _pool is None or _pool.pid != os.getpid():
                _pool = _Pool()
            pool = _pool
    return pool


class _Job(Generic[T]):
    """One job: its result once known, and the work it left for after the response."""

    def __init__(self, work: Callable[[], T], waited_for: bool) -> None:
        self.work = work
        self.lock = threading.Lock()
        self.finished = threading.Event()
        # Whether a webhook still waits for the result (and so takes the work left over).
        self.waited_for = waited_for
        self.value: T | None = None
        self.error: Exception | None = None
        self.later: list[Work] = []

    def run(self, app: Flask) -> None:
        _running.job = self
        try:
            with app.app_context():
                try:
                    self.value = self.work()
                except Exception as exc:
                    log.error("background work failed: %s", type(exc).__name__)
                    self.error = exc
                with self.lock:
                    self.finished.set()
                    later = [] if self.waited_for else self.later
                _running.job = None
                for work in later:
                    _run_guarded(work)
        finally:
            _running.job = None

    def result(self, timeout: float) -> T:
        """The result within ``timeout`` seconds, with the work left for after the response;
        TimeoutError past it, and the pool does that work once the job ends."""
        self.finished.wait(timeout)
        with self.lock:
            if not self.finished.is_set():
                self.waited_for = False
                raise TimeoutError
        for work in self.later:
            after_response(work)
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


def _submit(job: _Job[Any]) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    pool = _current_pool()

    def run_job() -> None:
        try:
            job.run(app)
        finally:
            _count(pool, -1)

    _count(pool, +1)
    try:
        pool.executor.submit(run_job)
    except RuntimeError:  # the interpreter is shutting down
        _count(pool, -1)
        raise


def _count(pool: _Pool, change: int) -> None:
    with pool.idle:
        pool.jobs += change
        pool.idle.notify_all()


def run(work: Work) -> None:
    """Do ``work`` on the pool; nobody waits for it."""
    _submit(_Job(work, waited_for=False))


def call(work: Callable[[], T], *, timeout: float) -> T:
    """Do ``work`` on the pool and wait at most ``timeout`` seconds for its result.

    What it raises within that time is raised here. Past it, TimeoutError: the
    work carries on in the pool, and whatever it returns or raises is left to it.
    """
    job = _Job(work, waited_for=True)
    _submit(job)
    return job.result(timeout)


def after_response(work: Work) -> None:
    """Do ``work`` once the response is sent: after this request's response, after the
    response of the webhook waiting for this pool job, or at once outside both.

    ``work`` brings its own app context and handles what it raises.
    """
    if has_request_context():

        @after_this_request
        def defer(response: Response) -> Response:
            response.call_on_close(work)
            return response

        return
    job: _Job[Any] | None = getattr(_running, "job", None)
    if job is not None:
        job.later.append(work)
        return
    work()


def wait_idle(timeout: float) -> bool:
    """Wait until this process's pool holds no job; whether it does not (tests)."""
    pool = _current_pool()
    with pool.idle:
        return pool.idle.wait_for(lambda: pool.jobs == 0, timeout)


def _run_guarded(work: Work) -> None:
    try:
        work()
    except Exception as exc:
        log.error("background work failed: %s", type(exc).__name__)
