"""Load the hot webhooks under gunicorn and real Redis, beside a bare Flask baseline.

    .venv/bin/python -m bench.run [--seconds 10] [--connections 8]

For each step it reports throughput and p50/p99 latency from wrk, the same for a
bare Flask endpoint rendering equivalent TwiML under the same gunicorn settings
(in the same run), their ratio, and how many Redis commands one request of the
step issues (from INFO commandstats). Traffic goes to 127.0.0.1 only, and every
wrk run is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import redis
import requests
from cryptography.fernet import Fernet
from twilio.request_validator import RequestValidator

from tests import servers

PUBLIC_BASE_URL = "https://codeword.example.com"
AUTH_TOKEN = "bench-auth-token"
SUPPORT_TOKEN = "bench-support-token"
ADMIN_TOKEN = "bench-admin-token"

# Targets the service is held to (see README, "Performance").
TARGET_RATIO = 0.6
TARGET_P99_MS = 20.0
TARGET_REDIS_COMMANDS = 3


@dataclass(frozen=True)
class SignedRequest:
    path: str
    form: dict[str, str]
    signature: str


@dataclass(frozen=True)
class Scenario:
    """One webhook step: requests to send to us, and the baseline path to compare with."""

    name: str
    baseline_path: str
    prepare: Callable[[Environment, int], list[SignedRequest]]


@dataclass(frozen=True)
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


class Environment:
    """Redis, the environment the service runs with, and a way to sign requests."""

    def __init__(self, redis_url: str, workdir: Path) -> None:
        self.redis_url = redis_url
        self.env = {
            "APP_ENV": "development",
            "SECRET_KEY": "bench-secret",
            "CODEWORD_KEYS": Fernet.generate_key().decode(),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "REDIS_URL": redis_url,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "INSTANCE_PATH": str(workdir / "instance"),
            "ADMIN_TOKENS": f"bench={ADMIN_TOKEN}",
            "SUPPORT_TOKENS": f"bench={SUPPORT_TOKEN}",
            "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        }
        self.validator = RequestValidator(AUTH_TOKEN)

    def sign(self, path: str, form: dict[str, str]) -> SignedRequest:
        return SignedRequest(
            path, form, self.validator.compute_signature(PUBLIC_BASE_URL + path, form)
        )

    def app(self):  # type: ignore[no-untyped-def]
        """The service, built in this process with the benchmark's environment."""
        os.environ.update(self.env)
        from core import create_app

        app = create_app()
        app.extensions["directory"].create_all()
        return app


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _wrk_script(requests_: list[SignedRequest], path: Path) -> None:
    """A wrk script that sends each prepared request once, split across threads."""
    from urllib.parse import urlencode

    lines = ["local reqs = {"]
    for r in requests_:
        body = urlencode(r.form)
        lines.append(
            "{"
            + ", ".join([_lua_string(r.path), _lua_string(body), _lua_string(r.signature)])
            + "},"
        )
    lines.append("}")
    lines.append(
        """
local threads = {}
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  nthreads = #threads
  i = id - 1
  if nthreads == 0 then nthreads = 2 end
end
request = function()
  i = i + (nthreads or 2)
  local r = reqs[(i % #reqs) + 1]
  return wrk.format("POST", r[1], {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = r[3],
  }, r[2])
end
"""
    )
    path.write_text("\n".join(lines))


def _parse_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(base_url: str, script: Path, seconds: int, connections: int) -> Result:
    """Run wrk and read throughput and latency percentiles from its report."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            base_url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _parse_ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _parse_ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw error responses:\n{out}")
    return Result(rps, p50, p99)


def redis_commands_per_request(client: redis.Redis, base_url: str, request: SignedRequest) -> int:
    """Redis commands one request issues, counted by the server itself."""
    client.config_resetstat()
    response = requests.post(
        base_url + request.path,
        data=request.form,
        headers={"X-Twilio-Signature": request.signature},
        timeout=5,
    )
    response.raise_for_status()
    stats = client.info("commandstats")
    # The counting itself (CONFIG RESETSTAT, INFO) is not the request's.
    return sum(
        int(v["calls"])
        for name, v in stats.items()
        if name not in {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config"}
    )


def inbound_call(env: Environment, count: int) -> list[SignedRequest]:
    form = {"CallSid": "CA" + "0" * 32, "From": "+12025550100", "To": "+15005550006"}
    return [env.sign("/ivr/inbound", form)]


SCENARIOS: list[Scenario] = [
    Scenario("ivr inbound", "/bare/voice", inbound_call),
]


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: scripts/bootstrap --dev installs it", file=sys.stderr)
        return 2

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        redis_proc = stack.enter_context(servers.RedisProcess())
        env = Environment(redis_proc.url, workdir)
        client = redis.Redis.from_url(redis_proc.url)
        scenarios = [s for s in SCENARIOS if not args.only or args.only in s.name]
        prepared = {s.name: s.prepare(env, 200_000 // max(1, len(scenarios))) for s in scenarios}
        service = stack.enter_context(servers.gunicorn_server(env.env))
        bare = stack.enter_context(servers.gunicorn_server(env.env, app="bench.bare_app:app"))

        print(f"machine: {machine_description()}")
        print(
            f"gunicorn: {env.env['WEB_CONCURRENCY']} workers (gthread), wrk: 2 threads, "
            f"{args.connections} connections, {args.seconds} s per run\n"
        )
        header = (
            f"{'step':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'bare req/s':>12}{'bare p99':>10}{'ratio':>7}{'redis cmds':>12}"
        )
        print(header)
        print("-" * len(header))
        ok = True
        for scenario in scenarios:
            reqs = prepared[scenario.name]
            commands = redis_commands_per_request(client, service, reqs[0])
            script = workdir / f"{scenario.name.replace(' ', '_')}.lua"
            _wrk_script(reqs[1:] or reqs, script)
            ours = run_wrk(service, script, args.seconds, args.connections)
            baseline_req = [SignedRequest(scenario.baseline_path, reqs[0].form, "")]
            bare_script = workdir / f"bare_{scenario.name.replace(' ', '_')}.lua"
            _wrk_script(baseline_req, bare_script)
            base = run_wrk(bare, bare_script, args.seconds, args.connections)
            ratio = ours.requests_per_second / base.requests_per_second
            print(
                f"{scenario.name:<22}{ours.requests_per_second:>9.0f}{ours.p50_ms:>9.2f}"
                f"{ours.p99_ms:>9.2f}{base.requests_per_second:>12.0f}{base.p99_ms:>10.2f}"
                f"{ratio:>7.2f}{commands:>12}"
            )
            ok &= (
                ratio >= TARGET_RATIO
                and ours.p99_ms <= TARGET_P99_MS
                and commands <= TARGET_REDIS_COMMANDS
            )
        print(
            f"\ntargets: ratio >= {TARGET_RATIO}, p99 <= {TARGET_P99_MS:.0f} ms, "
            f"<= {TARGET_REDIS_COMMANDS} Redis commands per step: {'met' if ok else 'NOT met'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
