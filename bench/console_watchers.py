"""Do support agents watching calls in the console slow the webhooks?

    .venv/bin/python -m bench.console_watchers [--seconds 5] [--rounds 6] [--agents 10]

Ten agents (by default) sign in to the console, each places a verification call
from a practice page and then polls its status as the call page does (once a
second). Meanwhile wrk loads the "voice answer" webhook under the usual gunicorn
settings. Three conditions, in turns, medians of ``--rounds`` (and each run's throughput
against the run without agents of the same round):

- ``no agents``: the webhook alone;
- ``agents watching``: the agents' pages polling once a second, as they do;
- ``agents flat out``: the same agents polling with no pause (what ten pages could
  never do), to show what a poll costs when nothing spaces them out.

Each poll is a short request: between polls an open page holds no worker thread,
so there are no more pages open than threads for the webhooks to wait behind.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.cpu import redis_pids
from bench.redis_commands import send_all
from bench.report import machine_description
from bench.scenarios import answer_step, office_number
from bench.setup import PUBLIC_BASE_URL, Setup, SignedRequest, gunicorn_settings
from bench.wrk import Result, median_result, run_wrk, write_wrk_script
from devservers.gunicorn_server import gunicorn_server
from devservers.redis_server import RedisProcess
from store.onetime import CODE_LIFETIME

CODEWORD = "maple-otter-47"
# How often the call page polls (console/calls.py POLL_SECONDS).
PAGE_POLL_SECONDS = 1.0
# Sessions prepared for the webhook; wrk cycles through them (answering one twice costs the same).
ANSWER_SESSIONS = 5000


@dataclass
class Agent:
    """One support agent's browser: a console session and the call it watches."""

    base_url: str
    cookie: str
    status_url: str
    latencies_ms: list[float] = field(default_factory=list)

    def poll(self, session: requests.Session) -> None:
        started = time.perf_counter()
        answer = session.get(
            self.base_url + self.status_url,
            headers={"Cookie": f"cw_console={self.cookie}", "Accept": "application/json"},
            timeout=5,
        )
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200 or CODEWORD in answer.text:
            raise RuntimeError(f"status poll answered {answer.status_code}")


def sign_in_and_call(base_url: str, token: str, practice_id: str) -> Agent:
    """Sign in through the console's form and place a call from the practice page."""
    # The console's cookies are Secure (PUBLIC_BASE_URL is https): carried by hand over http.
    form = requests.get(f"{base_url}/console/login?checked=1", timeout=5)
    nonce = form.cookies["cw_console_sign_in"]
    signed_in = requests.post(
        f"{base_url}/console/login",
        data={"csrf_token": _field(form.text, "csrf_token"), "token": token, "next": "/console"},
        headers={"Cookie": f"cw_console_sign_in={nonce}"},
        allow_redirects=False,
        timeout=5,
    )
    cookie = signed_in.cookies.get("cw_console")
    if not cookie:
        raise RuntimeError(f"the console did not sign {token[:8]}... in: {signed_in.status_code}")
    headers = {"Cookie": f"cw_console={cookie}"}
    page = requests.get(f"{base_url}/console/practices/{practice_id}", headers=headers, timeout=5)
    called = requests.post(
        f"{base_url}/console/practices/{practice_id}/calls",
        data={
            "csrf_token": _field(page.text, "csrf_token"),
            "call_key": _field(page.text, "call_key"),
            "requested_by": "Dana Admin",
        },
        headers=headers,
        timeout=5,
    )
    if called.status_code != 201:
        raise RuntimeError(f"the console did not place a call: {called.status_code}")
    status_url = re.search(r'data-status-url="([^"]+)"', called.text)
    assert status_url is not None
    return Agent(base_url, cookie, status_url.group(1))


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, name
    return found.group(1)


class Watching:
    """The agents' pages polling, each in its own thread, until stopped."""

    def __init__(self, agents: list[Agent], pause: float) -> None:
        self.agents, self.pause = agents, pause
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(a,)) for a in agents]
        self.errors: list[str] = []
        self.seconds = 0.0

    def __enter__(self) -> Watching:
        for agent in self.agents:
            agent.latencies_ms.clear()
        self._started = time.perf_counter()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self.seconds = time.perf_counter() - self._started

    def _watch(self, agent: Agent) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                agent.poll(session)
            except (requests.RequestException, RuntimeError) as exc:
                self.errors.append(str(exc))
            if self.pause:
                self._stop.wait(self.pause)

    def polls(self) -> list[float]:
        return [ms for agent in self.agents for ms in agent.latencies_ms]


@dataclass(frozen=True)
class Condition:
    name: str
    pause: float | None  # None: no agents


CONDITIONS = (
    Condition("no agents", None),
    Condition("agents watching (1 poll/s each)", PAGE_POLL_SECONDS),
    Condition("agents flat out (no pause)", 0.0),
)


def cpu_per_request(
    setup: Setup, agent: Agent, webhook: SignedRequest, count: int
) -> tuple[float, float]:
    """CPU milliseconds one status poll and one voice answer webhook cost, in this process.

    Process CPU time barely moves with whatever else the machine runs, unlike latency.
    """
    client = setup.app.test_client()
    client.set_cookie("cw_console", agent.cookie, domain=urlsplit(PUBLIC_BASE_URL).hostname or "")

    def poll() -> None:
        answer = client.get(agent.status_url, base_url=PUBLIC_BASE_URL)
        if answer.status_code != 200:
            raise RuntimeError(f"status poll answered {answer.status_code}")

    def answer() -> None:
        client.post(
            webhook.path,
            data=webhook.form,
            headers={"X-Twilio-Signature": webhook.signature},
            base_url=PUBLIC_BASE_URL,
        )

    costs = []
    for request in (poll, answer):
        for _ in range(50):
            request()
        started = time.process_time()
        for _ in range(count):
            request()
        costs.append((time.process_time() - started) * 1000 / count)
    return costs[0], costs[1]


def run(*, seconds: int, rounds: int, agents_count: int, connections: int) -> None:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-console-")))
        redis_proc = stack.enter_context(RedisProcess())
        setup = Setup(redis_proc.url, workdir)
        tokens = {
            f"agent-{i}": f"bench-agent-token-{i:04d}-0000000000" for i in range(agents_count)
        }
        setup.env["SUPPORT_TOKENS"] = ",".join(f"{n}={t}" for n, t in tokens.items())
        with setup.app.app_context():
            directory = setup.app.extensions["directory"]
            for i in range(agents_count):
                directory.put_practice(
                    f"watched-{i}",
                    name=f"Watched Practice {i}",
                    office_number=office_number(900_000 + i * 10),
                    office_number_verified=True,
                    codeword=CODEWORD,
                )
        service = stack.enter_context(gunicorn_server(setup.env))
        prepared = answer_step(setup, ANSWER_SESSIONS)
        send_all(service, prepared.requests[:20])
        script = write_wrk_script(prepared.requests[20:], workdir, "answer")
        agents = [
            sign_in_and_call(service, token, f"watched-{i}")
            for i, token in enumerate(tokens.values())
        ]
        poll_cpu, answer_cpu = cpu_per_request(setup, agents[0], prepared.requests[0], 2000)
        redis = redis_pids(redis_proc.url)
        settings = gunicorn_settings(setup.env)
        print(f"machine: {machine_description()}")
        print(
            f"gunicorn: {settings['workers']} workers x {settings['threads']} threads "
            f"({settings['worker_class']}); wrk: {connections} connections on the voice answer "
            f"webhook; {agents_count} agents; {rounds} rounds of {seconds} s per condition, "
            "the conditions in turns\n"
        )
        print(
            f"CPU per request, in process: status poll {poll_cpu:.2f} ms, voice answer webhook "
            f"{answer_cpu:.2f} ms; {agents_count} pages polling once a second take "
            f"{agents_count * poll_cpu / PAGE_POLL_SECONDS / 10:.2f}% of one core\n"
        )
        results: dict[str, list[Result]] = {c.name: [] for c in CONDITIONS}
        polls: dict[str, list[float]] = {c.name: [] for c in CONDITIONS}
        watched: dict[str, float] = {c.name: 0.0 for c in CONDITIONS}
        for round_ in range(rounds):
            # Rotated, so that no condition always runs first or last in a round.
            shift = round_ % len(CONDITIONS)
            for condition in CONDITIONS[shift:] + CONDITIONS[:shift]:
                if condition.pause is None:
                    results[condition.name].append(
                        run_wrk(service, script, seconds, connections, redis)
                    )
                    continue
                with Watching(agents, condition.pause) as watching:
                    results[condition.name].append(
                        run_wrk(service, script, seconds, connections, redis)
                    )
                if watching.errors:
                    raise RuntimeError(f"status polls failed: {watching.errors[:3]}")
                polls[condition.name] += watching.polls()
                watched[condition.name] += watching.seconds
        _report(results, polls, watched)


def _report(
    results: dict[str, list[Result]], polls: dict[str, list[float]], watched: dict[str, float]
) -> None:
    alone = results[CONDITIONS[0].name]
    header = (
        f"{'condition':<34}{'req/s':>8}{'vs alone':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'polls/s':>9}{'poll p50':>10}{'poll p99':>10}"
    )
    print(header)
    print("-" * len(header))
    for condition in CONDITIONS:
        runs = results[condition.name]
        result = median_result(runs)
        # Each run against the run without agents of the same round: slow drift cancels out.
        ratio = statistics.median(
            r.requests_per_second / a.requests_per_second for r, a in zip(runs, alone, strict=True)
        )
        made = polls[condition.name]
        line = (
            f"{condition.name:<34}{result.requests_per_second:>8.0f}{ratio:>10.2f}"
            f"{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}"
        )
        if made:
            p99 = statistics.quantiles(made, n=100)[98] if len(made) > 1 else made[0]
            line += (
                f"{len(made) / watched[condition.name]:>9.1f}{statistics.median(made):>10.2f}"
                f"{p99:>10.2f}"
            )
        print(line)
    busiest = max(r.others_cpu_share for runs in results.values() for r in runs)
    print(f"\nother processes took up to {busiest:.0%} of the machine's CPU during the runs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=6, help="runs per condition (medians)")
    parser.add_argument("--agents", type=int, default=10, help="agents watching a call each")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    if args.seconds * args.rounds * len(CONDITIONS) > CODE_LIFETIME - 60:
        parser.error(f"--seconds x --rounds x 3 must stay under {CODE_LIFETIME - 60} s")
    run(
        seconds=args.seconds,
        rounds=args.rounds,
        agents_count=args.agents,
        connections=args.connections,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
