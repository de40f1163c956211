"""Running wrk: the prepared requests in turn, bounded in time; its figures read back."""

from __future__ import annotations

import dataclasses
import os
import re
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from bench.cpu import children_cpu, cpu_seconds, machine_busy, server_pids
from bench.setup import SignedRequest


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    timeouts: int
    # CPU the server's processes used per request: unlike throughput, barely moved
    # by whatever else the machine runs meanwhile.
    cpu_ms_per_request: float = 0.0
    # Share of the machine's CPU that processes other than the server, wrk and
    # Redis took during the run: a noisy neighbour makes every figure worse.
    others_cpu_share: float = 0.0


def median_result(results: list[Result]) -> Result:
    """Several runs of one side as one: medians, with every request counted."""
    return Result(
        requests_per_second=statistics.median(r.requests_per_second for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        requests=sum(r.requests for r in results),
        timeouts=sum(r.timeouts for r in results),
        cpu_ms_per_request=statistics.median(r.cpu_ms_per_request for r in results),
        others_cpu_share=max(r.others_cpu_share for r in results),
    )


# Reads the prepared requests (path, body, signature; one per line) and sends them
# in turn, each wrk thread taking every n-th so that no two send the same one.
_WRK_SCRIPT = """
local reqs = {}
for line in io.lines(%(data)s) do
  local path, body, signature = line:match("^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)$")
  reqs[#reqs + 1] = {path, body, signature}
end
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
function init(args)
  stride = tonumber(args[1])
  i = id - stride
end
function request()
  i = i + stride
  local r = reqs[(i %% #reqs) + 1]
  return wrk.format("POST", r[1], {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = r[3],
  }, r[2])
end
"""

WRK_THREADS = 2


def write_wrk_script(requests_: list[SignedRequest], directory: Path, name: str) -> Path:
    """A wrk script sending ``requests_`` in turn, with its data file beside it."""
    data = directory / f"{name}.tsv"
    with data.open("w") as f:
        for r in requests_:
            f.write(f"{r.path}\t{urlencode(r.form)}\t{r.signature}\n")
    script = directory / f"{name}.lua"
    script.write_text(_WRK_SCRIPT % {"data": '"' + str(data).replace('"', '\\"') + '"'})
    return script


def _parse_ms(value: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if found is None:
        raise ValueError(value)
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _run_wrk(base_url: str, script: Path, seconds: int, connections: int) -> Result:
    """Run wrk; throughput and latency percentiles from its report."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "2s",
            "--latency",
            "-s",
            str(script),
            base_url,
            "--",
            str(WRK_THREADS),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error responses:\n{out}")
    found = {
        "rps": re.search(r"Requests/sec:\s+([\d.]+)", out),
        # Anchored: "77.99%" in the thread stats also ends in 99%.
        "p50": re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE),
        "p99": re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE),
        "count": re.search(r"(\d+) requests in", out),
    }
    if not all(found.values()):
        raise RuntimeError(f"could not read wrk's report:\n{out}")
    timeouts = re.search(r"timeout (\d+)", out)
    try:
        return Result(
            requests_per_second=float(found["rps"].group(1)),  # type: ignore[union-attr]
            p50_ms=_parse_ms(found["p50"].group(1)),  # type: ignore[union-attr]
            p99_ms=_parse_ms(found["p99"].group(1)),  # type: ignore[union-attr]
            requests=int(found["count"].group(1)),  # type: ignore[union-attr]
            timeouts=int(timeouts.group(1)) if timeouts else 0,
        )
    except ValueError:
        raise RuntimeError(f"could not read wrk's report:\n{out}") from None


def run_wrk(
    base_url: str, script: Path, seconds: int, connections: int, redis_pids: list[int]
) -> Result:
    """Run wrk against one server; its report, with the CPU each side used."""
    server = server_pids(base_url)
    before = (cpu_seconds(server), cpu_seconds(redis_pids), children_cpu(), machine_busy())
    result = _run_wrk(base_url, script, seconds, connections)
    after = (cpu_seconds(server), cpu_seconds(redis_pids), children_cpu(), machine_busy())
    used = [b - a for a, b in zip(before, after, strict=True)]
    others = max(0.0, used[3] - used[0] - used[1] - used[2])
    return dataclasses.replace(
        result,
        cpu_ms_per_request=1000 * used[0] / max(1, result.requests),
        others_cpu_share=others / (seconds * (os.cpu_count() or 1)),
    )
