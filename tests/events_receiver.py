"""A real HTTP receiver of outcome events on loopback, as the main application runs one.

It records every request (headers, the exact body, when it came) and answers what the
test asked for, in order: a status, headers such as ``Retry-After``, or a hold until the
test lets it answer. Past the script it answers 204.

    with events_receiver() as receiver:
        receiver.answer(500, 500)            # then 204
        ...
        receiver.wait_for(lambda got: len(got) == 3)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devservers.processes import HOST


@dataclass(frozen=True)
class Received:
    """One POST as it arrived."""

    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.time() on arrival
    status: int  # what the receiver answered

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None


class EventsReceiver:
    """The requests received, and the answers still to give."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[Received] = []
        self._script: list[Answer] = []
        self._lock = threading.Condition()
        self.arrived = threading.Event()  # set at each arrival (tests clear it)

    def answer(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next requests with these statuses (then 204)."""
        with self._lock:
            self._script += [Answer(status, dict(headers or {})) for status in statuses]

    def hold_next(self) -> threading.Event:
        """Hold the next request unanswered until the returned event is set."""
        release = threading.Event()
        with self._lock:
            self._script.append(Answer(204, hold=release))
        return release

    def _next(self) -> Answer:
        with self._lock:
            return self._script.pop(0) if self._script else Answer(204)

    def _record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)
            self._lock.notify_all()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, done: Callable[[list[Received]], bool], timeout: float = 30.0) -> None:
        """Wait until ``done(received)`` holds; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver: still waiting after {timeout} s")
                self._lock.wait(min(left, 0.5))

    def ids(self, delivered_only: bool = True) -> list[str]:
        """The ``webhook-id`` of each request (answered 2xx only, by default)."""
        return [
            r.webhook_id for r in self.snapshot() if not delivered_only or 200 <= r.status < 300
        ]


def _handler_for(receiver: EventsReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            arrived_at = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = receiver._next()
            headers = {k.lower(): v for k, v in self.headers.items()}
            if answer.hold is not None:
                receiver._record(Received(headers, body, arrived_at, 0))
                receiver.arrived.set()
                answer.hold.wait(60)
                return
            receiver._record(Received(headers, body, arrived_at, answer.status))
            receiver.arrived.set()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler


@contextlib.contextmanager
def events_receiver() -> Iterator[EventsReceiver]:
    """Run a receiver on a free loopback port; yield it (its ``url`` set)."""
    receiver = EventsReceiver()
    server = ThreadingHTTPServer((HOST, 0), _handler_for(receiver))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="events-receiver", daemon=True)
    thread.start()
    receiver.url = f"http://{HOST}:{server.server_address[1]}/events"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
