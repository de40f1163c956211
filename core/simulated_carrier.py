"""The simulated carrier: calls and texts recorded in Redis instead of sent.

The service uses it when no Twilio account is configured; the terminal phone
(``phone/``) plays the network's other side against what it records.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from typing import Any, cast

import redis

from core.carrier import CALL_STATUS_EVENTS, PlacedCall
from core.errors import CarrierUnavailable
from store import keys

# The account the simulated carrier (and the terminal phone playing Twilio) speaks for
# when no TWILIO_ACCOUNT_SID is configured; webhooks in simulation carry it as AccountSid.
SIMULATED_ACCOUNT_SID = "AC" + "0" * 32


def account_sid(config: dict[str, Any]) -> str:
    """The AccountSid webhooks carry: the configured account, or the simulated one."""
    return str(config.get("TWILIO_ACCOUNT_SID") or SIMULATED_ACCOUNT_SID)


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
