"""The phone network as the service sees it: the Carrier protocol, and Twilio's client.

With Twilio credentials the carrier is the official client (pointed at
``TWILIO_API_BASE_URL`` when set, e.g. a mock in tests); without them, the simulated
carrier (``core/simulated_carrier.py``) records calls and texts in Redis instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import redis
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import MaxRetryError, NewConnectionError

from core.errors import CarrierUnavailable, Conflict, ServiceError

# Twilio error codes that mean "this recipient will not take our texts".
OPTED_OUT_ERRORS = {21610}
# Seconds to wait on Twilio's API: to connect (its edge answers within milliseconds,
# so longer means unreachable), then for its answer. A call or text Twilio took but
# answered late may still go out, so the wait for the answer is generous.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
CALL_STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


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


def make_carrier(config: dict[str, Any], redis_client: redis.Redis) -> Carrier:
    """The real carrier when Twilio credentials are set, else the simulated one."""
    if config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN"):
        return TwilioCarrier(
            config["TWILIO_ACCOUNT_SID"],
            config["TWILIO_AUTH_TOKEN"],
            config["TWILIO_FROM_NUMBER"],
            config.get("TWILIO_API_BASE_URL"),
        )
    # Here, not at the top: the simulated carrier is built on this module's types.
    from core.simulated_carrier import SimulatedCarrier, account_sid

    return SimulatedCarrier(redis_client, config["TWILIO_FROM_NUMBER"], account_sid(config))
