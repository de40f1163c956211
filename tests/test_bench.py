"""The benchmark harness keeps working: every step prepared, counted and (with wrk) loaded.

A tiny run, one second per side: timing goals live in the benchmark, not here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest

from bench.report import TARGET_REDIS_COMMANDS
from bench.scenarios import SCENARIOS
from devservers.processes import REPO

HAVE_WRK = shutil.which("wrk") is not None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The harness's report of a tiny run (without load when wrk is missing)."""
    out = tmp_path_factory.mktemp("bench") / "report.json"
    command = [sys.executable, "-m", "bench.run", "--seconds", "1", "--sessions", "60"]
    command += ["--connections", "2", "--json", str(out)]
    command.append("--floor" if HAVE_WRK else "--no-load")
    # Exit 1 only says a timing target was missed, which a tiny run may well do.
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode in (0, 1) and out.exists(), result.stdout + result.stderr
    rows: list[dict[str, Any]] = json.loads(out.read_text())
    return rows


def test_every_step_is_reported(report: list[dict[str, Any]]) -> None:
    assert [row["step"] for row in report] == [s.name for s in SCENARIOS]


def test_each_hot_webhook_step_sends_at_most_three_redis_commands(
    report: list[dict[str, Any]],
) -> None:
    loaded = {s.name for s in SCENARIOS if s.load}
    sent = {row["step"]: row["commands"]["sent"] for row in report if row["step"] in loaded}
    assert sent["ivr inbound"] == 0
    assert sent["voice answer"] == sent["voice challenge"] == 1
    assert sent["sms inbound codeword"] == sent["sms inbound help"] == 1
    assert max(sent.values()) <= TARGET_REDIS_COMMANDS


def test_a_codeword_text_to_an_admin_is_counted_without_the_simulated_carrier(
    report: list[dict[str, Any]],
) -> None:
    """Three round trips: the look-ups before deciding, the reservation, the job on the
    queue (one pipeline); the text itself goes from the worker."""
    admin = next(row for row in report if row["step"] == "sms codeword (admin)")
    assert admin["commands"]["names"] == ["EVALSHA"] * 5 + [
        "MULTI", "SADD", "HSET", "HSET", "RPUSH", "EXEC"
    ]  # fmt: skip
    assert admin["ours"] is None


@pytest.mark.skipif(not HAVE_WRK, reason="wrk is not installed (scripts/bootstrap --dev)")
def test_each_loaded_step_and_its_baseline_answered_under_wrk(
    report: list[dict[str, Any]],
) -> None:
    for row in report:
        if row["step"] == "sms codeword (admin)":
            continue
        for side in ("ours", "bare"):
            assert row[side]["requests"] > 0, (row["step"], side)
            assert row[side]["timeouts"] == 0, (row["step"], side)
        assert row["ratio"] > 0


@pytest.mark.skipif(not HAVE_WRK, reason="wrk is not installed (scripts/bootstrap --dev)")
def test_the_floor_is_loaded_beside_each_step_that_keeps_state(
    report: list[dict[str, Any]],
) -> None:
    """The bare endpoint plus the signature check and one Redis round trip: every step
    that needs Redis has one, answering every request (a bad signature would be a 403)."""
    floors = {row["step"]: row["floor"] for row in report if row["floor"] is not None}
    assert sorted(floors) == sorted(
        ["voice answer", "voice challenge", "sms inbound codeword", "sms inbound help"]
    )
    for step, floor in floors.items():
        assert floor["requests"] > 0 and floor["timeouts"] == 0, step
    assert all(row["floor_ratio"] > 0 for row in report if row["floor"] is not None)
