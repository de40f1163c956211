"""Slow clients against a server, and how fast it answers everyone else meanwhile.

Each slow client opens a connection, sends the head of a webhook POST whose body is
longer than it will ever send, then one byte of body a second, as a client on a bad
line (or an attacker) would. Meanwhile probes (signed webhooks, /healthz) are sent on
fresh connections, one after another, and each is timed. Everything stops by itself at
the deadline.

    report = hold_slow_clients(url, probes, clients=50, seconds=30)
    report.slowest  # seconds; a probe that got no answer counts as its timeout
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

# The body each slow client promises, longer than it sends in any test.
PROMISED_BYTES = 4096


@dataclass(frozen=True)
class Probe:
    """One request sent while the slow clients were held, and how long it took."""

    what: str
    seconds: float
    status: int | None  # None: no answer within the timeout, or the connection failed


@dataclass
class Report:
    """What the slow clients and the probes met."""

    clients: int
    probes: list[Probe] = field(default_factory=list)
    # Slow clients the server closed on (answered or dropped), and how many were open
    # when the time was up.
    closed_by_server: int = 0
    open_at_end: int = 0

    @property
    def slowest(self) -> float:
        return max(p.seconds for p in self.probes)

    @property
    def failed(self) -> list[Probe]:
        return [p for p in self.probes if p.status != 200]

    def summary(self) -> str:
        return (
            f"{len(self.probes)} probes, slowest {self.slowest:.3f} s, {len(self.failed)} "
            f"without a 200; {self.clients} slow clients, {self.open_at_end} open at the end, "
            f"{self.closed_by_server} closed by the server"
        )


def _slow_client(host: str, port: int, path: str) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=5)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {PROMISED_BYTES}\r\n\r\n"
    )
    sock.sendall(head.encode())
    sock.setblocking(False)
    return sock


def _drip(host: str, port: int, path: str, count: int, deadline: float, report: Report) -> None:
    """Keep ``count`` slow clients sending a byte a second until the deadline."""
    clients = [_slow_client(host, port, path) for _ in range(count)]
    try:
        while time.monotonic() < deadline:
            tick = time.monotonic()
            # A client the server answered or closed on is replaced: the load stays.
            readable, _, _ = select.select(clients, [], [], 0)
            for sock in readable:
                report.closed_by_server += 1
                clients.remove(sock)
                sock.close()
                clients.append(_slow_client(host, port, path))
            for sock in clients:
                with contextlib.suppress(BlockingIOError, ConnectionError):
                    sock.send(b"a")
            time.sleep(max(0.0, min(1.0 - (time.monotonic() - tick), deadline - time.monotonic())))
        readable, _, _ = select.select(clients, [], [], 0)
        report.open_at_end = len(clients) - len(readable)
    finally:
        for sock in clients:
            sock.close()


def hold_slow_clients(
    url: str,
    probes: list[tuple[str, Callable[[float], requests.Response]]],
    *,
    clients: int = 50,
    seconds: float = 30,
    probe_timeout: float = 5,
    pause: float = 0.2,
    slow_path: str = "/sms/inbound",
) -> Report:
    """Hold ``clients`` slow clients on ``url`` for ``seconds``, probing it meanwhile.

    Each probe is ``(name, send)``; ``send(timeout)`` makes one request on a new
    connection. Probes go round in turn, ``pause`` seconds apart.
    """
    split = urlsplit(url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    report = Report(clients=clients)
    deadline = time.monotonic() + seconds
    dripping = threading.Thread(
        target=_drip, args=(host, port, slow_path, clients, deadline, report), daemon=True
    )
    dripping.start()
    # Let every slow client connect and send its head before the first probe.
    time.sleep(min(2.0, seconds / 10))
    turn = 0
    while time.monotonic() < deadline:
        name, send = probes[turn % len(probes)]
        turn += 1
        started = time.monotonic()
        try:
            status: int | None = send(probe_timeout).status_code
        except requests.RequestException:
            status = None
        elapsed = time.monotonic() - started
        report.probes.append(Probe(name, probe_timeout if status is None else elapsed, status))
        time.sleep(pause)
    dripping.join(seconds + 10)
    return report
