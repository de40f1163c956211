"""Load the hot webhooks under gunicorn and real Redis, beside a bare Flask baseline.

    scripts/bench [--seconds 10] [--rounds 1] [--connections 8] [--only answer,help]

For each step it reports throughput and p50/p99 latency from wrk, the same for a
bare Flask endpoint rendering equivalent TwiML under the same gunicorn settings
(in the same run), their ratio, and how many Redis commands one request of the
step sends (and how many more run inside the Lua scripts it calls). Traffic goes
to 127.0.0.1 only, and every wrk run is bounded by --seconds.

This module runs it all (and is the command line); the parts: setup.py (the
environment, signing, the servers), scenarios.py (each step's requests),
redis_commands.py (counting a request's Redis commands), wrk.py (loading),
cpu.py (CPU accounting from /proc), report.py (the rows and the targets).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench.cpu import redis_pids
from bench.redis_commands import Commands, redis_commands_per_request, send_all
from bench.report import (
    FLOOR_HEADER,
    FLOOR_LEGEND,
    HEADER,
    LEGEND,
    TARGET_P99_MS,
    TARGET_RATIO,
    TARGET_REDIS_COMMANDS,
    Row,
    format_floor_row,
    format_row,
    machine_description,
)
from bench.scenarios import SCENARIOS, Scenario
from bench.setup import Setup, SignedRequest, gunicorn_settings, services
from bench.wrk import WRK_THREADS, Result, median_result, run_wrk, write_wrk_script
from devservers.redis_server import RedisProcess
from store.onetime import CODE_LIFETIME

# Requests prepared per second of load: comfortably more than the service answers,
# so no request has to reuse a session or sender another one already used.
REQUESTS_PER_SECOND_PREPARED = 4000
# Above this share of the CPU taken by other processes, a run's figures are flagged.
NOISY_NEIGHBOURS = 0.1


def load_step(
    scenario: Scenario,
    first: SignedRequest,
    rest: list[SignedRequest],
    urls: tuple[str, str],
    redis: list[int],
    workdir: Path,
    commands: Commands,
    *,
    rounds: int,
    seconds: int,
    connections: int,
    floor: SignedRequest | None = None,
) -> Row:
    """Load the step and its baseline in turns, ``rounds`` times each; one row of medians.

    Taking turns (and swapping who goes first) puts both sides under the same
    weather when something else on the machine comes and goes. ``floor``: also
    load the floor endpoint (on the baseline's server) right after the baseline.
    """
    service, bare = urls
    name = scenario.name.replace(" ", "_")
    baseline = [SignedRequest(scenario.baseline_path, first.form, "")]
    bare_script = write_wrk_script(baseline, workdir, f"bare_{name}")
    floor_script = write_wrk_script([floor], workdir, f"floor_{name}") if floor else None
    share = max(1, len(rest) // rounds)
    ours: list[Result] = []
    base: list[Result] = []
    floors: list[Result] = []

    def load_baselines() -> None:
        base.append(run_wrk(bare, bare_script, seconds, connections, redis))
        if floor_script is not None:
            floors.append(run_wrk(bare, floor_script, seconds, connections, redis))

    for i in range(rounds):
        part = rest[i * share : (i + 1) * share] or rest
        script = write_wrk_script(part, workdir, f"{name}_{i}")
        if i % 2:
            load_baselines()
        ours.append(run_wrk(service, script, seconds, connections, redis))
        if not i % 2:
            load_baselines()
    notes = []
    reused = [r.requests for r in ours if r.requests > share > 1]
    if reused:
        notes.append(f"{max(reused)} requests in a run reused {share} prepared states")
    mine, theirs = median_result(ours), median_result(base)
    if max(mine.others_cpu_share, theirs.others_cpu_share) > NOISY_NEIGHBOURS:
        busiest = max(mine.others_cpu_share, theirs.others_cpu_share)
        notes.append(f"other processes took up to {busiest:.0%} of the CPU")
    if mine.timeouts or theirs.timeouts:
        notes.append(f"timeouts: {mine.timeouts} ours, {theirs.timeouts} bare")
    ratio = statistics.median(
        o.requests_per_second / b.requests_per_second for o, b in zip(ours, base, strict=True)
    )
    row = Row(scenario.name, commands, True, mine, theirs, ratio, note="; ".join(notes))
    if not floors:
        return row
    floor_ratio = statistics.median(
        f.requests_per_second / b.requests_per_second for f, b in zip(floors, base, strict=True)
    )
    return dataclasses.replace(row, floor=median_result(floors), floor_ratio=floor_ratio)


def run(
    *,
    seconds: int,
    connections: int,
    only: str | None = None,
    sessions: int | None = None,
    load: bool = True,
    rounds: int = 1,
    floor: bool = False,
    database_url: str | None = None,
    out: Callable[[str], None] = print,
) -> list[Row]:
    """Run every scenario (or those named in ``only``); print and return the report."""
    wanted = [part.strip() for part in (only or "").split(",") if part.strip()]
    scenarios = [s for s in SCENARIOS if not wanted or any(w in s.name for w in wanted)]
    rows: list[Row] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        redis_proc = stack.enter_context(RedisProcess())
        setup = Setup(redis_proc.url, workdir, database_url)
        setup.app  # noqa: B018 (creates the tables before gunicorn starts)
        service, bare = stack.enter_context(services(setup, workdir))
        redis = redis_pids(redis_proc.url)
        settings = gunicorn_settings(setup.env)
        out(f"machine: {machine_description()}")
        out(
            f"gunicorn: {settings['workers']} workers x {settings['threads']} threads "
            f"({settings['worker_class']}); wrk: {WRK_THREADS} threads, {connections} "
            f"connections, {rounds} x {seconds} s per side and step; Redis and "
            f"{'PostgreSQL' if database_url else 'SQLite'} on the same machine\n"
        )
        out(HEADER)
        out("-" * len(HEADER))
        for scenario in scenarios:
            count = sessions or max(1000, seconds * rounds * REQUESTS_PER_SECOND_PREPARED)
            prepared = scenario.prepare(setup, count if scenario.load else 1)
            first, warm_up, rest = prepared.split()
            send_all(service, warm_up)
            commands = redis_commands_per_request(setup.redis, service, first, prepared.expect)
            row = Row(scenario.name, commands, hot=scenario.load, note=scenario.note)
            if scenario.load and load:
                floor_request = (
                    setup.sign(scenario.floor_path, first.form)
                    if floor and scenario.floor_path
                    else None
                )
                row = load_step(
                    scenario, first, rest, (service, bare), redis, workdir, commands, rounds=rounds,
                    seconds=seconds, connections=connections, floor=floor_request,
                )  # fmt: skip
            rows.append(row)
            out(format_row(row))
        out("\n" + LEGEND)
        floors = [row for row in rows if row.floor is not None]
        if floors:
            out("\n" + FLOOR_HEADER)
            out("-" * len(FLOOR_HEADER))
            out("\n".join(format_floor_row(row) for row in floors))
            out("\n" + FLOOR_LEGEND)
        notes = [f"  {row.step}: {row.note}" for row in rows if row.note and row.ours]
        if notes:
            out("notes:\n" + "\n".join(notes))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--only",
        help="run only scenarios whose name contains this (or one of these, comma-separated)",
    )
    parser.add_argument(
        "--sessions", type=int, help="requests (call sessions, senders) to prepare per step"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs per side and step, in turns (medians kept)"
    )
    parser.add_argument(
        "--no-load", action="store_true", help="count Redis commands only; do not run wrk"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also load the floor: the bare endpoint plus the signature check and one Redis "
        "round trip",
    )
    parser.add_argument(
        "--database-url",
        help="the service's directory (e.g. a PostgreSQL seeded by bench.seed_directory); "
        "default: a new SQLite file",
    )
    parser.add_argument("--json", type=Path, help="also write the report to this file as JSON")
    args = parser.parse_args(argv)
    sides = 3 if args.floor else 2
    if args.seconds * args.rounds * sides > CODE_LIFETIME - 60:
        # A step's call sessions are made just before its runs; they must outlive them.
        parser.error(
            f"--seconds x --rounds x {sides} (sides loaded) must stay under {CODE_LIFETIME - 60} s"
        )
    if not args.no_load and not shutil.which("wrk"):
        print("wrk is not installed: scripts/bootstrap --dev installs it", file=sys.stderr)
        return 2
    rows = run(
        seconds=args.seconds,
        connections=args.connections,
        only=args.only,
        sessions=args.sessions,
        load=not args.no_load,
        rounds=args.rounds,
        floor=args.floor,
        database_url=args.database_url,
    )
    ok = all(row.meets_targets() for row in rows)
    if args.json:
        report = [{**dataclasses.asdict(row), "meets_targets": row.meets_targets()} for row in rows]
        args.json.write_text(json.dumps(report, indent=2))
    if args.no_load:
        print(
            f"\ntarget: <= {TARGET_REDIS_COMMANDS} Redis commands sent per hot step: "
            f"{'met' if ok else 'NOT met'} (timing not measured: --no-load)"
        )
        return 0 if ok else 1
    print(
        f"\ntargets: ratio >= {TARGET_RATIO}, p99 <= {TARGET_P99_MS:.0f} ms, "
        f"<= {TARGET_REDIS_COMMANDS} Redis commands sent per step: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
