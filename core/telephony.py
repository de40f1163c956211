"""The Twilio layer: signed webhooks, and a carrier that places calls and texts.

With Twilio credentials the carrier is the official client (pointed at
``TWILIO_API_BASE_URL`` when set, e.g. a mock in tests); without them, a
simulated carrier records calls and texts in Redis instead of sending them.
"""

from __future__ import annotations

import functools
import hmac
import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import redis
import requests
from flask import abort, current_app, request
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from urllib3.exceptions import MaxRetryError, NewConnectionError
from werkzeug.datastructures import MultiDict

from core.errors import CarrierUnavailable, Conflict, ServiceError
from store import keys

F = TypeVar("F", bound=Callable[..., Any])

# Twilio error codes that mean "this recipient will not take our texts".
OPTED_OUT_ERRORS = {21610}
# Seconds to wait on Twilio's API: to connect (its edge answers within milliseconds,
# so longer means unreachable), then for its answer. A call or text Twilio took but
# answered late may still go out, so the wait for the answer is generous.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
CALL_STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
# The account the simulated carrier (and the terminal phone playing Twilio) speaks for
# when no TWILIO_ACCOUNT_SID is configured; webhooks in simulation carry it as AccountSid.
SIMULATED_ACCOUNT_SID = "AC" + "0" * 32


def account_sid(config: dict[str, Any]) -> str:
    """The AccountSid webhooks carry: the configured account, or the simulated one."""
    return str(config.get("TWILIO_ACCOUNT_SID") or SIMULATED_ACCOUNT_SID)


# Webhook signatures ------------------------------------------------------------


def webhook_url() -> str:
    """The URL Twilio signed: our public origin, the path and the query string."""
    base = current_app.config["PUBLIC_BASE_URL"]
    query = request.query_string.decode("latin-1")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


class _SignedParams:
    """A form as RequestValidator reads it: the names, and all values of each.

    The validator asks for ``getall`` first and, on a Flask form, reaches
    ``getlist`` only through two AttributeErrors per parameter; this spares them.
    """

    def __init__(self, form: MultiDict[str, str]) -> None:
        self._form = form

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def getall(self, name: str) -> list[str]:
        return self._form.getlist(name)


def is_signed_by_twilio() -> bool:
    """Whether ``X-Twilio-Signature`` matches this request under our auth token.

    Twilio signs the URL exactly as we handed it out, so one signature over that
    URL settles nearly every request. Only when it does not match does the
    validator's full check run, which also tries the URL with and without an
    explicit port: the same requests are accepted either way.
    """
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    validator = RequestValidator(token)
    url, params = webhook_url(), _SignedParams(request.form)
    expected = validator.compute_signature(url, params)
    if hmac.compare_digest(expected.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, params, signature))


def twilio_webhook(view: F) -> F:
    """Refuse (403) any request not signed by Twilio for our public URL."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not is_signed_by_twilio():
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapper)


# Outbound calls and texts ------------------------------------------------------


class RecipientOptedOut(Conflict):
    code = "recipient_opted_out"


class CarrierTimedOut(CarrierUnavailable):
    """Twilio may have taken the request but did not answer (in time): it may carry it out."""


@dataclass(frozen=True)
class PlacedCall:
    sid: str
    status: str


class Carrier(Protocol):
    """What the service needs from the phone network."""

    def place_call(
        self,
        *,
        to: str,
        url: str,
        status_callback: str,
        timeout: int,
        time_limit: int,
        machine_detection: bool,
    ) -> PlacedCall: ...

    def send_sms(
        self,
        *,
        to: str,
        body: str,
        status_callback: str | None = None,
        validity_period: int | None = None,
    ) -> str: ...

    def redact_message(self, sid: str) -> None: ...


def _carrier_error(exc: Exception) -> ServiceError:
    if isinstance(exc, TwilioRestException) and exc.code in OPTED_OUT_ERRORS:
        return RecipientOptedOut("the recipient has opted out of texts from this number")
    if _may_have_reached_twilio(exc):
        return CarrierTimedOut("the phone carrier did not answer in time, try again")
    return CarrierUnavailable("the phone carrier is unavailable, try again")


def _may_have_reached_twilio(exc: Exception) -> bool:
    """Whether the request may have been carried out although it failed.

    Not when Twilio answered with an error, nor when no connection was made; any
    failure once the request was on its way (no answer in time, the connection
    dropped, a broken answer) leaves it unknown.
    """
    if isinstance(exc, TwilioException | requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else None
        never_connected = isinstance(cause, MaxRetryError) and isinstance(
            cause.reason, NewConnectionError
        )
        return not never_connected
    return True


class TwilioCarrier:
    """The real carrier, through Twilio's official client."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base_url: str | None = None,
        timeout: float | tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    ) -> None:
        http_client = TwilioHttpClient()
        # Passed on to requests, which takes (connect, read); the constructor takes a number only.
        http_client.timeout = timeout
        self.client = Client(account_sid, auth_token, http_client=http_client)
        if api_base_url:
            self.client.api.base_url = api_base_url.rstrip("/")
        self.from_number = from_number

    def place_call(
        self,
        *,
        to: str,
        url: str,
        status_callback: str,
        timeout: int,
        time_limit: int,
        machine_detection: bool,
    ) -> PlacedCall:
        try:
            call = self.client.calls.create(
                to=to,
                from_=self.from_number,
                url=url,
                method="POST",
                status_callback=status_callback,
                status_callback_method="POST",
                status_callback_event=CALL_STATUS_EVENTS,
                timeout=timeout,
                time_limit=time_limit,
                **({"machine_detection": "Enable"} if machine_detection else {}),
            )
        except (TwilioException, requests.RequestException) as exc:
            raise _carrier_error(exc) from None
        return PlacedCall(sid=str(call.sid), status=str(call.status or "queued"))

    def send_sms(
        self,
        *,
        to: str,
        body: str,
        status_callback: str | None = None,
        validity_period: int | None = None,
    ) -> str:
        options: dict[str, Any] = {}
        if status_callback:
            options["status_callback"] = status_callback
        if validity_period:
            options["validity_period"] = validity_period
        try:
            message = self.client.messages.create(
                to=to, from_=self.from_number, body=body, **options
            )
        except (TwilioException, requests.RequestException) as exc:
            raise _carrier_error(exc) from None
        return str(message.sid)

    def redact_message(self, sid: str) -> None:
        try:
            self.client.messages(sid).update(body="")
        except (TwilioException, requests.RequestException) as exc:
            raise _carrier_error(exc) from None


class SimulatedCarrier:
    """Records calls and texts in Redis, where every worker and ``flask phone`` sees them.

    The terminal phone (``phone/``) plays the network's other side: it answers the
    recorded calls and receives the recorded texts, and notes here what became of them.
    """

    # Recent history only: a development log, not an archive.
    KEEP = 200
    TTL = 24 * 3600

    def __init__(
        self,
        redis_client: redis.Redis,
        from_number: str,
        account_sid: str = SIMULATED_ACCOUNT_SID,
    ) -> None:
        self.redis = redis_client
        self.from_number = from_number
        self.account_sid = account_sid

    def _record(self, kind: str, item: dict[str, Any]) -> None:
        key = keys.simulated(kind)
        pipe = self.redis.pipeline()
        pipe.lpush(key, json.dumps(item))
        pipe.ltrim(key, 0, self.KEEP - 1)
        pipe.expire(key, self.TTL)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise CarrierUnavailable("the simulated carrier is unavailable") from exc

    def place_call(
        self,
        *,
        to: str,
        url: str,
        status_callback: str,
        timeout: int,
        time_limit: int,
        machine_detection: bool,
    ) -> PlacedCall:
        sid = "CA" + secrets.token_hex(16)
        self._record(
            "calls",
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": self.from_number,
                "url": url,
                "status_callback": status_callback,
                "status_callback_events": CALL_STATUS_EVENTS,
                "timeout": timeout,
                "time_limit": time_limit,
                "machine_detection": machine_detection,
                "at": time.time(),
            },
        )
        return PlacedCall(sid=sid, status="queued")

    def send_sms(
        self,
        *,
        to: str,
        body: str,
        status_callback: str | None = None,
        validity_period: int | None = None,
    ) -> str:
        sid = "SM" + secrets.token_hex(16)
        self._record(
            "messages",
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": self.from_number,
                "body": body,
                "status_callback": status_callback,
                "validity_period": validity_period,
                "at": time.time(),
            },
        )
        return sid

    def redact_message(self, sid: str) -> None:
        self._record("redactions", {"sid": sid, "at": time.time()})

    def recorded(self, kind: str) -> Sequence[dict[str, Any]]:
        """What was recorded, newest first."""
        return [
            json.loads(item)
            for item in cast(list[str], self.redis.lrange(keys.simulated(kind), 0, -1))
        ]

    # What became of each call and text on the network's side ("answered", "ended",
    # "delivered", ...), one hash per kind: ``keys.simulated("calls:state")``.

    def claim(self, kind: str, sid: str, state: str) -> bool:
        """Set the state of a call or text only if it has none yet; whether it was set."""
        key = keys.simulated(f"{kind}:state")
        pipe = self.redis.pipeline()
        pipe.hsetnx(key, sid, state)
        pipe.expire(key, self.TTL)
        claimed, _ = pipe.execute()
        return bool(claimed)

    def set_state(self, kind: str, sid: str, state: str) -> None:
        """Record the state of a call or text."""
        key = keys.simulated(f"{kind}:state")
        pipe = self.redis.pipeline()
        pipe.hset(key, sid, state)
        pipe.expire(key, self.TTL)
        pipe.execute()

    def states(self, kind: str) -> dict[str, str]:
        """The state of every call or text that has one, by SID."""
        return cast(dict[str, str], self.redis.hgetall(keys.simulated(f"{kind}:state")))


def make_carrier(config: dict[str, Any], redis_client: redis.Redis) -> Carrier:
    """The real carrier when Twilio credentials are set, else the simulated one."""
    if config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN"):
        return TwilioCarrier(
            config["TWILIO_ACCOUNT_SID"],
            config["TWILIO_AUTH_TOKEN"],
            config["TWILIO_FROM_NUMBER"],
            config.get("TWILIO_API_BASE_URL"),
        )
    return SimulatedCarrier(redis_client, config["TWILIO_FROM_NUMBER"], account_sid(config))
