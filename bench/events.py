"""Outcome events under load: disclosures to a local receiver through the worker.

    scripts/bench --events [--disclosures 1000] [--rate 50] [--workers 4]

Three runs on a real Redis, an SQLite directory and ``flask --app wsgi worker``
processes, posting to a receiver on loopback that answers 204 at once:

- **paced**: ``--disclosures`` disclosures at ``--rate`` a second; the lag from each
  disclosure (the event's own ``timestamp``) to its arrival at the receiver, p50/p99;
- **drain**: as many disclosures written while no worker runs, then the workers started;
  how many events a second they deliver (first arrival to last);
- **kill**: the paced run again while every worker is SIGKILLed a third of the way in
  and started again a second later; every event must still arrive (duplicates, same
  ``webhook-id``, are counted: at-least-once delivery allows them). An event a worker
  held when it died waits for its claim to lapse (WORKER_LEASE_SECONDS, 30 s).

Traffic stays on 127.0.0.1; each run is bounded (``--timeout``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PRACTICE = "bench-practice"
TARGET_P99_S = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port; its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", HOST),
            *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((HOST, port), timeout=1) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://{HOST}:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


class Receiver:
    """Arrival time of every event received, by ``webhook-id``; answers 204."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, float, float]] = []  # id, disclosed at, arrived at
        self.lock = threading.Lock()
        self.url = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                disclosed = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
                with receiver.lock:
                    receiver.arrivals.append((self.headers["webhook-id"], disclosed, arrived))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def clear(self) -> None:
        with self.lock:
            self.arrivals.clear()

    def snapshot(self) -> list[tuple[str, float, float]]:
        with self.lock:
            return list(self.arrivals)


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer((HOST, 0), receiver.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://{HOST}:{server.server_address[1]}/events"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class Workers:
    """``flask --app wsgi worker`` processes, killed and started by index."""

    def __init__(self, env: dict[str, str], count: int, log: Path) -> None:
        self.env = env
        self.log = log
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count

    def start(self, index: int) -> None:
        with self.log.open("ab") as log:
            self.procs[index] = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, index: int) -> None:
        proc = self.procs[index]
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            self.procs[index] = None

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for index, proc in enumerate(self.procs):
            if proc is not None:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill(index)
            self.procs[index] = None


class Discloser:
    """Reads a practice's codeword as the main application does: each read is a disclosure
    (channel ``app``) and leaves one outcome event to deliver."""

    def __init__(self, practice_id: str) -> None:
        from service import create_app

        self.app = create_app()
        self.app.extensions["directory"].create_all()
        token = next(iter(self.app.config["ADMIN_TOKENS"]))
        self.client = self.app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.path = f"/api/v1/practices/{practice_id}/codeword"
        body = {
            "name": "Bench Dental",
            "office_number": "+12025550100",
            "codeword": "bench-otter-12",
        }
        self.client.put(f"/api/v1/practices/{practice_id}", json=body, headers=self.headers)

    def disclose(self) -> None:
        """One read of the codeword: audit event, notices and outcome event in one
        transaction, then the job on the queue (core/disclosures.py)."""
        response = self.client.get(self.path, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"codeword read answered {response.status_code}")


@dataclass
class RunResult:
    name: str
    disclosures: int
    received: int
    unique: int
    seconds: float
    lag_p50: float
    lag_p99: float
    lag_max: float

    @property
    def lost(self) -> int:
        return self.disclosures - self.unique

    @property
    def events_per_second(self) -> float:
        return self.unique / self.seconds if self.seconds else 0.0

    @property
    def duplicates(self) -> int:
        return self.received - self.unique


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(
    name: str,
    receiver: Receiver,
    disclose: Callable[[], None],
    count: int,
    rate: float | None,
    timeout: float,
    during: Callable[[int], None] | None = None,
) -> RunResult:
    """Make ``count`` disclosures (at ``rate`` a second, or all at once), wait for their
    events; the figures."""
    receiver.clear()
    started = time.time()
    for index in range(count):
        if rate:
            # Paced against the start, so a slow disclosure does not slow the rest.
            delay = started + index / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        disclose()
        if during is not None:
            during(index)
    deadline = time.monotonic() + timeout
    while len({a[0] for a in receiver.snapshot()}) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    arrivals = receiver.snapshot()
    first: dict[str, tuple[float, float]] = {}
    for event_id, disclosed, arrived in arrivals:
        first.setdefault(event_id, (disclosed, arrived))
    lags = [arrived - disclosed for disclosed, arrived in first.values()]
    last = max((arrived for _, arrived in first.values()), default=started)
    # Paced, the run lasts as long as the disclosures; at once, what counts is how fast
    # the workers drain what was written.
    begin = started if rate else min((a for _, a in first.values()), default=started)
    return RunResult(
        name=name,
        disclosures=count,
        received=len(arrivals),
        unique=len(first),
        seconds=last - begin,
        lag_p50=statistics.median(lags) if lags else float("nan"),
        lag_p99=percentile(lags, 0.99),
        lag_max=max(lags, default=float("nan")),
    )


def drain(
    receiver: Receiver, disclose: Callable[[], None], count: int, pool: Workers, timeout: float
) -> RunResult:
    """``count`` disclosures written while no worker runs, then every worker started: how
    fast they drain the backlog (first arrival to last; the lag is the backlog's age)."""
    pool.stop_all()

    def start_workers(index: int) -> None:
        if index == count - 1:
            for worker in range(len(pool.procs)):
                pool.start(worker)

    return measure("drain", receiver, disclose, count, None, timeout, start_workers)


def bench_env(workdir: Path, redis_url: str, receiver_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "INSTANCE_PATH": str(workdir / "instance"),
        "SECRET_KEY": secrets.token_urlsafe(16),
        "CODEWORD_KEYS": Fernet.generate_key().decode(),
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{workdir / 'directory.sqlite3'}",
        "PUBLIC_BASE_URL": "https://codeword.example.com",
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "ADMIN_TOKENS": "bench=" + secrets.token_urlsafe(16),
        "EVENTS_URL": receiver_url,
        "EVENTS_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "LOG_LEVEL": "WARNING",
    }


def run(disclosures: int, rate: float, workers: int, timeout: float) -> list[RunResult]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-events-"))
    try:
        with redis_server(workdir) as redis_url, receiving() as receiver:
            env = bench_env(workdir, redis_url, receiver.url)
            os.environ.update(env)
            discloser = Discloser(PRACTICE)
            pool = Workers(env, workers, workdir / "workers.log")
            for index in range(workers):
                pool.start(index)
            try:
                # The workers' start (a couple of seconds) is not part of the figures.
                measure("warm-up", receiver, discloser.disclose, workers * 2, None, timeout)
                results = [
                    measure("paced", receiver, discloser.disclose, disclosures, rate, timeout),
                    drain(receiver, discloser.disclose, disclosures, pool, timeout),
                ]
                kill_at, restart_at = disclosures // 3, disclosures // 3 + int(rate)

                def chaos(index: int) -> None:
                    # Every worker at once: whatever one held mid-job waits for its lease.
                    for worker in range(workers):
                        if index == kill_at:
                            pool.kill(worker)
                        elif index == restart_at:
                            pool.start(worker)

                results.append(
                    measure("kill", receiver, discloser.disclose, disclosures, rate, timeout, chaos)
                )
            finally:
                pool.stop_all()
            return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(results: list[RunResult], rate: float, workers: int) -> str:
    lines = [
        f"Outcome events: {workers} worker(s), receiver on loopback answering 204; "
        f"paced runs at {rate:g} disclosures/s",
        "",
        "| run | disclosures | events/s | lag p50 s | lag p99 s | lag max s | lost | duplicates |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.disclosures} | {r.events_per_second:.0f} | {r.lag_p50:.3f} | "
            f"{r.lag_p99:.3f} | {r.lag_max:.3f} | {r.lost} | {r.duplicates} |"
        )
    paced = results[0]
    kill = results[-1]
    lines += [
        "",
        f"p99 lag at {rate:g}/s: {paced.lag_p99:.3f} s (target < {TARGET_P99_S:g} s): "
        + ("met" if paced.lag_p99 < TARGET_P99_S else "NOT met"),
        f"worker killed and restarted: {kill.lost} lost (target 0): "
        + ("met" if kill.lost == 0 else "NOT met"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--disclosures", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="disclosures a second (paced)")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait per run (s)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not shutil.which("redis-server"):
        print("redis-server is not installed: scripts/bootstrap installs it", file=sys.stderr)
        return 2
    results = run(args.disclosures, args.rate, args.workers, args.timeout)
    print(report(results, args.rate, args.workers))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    paced, kill = results[0], results[-1]
    return 0 if paced.lag_p99 < TARGET_P99_S and kill.lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
