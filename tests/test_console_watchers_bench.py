"""The console watchers benchmark keeps working: agents sign in, call, poll; wrk loads a webhook.

A tiny run, one second per condition: the figures live in docs/console.md, not here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from devservers.processes import REPO


@pytest.mark.skipif(
    not shutil.which("wrk"), reason="wrk is not installed (scripts/bootstrap --dev)"
)
def test_a_tiny_run_reports_every_condition_with_the_agents_polls() -> None:
    command = [sys.executable, "-m", "bench.console_watchers", "--seconds", "1", "--rounds", "1"]
    command += ["--agents", "2", "--connections", "2"]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"status poll [\d.]+ ms, voice answer webhook [\d.]+ ms", out)
    rows = {line[:34].strip(): line[34:].split() for line in out.splitlines() if "  " in line}
    assert len(rows["no agents"]) == 4  # req/s, vs alone, p50, p99: no polls
    for name in ("agents watching (1 poll/s each)", "agents flat out (no pause)"):
        figures = [float(value) for value in rows[name]]
        assert len(figures) == 7 and figures[0] > 0 and figures[4] > 0, name
