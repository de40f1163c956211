"""The background queue: RQ on QUEUE_REDIS_URL, fed from the SQL outbox.

A request that leaves work behind writes outbox rows with its audit event, commits,
then ``enqueue``s one job per row (the row's kind and id). The queue only says "look
at this row soon": what must happen is in SQL. A job that never reaches the queue
(Redis down or flushed, the web process killed between commit and enqueue) is found by
``sweep``, which every worker runs every WORKER_SWEEP_SECONDS: it enqueues again each
row that is due and unclaimed and whose job no longer waits in the queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import redis
from flask import current_app
from rq import Queue
from rq.job import Job as QueueJob
from rq.job import JobStatus

from store import clock
from store.outbox import Job
from store.outbox_rows import Outbox
from store.redis_client import connect as store_connect

log = logging.getLogger(__name__)

QUEUE_NAME = "codeword"
# A job reaches Twilio (7 s at most) or the events receiver (10 s); the rest is margin.
JOB_TIMEOUT = 60
# Failed jobs (an exception: the database was down, say) stay a week for operators.
FAILURE_TTL = 7 * 24 * 3600
# A job still waiting in the queue after this long is presumed lost (a worker killed
# between taking it and starting it) and enqueued again.
STALE_AFTER = 300
# Enqueueing fails fast: the row is safe in SQL and the sweep enqueues it later.
SOCKET_TIMEOUT = 0.5
# Longer than RQ's blocking wait for a job (its worker TTL less 15 s: 405 s).
WORKER_SOCKET_TIMEOUT = 420.0

JobFunction = Callable[[Any], object]
WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def lease() -> float:
    """Seconds a worker holds a row it took (WORKER_LEASE_SECONDS)."""
    return float(current_app.config["WORKER_LEASE_SECONDS"])


def connect(url: str) -> redis.Redis:
    """The queue's Redis (one server or Sentinel's master) for enqueueing, replying bytes
    as RQ needs; it fails fast."""
    return store_connect(url, socket_timeout=SOCKET_TIMEOUT, decode_responses=False)


def worker_connection(url: str) -> redis.Redis:
    """The worker's own connection to the queue: its blocking read for the next job
    (RQ's, up to 405 s) must not time out, so that alone waits long."""
    return store_connect(url, socket_timeout=WORKER_SOCKET_TIMEOUT, decode_responses=False)


def make_queue(connection: redis.Redis, *, is_async: bool = True) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, default_timeout=JOB_TIMEOUT, is_async=is_async)


def queue() -> Queue:
    return cast(Queue, current_app.extensions["queue"])


def outbox() -> Outbox:
    return cast(Outbox, current_app.extensions["outbox"])


def job_functions() -> dict[str, JobFunction]:
    """The function that works each kind of outbox row (filled in by the app factory)."""
    return cast(dict[str, JobFunction], current_app.extensions["outbox_jobs"])


def enqueue(jobs: Sequence[Job]) -> None:
    """Enqueue jobs for rows already committed, in one round trip; a failure is only logged."""
    if not jobs:
        return
    functions = job_functions()
    q = queue()
    data = [
        Queue.prepare_data(
            functions[job.kind],
            args=(job.row_id,),
            job_id=job.job_id,
            result_ttl=0,
            failure_ttl=FAILURE_TTL,
            timeout=JOB_TIMEOUT,
        )
        for job in jobs
    ]
    try:
        if q.is_async:
            q.enqueue_many(data)
        else:
            # Run here and now (tests); enqueue_many would save each job again afterwards.
            for item in data:
                q.enqueue_call(item.func, args=item.args, job_id=item.job_id, result_ttl=0)
    except redis.RedisError as exc:
        log.warning(
            "%d background job(s) not enqueued (%s); the sweep will enqueue them",
            len(jobs),
            type(exc).__name__,
        )


def sweep() -> int:
    """Enqueue again every row that is due and whose job is no longer waiting; how many."""
    due = outbox().due(now=clock.now())
    if not due:
        return 0
    q = queue()
    found = QueueJob.fetch_many([j.job_id or "-" for j in due], connection=q.connection)
    lost = []
    stale_before = datetime.fromtimestamp(time.time() - STALE_AFTER, UTC)
    for job, queued in zip(due, found, strict=True):
        if queued is not None and _waiting(queued, stale_before):
            continue
        reassigned = outbox().assign_job(job)
        if reassigned is not None:
            lost.append(reassigned)
    enqueue(lost)
    if lost:
        log.info("sweep: %d outbox row(s) enqueued again", len(lost))
    return len(lost)


def _waiting(job: QueueJob, stale_before: datetime) -> bool:
    """Whether the job still waits its turn in the queue (and not for too long)."""
    status = job.get_status(refresh=False)
    enqueued_at = job.enqueued_at
    if enqueued_at is not None and enqueued_at.tzinfo is None:
        enqueued_at = enqueued_at.replace(tzinfo=UTC)
    return status in WAITING and (enqueued_at is None or enqueued_at > stale_before)
