"""The background worker process (``flask --app wsgi worker``, the Procfile's ``worker:``).

An RQ worker on QUEUE_REDIS_URL that runs each job in this process, in the app's
context, beside RQ's CronScheduler enqueueing the outbox sweep every
WORKER_SWEEP_SECONDS. Any number of workers on any number of hosts share the queue;
the SQL claim on each row keeps two of them from doing the same work, and each worker
runs its own sweep, so the sweep goes on while any worker lives.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any

import redis
from flask import Flask
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.job import Job as QueueJob
from rq.queue import Queue

from core.queue import QUEUE_NAME, sweep

log = logging.getLogger(__name__)

# After the queue's Redis failed, wait this long before working again.
REDIS_PAUSE = 1.0


class AppWorker(SimpleWorker):
    """Runs each job in this process (no fork per job), inside the app's context."""

    def __init__(self, app: Flask, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app
        self.asked_to_stop = False

    def request_stop(self, signum: int, frame: Any) -> None:
        # RQ's own flag is set only when the signal comes mid-job.
        self.asked_to_stop = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def execute_job(self, job: QueueJob, queue: Queue) -> None:
        with self.app.app_context():
            super().execute_job(job, queue)

    def handle_exception(
        self,
        job: QueueJob,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        # RQ logs the whole traceback; ours names the type only: a message can quote a
        # number, and the outbox row that remains pending says what is left to do.
        log.error(
            "background job %s (%s) failed: %s",
            job.id,
            job.func_name,
            exc_type.__name__ if exc_type else "unknown",
        )


def run_sweeps(connection: redis.Redis, interval: int, stop: threading.Event) -> None:
    """Enqueue the outbox sweep every ``interval`` seconds until ``stop`` is set.

    RQ's CronScheduler, driven here rather than by its ``start()``, which installs
    signal handlers and so runs only in a main thread: the worker has that one.
    """
    cron = CronScheduler(connection=connection, name=f"{socket.gethostname()}:{os.getpid()}")
    # The sweep is routine: a line every few seconds would bury what the console is for.
    cron.log.setLevel(logging.WARNING)
    cron.register(sweep, QUEUE_NAME, interval=interval, result_ttl=0, job_timeout=60)
    while not stop.is_set():
        try:
            if cron.enqueue_jobs():
                cron.save()
            cron.heartbeat()
            pause = cron.calculate_sleep_interval()
        except redis.RedisError as exc:
            log.warning("sweep not enqueued: %s", type(exc).__name__)
            pause = REDIS_PAUSE
        stop.wait(max(pause, 0.05))


def run_worker(app: Flask, connection: redis.Redis, *, burst: bool = False) -> None:
    """Work the queue until asked to stop (SIGTERM, SIGINT), through Redis outages."""
    stop = threading.Event()
    sweeper = None
    if not burst:
        sweeper = threading.Thread(
            target=run_sweeps,
            args=(connection, app.config["WORKER_SWEEP_SECONDS"], stop),
            name="sweep",
            daemon=True,
        )
        sweeper.start()
    name = f"codeword-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        while True:
            worker = AppWorker(app, [QUEUE_NAME], connection=connection, name=name)
            worker.work(burst=burst, logging_level="WARNING")
            if burst or worker.asked_to_stop:
                return
            # RQ leaves its loop when Redis times out; the queue is worked again once
            # Redis answers.
            log.warning("worker: queue Redis unavailable; trying again")
            time.sleep(REDIS_PAUSE)
    finally:
        stop.set()
        if sweeper is not None:
            sweeper.join(timeout=5)
