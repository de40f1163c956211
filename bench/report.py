"""The report: one row a step, against the targets the service is held to."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from bench.redis_commands import Commands
from bench.wrk import Result

# Targets the service is held to (see README, "Performance").
TARGET_RATIO = 0.6
TARGET_P99_MS = 20.0
TARGET_REDIS_COMMANDS = 3


@dataclass(frozen=True)
class Row:
    """One line of the report."""

    step: str
    commands: Commands
    # A hot step is held to the targets; the others are reported for information.
    hot: bool = True
    ours: Result | None = None
    bare: Result | None = None
    # Our req/s over the bare endpoint's: the median over rounds, each pairing
    # one run of ours with one of the baseline right beside it.
    ratio: float | None = None
    note: str = ""
    # With --floor: the floor endpoint's runs, and its req/s over the bare one's, likewise.
    floor: Result | None = None
    floor_ratio: float | None = None

    def meets_targets(self) -> bool:
        """Whether a hot step meets every target measured (timing only when loaded)."""
        if not self.hot:
            return True
        if self.commands.sent > TARGET_REDIS_COMMANDS:
            return False
        if self.ours is None:
            return True
        return (
            self.ratio is not None
            and self.ratio >= TARGET_RATIO
            and self.ours.p99_ms <= TARGET_P99_MS
        )


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


HEADER = (
    f"{'step':<22}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'bare req/s':>11}{'bare p99':>9}"
    f"{'ratio':>7}{'cpu ms/req':>13}{'redis cmds':>12}"
)


def format_row(row: Row) -> str:
    commands = f"{row.commands.sent} (+{row.commands.in_scripts})"
    if row.ours is None or row.bare is None:
        return f"{row.step:<22}{row.note:<63}{commands:>12}"
    cpu = f"{row.ours.cpu_ms_per_request:.2f}/{row.bare.cpu_ms_per_request:.2f}"
    return (
        f"{row.step:<22}{row.ours.requests_per_second:>7.0f}{row.ours.p50_ms:>8.2f}"
        f"{row.ours.p99_ms:>8.2f}{row.bare.requests_per_second:>11.0f}{row.bare.p99_ms:>9.2f}"
        f"{row.ratio:>7.2f}{cpu:>13}{commands:>12}"
    )


LEGEND = """\
ratio: our req/s over the bare endpoint's; cpu ms/req: CPU the gunicorn processes used
per request, ours/bare; redis cmds: sent by the service (+ run inside the Lua scripts
they call), counted by Redis for one request after warm-up."""

FLOOR_HEADER = (
    f"{'step':<22}{'floor req/s':>12}{'floor p99':>10}{'floor ratio':>12}{'cpu ms/req':>11}"
)

FLOOR_LEGEND = """\
floor: the bare endpoint plus the service's signature check and one Redis round trip
(bench/bare_app.py), loaded beside it; floor ratio: its req/s over the bare endpoint's,
what those two alone leave of the bare throughput."""


def format_floor_row(row: Row) -> str:
    assert row.floor is not None and row.floor_ratio is not None
    return (
        f"{row.step:<22}{row.floor.requests_per_second:>12.0f}{row.floor.p99_ms:>10.2f}"
        f"{row.floor_ratio:>12.2f}{row.floor.cpu_ms_per_request:>11.2f}"
    )
