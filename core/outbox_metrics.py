"""Gauges of the background work, read from SQL and the queue at each scrape of /metrics.

Counted where the truth is (the outbox tables, RQ's queue and failed-job registry), not
in each process, so every web process shows the same figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy.exc import SQLAlchemyError

from store.outbox import KINDS
from store.outbox_rows import Outbox

log = logging.getLogger(__name__)


class BackgroundCollector(Collector):
    """Jobs queued and failed; outbox rows by kind and status; the oldest pending."""

    def __init__(self, outbox: Outbox, queue: Queue) -> None:
        self.outbox = outbox
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._queue()
        yield from self._outbox()

    def _queue(self) -> Iterator[GaugeMetricFamily]:
        try:
            queued = self.queue.count
            failed = FailedJobRegistry(queue=self.queue).count
        except redis.RedisError as exc:
            log.warning("metrics: queue not read (%s)", type(exc).__name__)
            return
        yield GaugeMetricFamily("codeword_jobs_queued", "Background jobs waiting", value=queued)
        yield GaugeMetricFamily(
            "codeword_jobs_failed", "Background jobs that raised, kept a week", value=failed
        )

    def _outbox(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = list(self.outbox.counts())
            oldest = self.outbox.oldest_pending()
        except SQLAlchemyError as exc:
            log.warning("metrics: outbox not read (%s)", type(exc).__name__)
            return
        events = GaugeMetricFamily(
            "codeword_outcome_events", "Outcome events by delivery status", labels=["status"]
        )
        rows = GaugeMetricFamily(
            "codeword_outbox_rows", "Outbox rows by kind and status", labels=["kind", "status"]
        )
        pending_redactions = 0
        for kind, status, count in counts:
            rows.add_metric([kind, status], count)
            if kind == "event":
                events.add_metric([status], count)
            if kind == "redaction" and status == "pending":
                pending_redactions = count
        age = GaugeMetricFamily(
            "codeword_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox row of each kind (0: none)",
            labels=["kind"],
        )
        now = time.time()
        for kind in KINDS:
            created = oldest.get(kind)
            age.add_metric([kind], max(0.0, now - created) if created is not None else 0.0)
        yield events
        yield rows
        yield GaugeMetricFamily(
            "codeword_redactions_pending",
            "Codeword texts whose body still waits to be redacted at Twilio",
            value=pending_redactions,
        )
        yield age


def render(outbox: Outbox, queue: Queue) -> bytes:
    """The gauges in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackgroundCollector(outbox, queue))
    return generate_latest(registry)
