"""A fake of Twilio's REST API that records every request, for Prism to proxy to.

with recording_fake() as (fake_url, sent), prism("proxy", fake_url) as twilio_url:
    ...  # point TWILIO_API_BASE_URL at twilio_url; sent[0].form["To"]
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devservers.processes import HOST


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
