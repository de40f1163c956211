"""Counting the Redis commands one request causes, as Redis itself counts them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
import requests

from bench.setup import SignedRequest

# Redis commands the counting itself sends, and those a new connection sends once
# before its first command: neither belongs to the request.
_OWN_COMMANDS = {"info", "config|resetstat", "config", "monitor", "echo"}
_CONNECTION_SETUP = {"hello", "client|setinfo", "client", "auth", "select"}
_END_OF_REQUEST = "bench:end-of-request"


@dataclass(frozen=True)
class Commands:
    """Redis commands one request caused, as Redis itself counted them."""

    sent: int  # sent by the service: an EVALSHA counts one, however much its script does
    in_scripts: int  # run by the Lua scripts those commands called
    names: list[str] = field(default_factory=list)


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
    with client.monitor() as monitor:  # type: ignore[no-untyped-call]
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
