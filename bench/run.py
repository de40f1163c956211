"""Load the hot webhooks under gunicorn and real Redis, beside a bare Flask baseline.

    scripts/bench [--seconds 10] [--rounds 1] [--connections 8] [--only answer,help]

For each step it reports throughput and p50/p99 latency from wrk, the same for a
bare Flask endpoint rendering equivalent TwiML under the same gunicorn settings
(in the same run), their ratio, and how many Redis commands one request of the
step sends (and how many more run inside the Lua scripts it calls). Traffic goes
to 127.0.0.1 only, and every wrk run is bounded by --seconds.

Every request wrk sends meets the state a real one would: each voice request
names its own call session (created beforehand through ``ivr.session``), and
each text comes from a sender still well inside the inbound limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import re
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis
import requests
from cryptography.fernet import Fernet
from flask import Flask
from twilio.request_validator import RequestValidator

from ivr.challenge import CODE_LIFETIME
from phone.webhooks import inbound_text_form
from tests import servers

PUBLIC_BASE_URL = "https://codeword.example.com"
AUTH_TOKEN = "bench-auth-token"
SECRET_KEY = "bench-secret-key"
ACCOUNT_SID = "AC" + "b" * 32
OUR_NUMBER = "+15005550006"

# Targets the service is held to (see README, "Performance").
TARGET_RATIO = 0.6
TARGET_P99_MS = 20.0
TARGET_REDIS_COMMANDS = 3

# Requests prepared per second of load: comfortably more than the service answers,
# so no request has to reuse a session or sender another one already used.
REQUESTS_PER_SECOND_PREPARED = 4000
# Redis commands the counting itself sends, and those a new connection sends once
# before its first command: neither belongs to the request.
_OWN_COMMANDS = {"info", "config|resetstat", "config", "monitor", "echo"}
_CONNECTION_SETUP = {"hello", "client|setinfo", "client", "auth", "select"}
# Above this share of the CPU taken by other processes, a run's figures are flagged.
NOISY_NEIGHBOURS = 0.1
# Requests sent before counting, so that connections are open and scripts loaded.
WARM_UP_REQUESTS = 20
_END_OF_REQUEST = "bench:end-of-request"


@dataclass(frozen=True)
class SignedRequest:
    """A webhook request as Twilio would send it: path with query, form, signature."""

    path: str
    form: dict[str, str]
    signature: str


@dataclass(frozen=True)
class Prepared:
    """Requests for one step, and text the first one's response must contain.

    The first request is the one whose Redis commands are counted, after the
    warm-up requests; wrk sends the rest.
    """

    requests: list[SignedRequest]
    expect: str
    warm_up: list[SignedRequest] | None = None

    def split(self) -> tuple[SignedRequest, list[SignedRequest], list[SignedRequest]]:
        """(the counted request, the warm-up requests, the requests left for wrk)."""
        first, rest = self.requests[0], self.requests[1:]
        if self.warm_up is not None:
            return first, self.warm_up, rest or [first]
        if len(rest) <= WARM_UP_REQUESTS:
            # A stateless step (or a tiny run): the same requests serve every purpose.
            return first, self.requests[:WARM_UP_REQUESTS], rest or [first]
        return first, rest[:WARM_UP_REQUESTS], rest[WARM_UP_REQUESTS:]


@dataclass(frozen=True)
class Scenario:
    """One webhook step: how to prepare requests, and the baseline to compare with."""

    name: str
    baseline_path: str
    prepare: Callable[[Setup, int], Prepared]
    # False: count the step's Redis commands, but do not load it (see its note).
    load: bool = True
    note: str = ""
    # The baseline plus the signature check and one Redis round trip (bench/bare_app.py),
    # loaded with --floor; None for a step that needs no state.
    floor_path: str | None = None


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


@dataclass(frozen=True)
class Commands:
    """Redis commands one request caused, as Redis itself counted them."""

    sent: int  # sent by the service: an EVALSHA counts one, however much its script does
    in_scripts: int  # run by the Lua scripts those commands called
    names: list[str] = field(default_factory=list)


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


# The service's environment and how to sign for it -------------------------------------


class Setup:
    """Redis, the service's environment, the app (to prepare state) and a signer."""

    def __init__(self, redis_url: str, workdir: Path) -> None:
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.env = {
            "APP_ENV": "development",
            "SECRET_KEY": SECRET_KEY,
            "CODEWORD_KEYS": Fernet.generate_key().decode(),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": OUR_NUMBER,
            "REDIS_URL": redis_url,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "INSTANCE_PATH": str(workdir / "instance"),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        }
        # Worker settings pass through from the caller's environment.
        for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_WORKER_CLASS"):
            if os.environ.get(name):
                self.env[name] = os.environ[name]
        self.validator = RequestValidator(AUTH_TOKEN)
        self._workdir = workdir
        self._app: Flask | None = None
        self.sessions_made = 0

    def sign(self, path: str, form: dict[str, str]) -> SignedRequest:
        """Sign ``form`` for our public URL + ``path`` exactly as Twilio does."""
        url = PUBLIC_BASE_URL + path
        return SignedRequest(path, form, self.validator.compute_signature(url, form))

    @property
    def app(self) -> Flask:
        """The service, built in this process with the benchmark's environment."""
        if self._app is None:
            # This process's metrics go apart from the servers' (which empty theirs at start).
            own_metrics = self._workdir / "setup-metrics"
            own_metrics.mkdir(exist_ok=True)
            os.environ.update({**self.env, "PROMETHEUS_MULTIPROC_DIR": str(own_metrics)})
            from service import create_app

            self._app = create_app()
            self._app.extensions["directory"].create_all()
        return self._app


def gunicorn_settings(env: dict[str, str]) -> dict[str, Any]:
    """The worker settings gunicorn.conf.py arrives at under ``env``."""
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        conf = runpy.run_path(str(servers.REPO / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {name: conf.get(name) for name in ("workers", "threads", "worker_class")}


# Webhook forms, with the fields Twilio sends --------------------------------------------


def voice_form(call_sid: str, to: str, **extra: str) -> dict[str, str]:
    """A voice webhook's form for an outbound call of ours, answered."""
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "in-progress",
        "Called": to,
        "CalledCountry": "US",
        "Caller": OUR_NUMBER,
        "CallerCountry": "US",
        "Direction": "outbound-api",
        "From": OUR_NUMBER,
        "FromCountry": "US",
        "To": to,
        "ToCountry": "US",
        **extra,
    }


def sms_form(sender: str, body: str, index: int) -> dict[str, str]:
    """An inbound text's form, as Twilio posts it."""
    form = inbound_text_form(
        account_sid=ACCOUNT_SID, sid=f"SM{index:032x}", from_number=sender, to=OUR_NUMBER, body=body
    )
    return {**form, "FromCountry": "US", "ToCountry": "US"}


# Preparing each step's requests -----------------------------------------------------------


def office_number(index: int) -> str:
    """A distinct valid US number for each index (10 area codes x 10,000)."""
    area = ("202", "212", "213", "312", "415", "503", "617", "702", "718", "808")[index % 10]
    return f"+1{area}555{(index // 10) % 10_000:04d}"


def sender_number(index: int) -> str:
    """A distinct valid US cell number for each index, none of them in the directory."""
    area = ("303", "404", "512", "602", "619", "704", "713", "801", "916", "972")[index % 10]
    return f"+1{area}555{(index // 10) % 10_000:04d}"


@dataclass(frozen=True)
class PlacedCall:
    """A verification call session as the support API leaves it once the call is placed."""

    session_id: str
    practice_id: str
    call_sid: str
    to: str


def _place_calls(redis_url: str, first: int, count: int, answered: bool) -> list[PlacedCall]:
    """Create sessions ``first`` to ``first + count`` through ``ivr.session``.

    Each has its own practice (so none waits for another's live call) and a
    random challenge code known only as its hash.
    """
    from ivr import challenge, session
    from store.redis_client import connect

    client = connect(redis_url)
    now = time.time()
    calls = []
    for i in range(first, first + count):
        session_id = f"VC{i:08d}{os.urandom(12).hex()}"
        practice_id = f"bench-practice-{i}"
        to = office_number(i)
        code = challenge.new_code()
        fields = {
            "practice_id": practice_id,
            "practice_name": "Bright Smiles Dental",
            "language": "en",
            "to": to,
            "actor": "bench",
            "requested_by": "Dr. Ana Ruiz (owner)",
            "status": "queued",
            "created_at": repr(now),
            "expires_at": repr(now + challenge.CODE_LIFETIME),
            "code_hash": challenge.code_hash(SECRET_KEY, session_id, code),
            "wrong_codes": "0",
            "silences": "0",
            "repeats": "0",
        }
        verdict, _ = session.reserve(
            client,
            session_id=session_id,
            practice_id=practice_id,
            idempotency_redis_key=None,
            now=now,
            lifetime=challenge.CODE_LIFETIME,
            fields=fields,
        )
        if verdict != "created":
            raise RuntimeError(f"could not create call session {i}: {verdict}")
        call_sid = f"CA{i:032x}"
        session.mark_placed(client, session_id, practice_id, call_sid, "queued")
        if answered:
            call = session.CallerCheck(session_id=session_id, call_sid=call_sid, to=to)
            reply = session.answer(client, call, machine=False, now=now)
            if reply["verdict"] != "answered":
                raise RuntimeError(f"could not answer call session {i}: {reply}")
        calls.append(PlacedCall(session_id, practice_id, call_sid, to))
    client.close()
    return calls


def placed_calls(
    setup: Setup, count: int, *, answered: bool, endpoint: str
) -> list[tuple[PlacedCall, str]]:
    """``count`` placed calls (answered, if asked), each with its ``endpoint`` callback path.

    Sessions are created in a process per core; the paths carry callback tokens
    signed exactly as the service signs them.
    """
    from ivr import tokens

    # Numbered on from the last step's, so that no two sessions share a practice.
    first, setup.sessions_made = setup.sessions_made, setup.sessions_made + count
    workers = min(os.cpu_count() or 1, max(1, count // 500))
    chunk = -(-count // workers)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [
            pool.submit(
                _place_calls, setup.redis_url, start, min(chunk, first + count - start), answered
            )
            for start in range(first, first + count, chunk)
        ]
        calls = [call for future in futures for call in future.result()]
    with setup.app.test_request_context():
        return [
            (
                call,
                _path_of(
                    tokens.callback_url(
                        endpoint,
                        tokens.sign(tokens.CallRef(call.session_id, call.practice_id, "en")),
                    )
                ),
            )
            for call in calls
        ]


def _path_of(url: str) -> str:
    assert url.startswith(PUBLIC_BASE_URL + "/"), url
    return url[len(PUBLIC_BASE_URL) :]


def inbound_call(setup: Setup, count: int) -> Prepared:
    """Someone calls our number: the same stateless answer each time."""
    form = voice_form("CA" + "1" * 32, OUR_NUMBER, CallStatus="ringing", Direction="inbound")
    form["From"] = form["Caller"] = "+12025550100"
    return Prepared([setup.sign("/ivr/inbound", form)], "verification line")


def answer_step(setup: Setup, count: int) -> Prepared:
    """A person answers a placed verification call: greet and ask for the code."""
    calls = placed_calls(setup, count, answered=False, endpoint="ivr.verification_answer")
    prepared = [
        setup.sign(path, voice_form(call.call_sid, call.to, AnsweredBy="human"))
        for call, path in calls
    ]
    return Prepared(prepared, "enter the six digit code")


def challenge_step(setup: Setup, count: int) -> Prepared:
    """A wrong code keyed in on an answered call: say so and ask again (two tries left)."""
    calls = placed_calls(setup, count, answered=True, endpoint="ivr.verification_code")
    # Every session's code is random: a fixed guess is wrong but for one in a million.
    prepared = [
        setup.sign(path, voice_form(call.call_sid, call.to, Digits="000000", FinishedOnKey=""))
        for call, path in calls
    ]
    return Prepared(prepared, "2 more tries")


def text_from_unknown_sender(setup: Setup, count: int) -> Prepared:
    """CODEWORD from a number that is no admin's verified cell: the generic reply."""
    prepared = [
        setup.sign("/sms/inbound", sms_form(sender_number(i), "codeword ", i)) for i in range(count)
    ]
    return Prepared(prepared, "only to a practice admin")


def help_text(setup: Setup, count: int) -> Prepared:
    """HELP from any number: the help text."""
    prepared = [
        setup.sign("/sms/inbound", sms_form(sender_number(i), "help", i)) for i in range(count)
    ]
    return Prepared(prepared, "Text CODEWORD from your verified cell")


def text_from_admin(setup: Setup, count: int) -> Prepared:
    """CODEWORD from an admin's verified cell: the codeword by REST, nothing in reply.

    Two admins of two practices: the first one's text warms up, the second one's is counted.
    """
    directory = setup.app.extensions["directory"]
    signed = []
    for i in range(2):
        practice_id, cell = f"bench-admin-practice-{i}", f"+1202555011{i}"
        directory.put_practice(
            practice_id,
            name="Bright Smiles Dental",
            office_number=f"+1202555010{i}",
            office_number_verified=True,
            codeword="maple-otter-47",
        )
        directory.put_user(
            practice_id,
            "bench-admin",
            name="Dr. Ana Ruiz",
            role="admin",
            cell_number=cell,
            cell_number_given=True,
            cell_number_verified=True,
        )
        signed.append(setup.sign("/sms/inbound", sms_form(cell, "CODEWORD", i)))
    return Prepared([signed[1]], "<Response />", warm_up=[signed[0]])


SCENARIOS: list[Scenario] = [
    Scenario("ivr inbound", "/bare/voice/say", inbound_call),
    Scenario("voice answer", "/bare/voice/gather", answer_step, floor_path="/floor/voice/gather"),
    Scenario(
        "voice challenge", "/bare/voice/gather", challenge_step, floor_path="/floor/voice/gather"
    ),
    Scenario(
        "sms inbound codeword", "/bare/sms", text_from_unknown_sender, floor_path="/floor/sms"
    ),
    Scenario("sms inbound help", "/bare/sms", help_text, floor_path="/floor/sms"),
    Scenario(
        "sms codeword (admin)",
        "/bare/sms",
        text_from_admin,
        load=False,
        note="not loaded: 3 codeword texts per number an hour",
    ),
]


# Counting Redis commands ------------------------------------------------------------------


def _key_of(command: str) -> str:
    parts = command.split(" ")
    if parts[0].lower() in ("evalsha", "eval") and len(parts) > 3 and parts[2] != "0":
        return parts[3]
    return parts[1] if len(parts) > 1 else ""


def _simulated_carrier_commands(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commands of the simulated carrier: on its keys, with the MULTI/EXEC around them."""
    carrier: list[dict[str, Any]] = []
    transaction: list[dict[str, Any]] | None = None
    for command in seen:
        name = command["command"].split(" ")[0].lower()
        if command["client_type"] == "lua":
            continue
        if name == "multi":
            transaction = [command]
        elif name == "exec" and transaction is not None:
            inner = transaction[1:]
            if inner and all(_key_of(c["command"]).startswith("cw:sim:") for c in inner):
                carrier += [*transaction, command]
            transaction = None
        elif transaction is not None:
            transaction.append(command)
        elif _key_of(command["command"]).startswith("cw:sim:"):
            carrier.append(command)
    return carrier


def send_all(base_url: str, requests_: list[SignedRequest]) -> None:
    """Send requests one after another, as Twilio would; each must succeed."""
    with requests.Session() as http:
        for r in requests_:
            response = http.post(
                base_url + r.path,
                data=r.form,
                headers={"X-Twilio-Signature": r.signature},
                timeout=5,
            )
            response.raise_for_status()


def redis_commands_per_request(
    client: redis.Redis, base_url: str, request: SignedRequest, expect: str = ""
) -> Commands:
    """Redis commands one request causes, counted by the server itself.

    INFO commandstats gives the total, including what Lua scripts run inside
    Redis; MONITOR tells which of them the service sent. Commands of the
    simulated carrier (keys ``cw:sim:*``) stand in for Twilio's REST API and are
    left out.
    """
    seen: list[dict[str, Any]] = []
    with client.monitor() as monitor:  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        client.config_resetstat()
        response = requests.post(
            base_url + request.path,
            data=request.form,
            headers={"X-Twilio-Signature": request.signature},
            timeout=5,
        )
        client.echo(_END_OF_REQUEST)
        while True:
            command = monitor.next_command()
            name = command["command"].split(" ")[0].lower()
            if name == "echo" and _END_OF_REQUEST in command["command"]:
                break
            if name not in _OWN_COMMANDS | _CONNECTION_SETUP:
                seen.append(command)
    response.raise_for_status()
    if expect not in response.text:
        raise RuntimeError(f"{request.path}: expected {expect!r} in the response:\n{response.text}")
    stats = client.info("commandstats")
    total = sum(
        int(v["calls"])
        for name, v in stats.items()
        if name.removeprefix("cmdstat_") not in _OWN_COMMANDS | _CONNECTION_SETUP
    )
    carrier = _simulated_carrier_commands(seen)
    sent = [c for c in seen if c["client_type"] != "lua" and c not in carrier]
    if len(seen) != total:
        raise RuntimeError(f"MONITOR saw {len(seen)} commands, commandstats {total}")
    return Commands(
        sent=len(sent),
        in_scripts=total - len(carrier) - len(sent),
        names=[c["command"].split(" ")[0].upper() for c in sent],
    )


# Running wrk ------------------------------------------------------------------------------

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
    before = (cpu_seconds(server), cpu_seconds(redis_pids), _children_cpu(), machine_busy())
    result = _run_wrk(base_url, script, seconds, connections)
    after = (cpu_seconds(server), cpu_seconds(redis_pids), _children_cpu(), machine_busy())
    used = [b - a for a, b in zip(before, after, strict=True)]
    others = max(0.0, used[3] - used[0] - used[1] - used[2])
    return dataclasses.replace(
        result,
        cpu_ms_per_request=1000 * used[0] / max(1, result.requests),
        others_cpu_share=others / (seconds * (os.cpu_count() or 1)),
    )


# CPU accounting, from /proc ------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, ..."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _processes(name: bytes, bind: str) -> list[int]:
    """Processes whose command line names ``name`` and ``bind`` (host:port)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if name in cmdline and bind.encode() in cmdline:
            found.append(int(entry.name))
    return found


def server_pids(base_url: str) -> list[int]:
    """The gunicorn master serving ``base_url`` and its workers (which share its command)."""
    return _processes(b"gunicorn", base_url.removeprefix("http://") + " ")


def redis_pids(redis_url: str) -> list[int]:
    """The redis-server at ``redis_url``."""
    host_port = redis_url.removeprefix("redis://").split("/")[0]
    return _processes(b"redis-server", host_port)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes used so far."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / _TICKS


# The report -------------------------------------------------------------------------------


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


@contextmanager
def services(setup: Setup, workdir: Path) -> Iterator[tuple[str, str]]:
    """The service and the bare baseline, under the same gunicorn settings."""
    bare_env = {**setup.env, "PROMETHEUS_MULTIPROC_DIR": str(workdir / "bare-metrics")}
    with (
        servers.gunicorn_server(setup.env) as service,
        servers.gunicorn_server(bare_env, app="bench.bare_app:app") as bare,
    ):
        yield service, bare


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
    out: Callable[[str], None] = print,
) -> list[Row]:
    """Run every scenario (or those named in ``only``); print and return the report."""
    wanted = [part.strip() for part in (only or "").split(",") if part.strip()]
    scenarios = [s for s in SCENARIOS if not wanted or any(w in s.name for w in wanted)]
    rows: list[Row] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        redis_proc = stack.enter_context(servers.RedisProcess())
        setup = Setup(redis_proc.url, workdir)
        setup.app  # noqa: B018 (creates the tables before gunicorn starts)
        service, bare = stack.enter_context(services(setup, workdir))
        redis = redis_pids(redis_proc.url)
        settings = gunicorn_settings(setup.env)
        out(f"machine: {machine_description()}")
        out(
            f"gunicorn: {settings['workers']} workers x {settings['threads']} threads "
            f"({settings['worker_class']}); wrk: {WRK_THREADS} threads, {connections} "
            f"connections, {rounds} x {seconds} s per side and step; Redis and SQLite on the same "
            "machine\n"
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
