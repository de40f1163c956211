"""Real servers for tests: Redis, Prism (Twilio API), a recording fake, gunicorn.

Each starts on a free loopback port, waits until it answers, and stops cleanly.

    with redis_server() as redis_url, recording_fake() as (fake_url, sent):
        with prism(mode="proxy", upstream=fake_url) as twilio_url:
            ...  # point TWILIO_API_BASE_URL at twilio_url; sent[0].form["To"]
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent
PRISM_BIN = REPO / ".cache" / "prism" / "node_modules" / ".bin" / "prism"
HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_until(check: Any, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll check() until it returns true; raise if proc exits or timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError, requests.RequestException):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not answer within {timeout:.0f} s")


def _stop_group(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 10
) -> None:
    """Signal the process group of proc; SIGKILL it if still alive after grace s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        # The leader is gone; make sure no child of it survives.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _log_tail(path: Path, lines: int = 30) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _process(
    cmd: list[str],
    what: str,
    ready: Any,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
) -> Iterator[Path]:
    """Run cmd in a new process group, output to a log; yield the log once ready()."""
    with tempfile.TemporaryDirectory(prefix="test-server-") as tmp:
        log_path = Path(tmp) / "output.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            try:
                _wait_until(ready, timeout, what, proc)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}; its output:\n{_log_tail(log_path)}") from None
            yield log_path
        finally:
            _stop_group(proc)


# --- Redis ----------------------------------------------------------------------------


def _redis_ping(port: int) -> bool:
    """True when a Redis server on port answers PING with PONG."""
    with socket.create_connection((HOST, port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


class _ServerProcess:
    """A server on a fixed loopback port, in its own folder, that a test can stop and restart.

    Subclasses say how to launch it (``_command``), when it is ready (``_ready``) and
    which signal stops it.
    """

    name = "server"
    stop_signal = signal.SIGTERM
    start_timeout = 10.0

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix=f"test-{self.name}-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return Path(self._dir.name) / f"{self.name}.log"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float | None = None) -> None:
        """Start the server (again) on the same port and wait until it answers."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until(self._ready, timeout or self.start_timeout, self.name, self._proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}; its log:\n{_log_tail(self.log_path)}") from None

    def stop(self, kill: bool = False) -> None:
        """Stop the server; kill=True sends SIGKILL, as a crash would."""
        if self._proc is not None:
            _stop_group(self._proc, signal.SIGKILL if kill else self.stop_signal)
            self._proc = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisProcess(_ServerProcess):
    """A throwaway redis-server; can stop and restart on the same port."""

    name = "redis"

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.url = f"redis://{HOST}:{self.port}/0"

    def _command(self) -> list[str]:
        redis = shutil.which("redis-server")
        if redis is None:
            raise RuntimeError("redis-server not found on PATH; run scripts/bootstrap")
        return [redis, "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", self._dir.name]  # fmt: skip

    def _ready(self) -> bool:
        return _redis_ping(self.port)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Run a throwaway redis-server; yield its URL (RedisProcess can restart)."""
    with RedisProcess() as server:
        yield server.url


# --- Prism ----------------------------------------------------------------------------


def patched_spec() -> Path:
    """Path of the Prism-friendly Twilio spec (scripts/prism_spec.py), fresh."""
    module_spec = importlib.util.spec_from_file_location(
        "prism_spec", REPO / "scripts" / "prism_spec.py"
    )
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return Path(module.ensure_patched_spec())


@contextlib.contextmanager
def prism(mode: str = "mock", upstream: str | None = None, timeout: float = 30) -> Iterator[str]:
    """Run Prism on Twilio's spec as "mock" or "proxy" to upstream; yield its URL.

    Requests need HTTP basic auth (any account SID and token). Invalid ones get 422.
    """
    if not PRISM_BIN.exists():
        raise RuntimeError(f"{PRISM_BIN} not found; run scripts/bootstrap --dev")
    port = free_port()
    cmd = [str(PRISM_BIN), mode, "-h", HOST, "-p", str(port)]
    if mode == "mock":
        cmd.append(str(patched_spec()))
    elif mode == "proxy":
        if not upstream:
            raise ValueError("prism(mode='proxy') needs an upstream URL")
        cmd += ["--errors", str(patched_spec()), upstream]
    else:
        raise ValueError(f"unknown Prism mode: {mode!r}")
    url = f"http://{HOST}:{port}"

    def ready() -> bool:
        requests.get(f"{url}/", timeout=2)  # any HTTP answer means it is serving
        return True

    with _process(cmd, f"prism {mode}", ready, timeout):
        yield url


# --- Recording fake of Twilio's REST API ----------------------------------------------


@dataclass
class RecordedRequest:
    """One request the fake received (header names in lower case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    form_lists: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """Form fields with their first value (use form_lists for repeated ones)."""
        return {name: values[0] for name, values in self.form_lists.items()}


@dataclass
class CannedResponse:
    """A response queued by a test for the next request."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class TwilioRecorder(list[RecordedRequest]):
    """The requests the fake received, in order; also queues canned responses."""

    def __init__(self) -> None:
        super().__init__()
        self._canned: list[CannedResponse] = []
        self._lock = threading.Lock()

    def queue_response(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next request with status and JSON body (after delay seconds)."""
        with self._lock:
            self._canned.append(CannedResponse(status, body, headers or {}, delay))

    def queue_error(
        self,
        status: int = 400,
        code: int = 21610,
        message: str = "Attempt to send to unsubscribed recipient",
    ) -> None:
        """Answer the next request with a Twilio error JSON document."""
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        self.queue_response(status, body)

    def next_canned(self) -> CannedResponse | None:
        """Pop the next queued response, if any."""
        with self._lock:
            return self._canned.pop(0) if self._canned else None

    def paths(self) -> list[str]:
        """Method and path of each request, e.g. "POST /2010-04-01/.../Calls.json"."""
        return [f"{r.method} {r.path}" for r in self]


def _sid(prefix: str) -> str:
    """A random Twilio-style SID."""
    return prefix + secrets.token_hex(16)


def _twilio_date() -> str:
    """Now in Twilio's RFC 2822 date format."""
    return format_datetime(datetime.now(UTC))


def _call_json(account: str, sid: str, form: dict[str, str], status: str) -> dict[str, Any]:
    """A call resource as Twilio returns it."""
    now = _twilio_date()
    uri = f"/2010-04-01/Accounts/{account}/Calls/{sid}.json"
    return {
        "sid": sid,
        "account_sid": account,
        "to": form.get("To"),
        "from": form.get("From"),
        "status": status,
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": now,
        "date_updated": now,
        "start_time": None,
        "end_time": None,
        "duration": None,
        "price": None,
        "price_unit": "USD",
        "answered_by": None,
        "parent_call_sid": None,
        "uri": uri,
        "subresource_uris": {},
    }


def _message_json(account: str, sid: str, form: dict[str, str], status: str) -> dict[str, Any]:
    """A message resource as Twilio returns it."""
    now = _twilio_date()
    return {
        "sid": sid,
        "account_sid": account,
        "to": form.get("To"),
        "from": form.get("From"),
        "body": form.get("Body", ""),
        "status": status,
        "direction": "outbound-api",
        "num_segments": "1",
        "num_media": "0",
        "api_version": "2010-04-01",
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "messaging_service_sid": None,
        "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
        "subresource_uris": {},
    }


def _twilio_answer(method: str, path: str, form: dict[str, str]) -> tuple[int, Any]:
    """Default status and JSON for a request to Twilio's Calls/Messages API."""
    parts = path.strip("/").split("/")
    # ["2010-04-01", "Accounts", AC..., "Calls" | "Messages", [SID.json] | "Calls.json"]
    if len(parts) >= 4 and parts[:2] == ["2010-04-01", "Accounts"]:
        account, resource = parts[2], parts[3:]
        if resource == ["Calls.json"] and method == "POST":
            return 201, _call_json(account, _sid("CA"), form, "queued")
        if resource == ["Messages.json"] and method == "POST":
            return 201, _message_json(account, _sid("SM"), form, "queued")
        if len(resource) == 2 and resource[1].endswith(".json"):
            sid = resource[1].removesuffix(".json")
            if method == "DELETE":
                return 204, None
            if resource[0] == "Calls":
                return 200, _call_json(account, sid, form, form.get("Status", "in-progress"))
            if resource[0] == "Messages":
                return 200, _message_json(account, sid, form, "delivered")
    return 404, {
        "code": 20404,
        "message": f"The requested resource {path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


def _handler_for(recorder: TwilioRecorder) -> type[BaseHTTPRequestHandler]:
    """A request handler class that records into recorder and answers like Twilio."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            form_lists = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            request = RecordedRequest(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                form_lists=form_lists,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            recorder.append(request)
            canned = recorder.next_canned()
            if canned is not None:
                time.sleep(canned.delay)
                status, payload, headers = canned.status, canned.body, canned.headers
            else:
                status, payload = _twilio_answer(self.command, split.path, request.form)
                headers = {}
            data = b"" if payload is None else json.dumps(payload).encode()
            # A client that gave up waiting for a delayed answer has hung up by now.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = _handle

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler


@contextlib.contextmanager
def recording_fake() -> Iterator[tuple[str, TwilioRecorder]]:
    """Run a fake Twilio REST API in a thread; yield (base URL, its requests)."""
    recorder = TwilioRecorder()
    server = ThreadingHTTPServer((HOST, 0), _handler_for(recorder))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="twilio-fake", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}", recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- gunicorn -------------------------------------------------------------------------


@dataclass(frozen=True)
class Gunicorn:
    """A running gunicorn: its URL, and the file its master and workers write to."""

    url: str
    log: Path


@contextlib.contextmanager
def gunicorn_server(
    env: Mapping[str, str],
    app: str = "wsgi:app",
    timeout: float = 20,
    cwd: str | Path = REPO,
    config: str | Path | None = REPO / "gunicorn.conf.py",
) -> Iterator[str]:
    """Run app under gunicorn with config (None: none) and extra env; yield its URL."""
    with gunicorn(env, app, timeout, cwd, config) as server:
        yield server.url


@contextlib.contextmanager
def gunicorn(
    env: Mapping[str, str],
    app: str = "wsgi:app",
    timeout: float = 20,
    cwd: str | Path = REPO,
    config: str | Path | None = REPO / "gunicorn.conf.py",
) -> Iterator[Gunicorn]:
    """Like gunicorn_server, but yield the log too (stdout and stderr of every process)."""
    url, cmd, full_env = _gunicorn_command(env, app, config)

    def ready() -> bool:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200

    with _process(cmd, f"gunicorn {app}", ready, timeout, full_env, Path(cwd)) as log:
        yield Gunicorn(url, log)


def _gunicorn_command(
    env: Mapping[str, str], app: str, config: str | Path | None
) -> tuple[str, list[str], dict[str, str]]:
    """The URL, command line and environment of a gunicorn on a free loopback port."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}"]
    if config is not None:
        cmd += ["-c", str(config)]
    cmd.append(app)
    return f"http://{HOST}:{port}", cmd, {**os.environ, **env, "HOST": HOST, "PORT": str(port)}


def gunicorn_output(
    env: Mapping[str, str],
    while_running: Callable[[str], None] = lambda url: None,
    timeout: float = 20,
    cwd: Path = REPO,
) -> str:
    """Start gunicorn with the repo's config, call ``while_running(url)``, stop it with
    SIGTERM to its master as a platform does, and return everything its processes printed.

    Started in ``cwd``; the app is loaded from the repo wherever that is.
    """
    url, cmd, full_env = _gunicorn_command(env, "wsgi:app", REPO / "gunicorn.conf.py")
    cmd[-1:-1] = ["--chdir", str(REPO)]

    def ready() -> bool:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200

    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until(ready, timeout, "gunicorn wsgi:app", proc)
            while_running(url)
            # The master alone, as a platform signals it; it stops its workers itself,
            # within graceful_timeout (10 s).
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        finally:
            _stop_group(proc)
        output.seek(0)
        return output.read().decode("utf-8", "replace")


# --- PostgreSQL -----------------------------------------------------------------------


def _postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program from PATH or Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def postgres_available() -> bool:
    """Whether a PostgreSQL server can be started here."""
    return bool(_postgres_bin("initdb") and _postgres_bin("postgres"))


def _pg_ready(port: int) -> bool:
    """True once the server takes a connection and answers a query."""
    import psycopg

    try:
        with psycopg.connect(
            host=HOST, port=port, user="postgres", dbname="postgres", connect_timeout=1
        ):
            return True
    except psycopg.OperationalError:
        return False


class PostgresProcess(_ServerProcess):
    """A throwaway PostgreSQL cluster; can stop and restart on the same port.

    PostgreSQL refuses to run as root; as root it runs as the ``postgres`` user
    (through setpriv, which execs in place, so signals reach the server itself).
    """

    name = "postgres"
    # A fast shutdown: open connections are cut.
    stop_signal = signal.SIGINT
    start_timeout = 20.0

    def __init__(self, port: int | None = None) -> None:
        initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
        if not initdb or not postgres:
            raise RuntimeError("PostgreSQL is not installed; run scripts/bootstrap --dev")
        super().__init__(port)
        self.postgres = postgres
        self.url = f"postgresql://postgres@{HOST}:{self.port}/postgres"
        self.data = Path(self._dir.name) / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
            shutil.chown(self._dir.name, "postgres")
        subprocess.run(
            [*self._as_user, initdb, "-D", str(self.data), "-U", "postgres",
             "-A", "trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def _command(self) -> list[str]:
        return [
            *self._as_user,
            self.postgres,
            "-D", str(self.data),
            "-p", str(self.port),
            "-k", self._dir.name,
            "-c", f"listen_addresses={HOST}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip

    def _ready(self) -> bool:
        return _pg_ready(self.port)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Run a throwaway PostgreSQL cluster on a free port; yield its SQLAlchemy URL."""
    with PostgresProcess() as server:
        yield server.url
