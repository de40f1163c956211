"""``flask phone``: the phone network in a terminal, to try the service without Twilio.

flask --app wsgi phone calls                       calls ringing now
flask --app wsgi phone answer --latest             answer one, key digits, hear it
flask --app wsgi phone texts --to +12025550111     texts the service sent
flask --app wsgi phone text --from +12025550111 CODEWORD
"""

from __future__ import annotations

import functools
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import click
import phonenumbers
import redis
from flask import current_app
from flask.cli import AppGroup

from core.extensions import carrier
from core.simulated_carrier import SimulatedCarrier
from phone.call import CallOutcome, GatherPrompt, Heard
from phone.network import UNANSWERED, PhoneNetwork, SimulatedCall, SimulatedText
from phone.webhooks import PhoneError, Webhooks
from sms.keywords import Kind, parse_keyword
from store.numbers import InvalidNumber, normalise

phone = AppGroup(
    "phone",
    help="Play the phone network against the running service (simulated carrier only).",
)

LABELS = {
    "say": "SAY",
    "play": "PLAY",
    "pause": "PAUSE",
    "gather": "KEYPAD",
    "keyed": "KEYED",
    "silence": "KEYED",
    "redirect": "REDIRECT",
    "webhook": "->",
    "problem": "!",
    "ended": "END",
}


def plain_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Report what went wrong in a sentence, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PhoneError as exc:
            raise click.ClickException(str(exc)) from None
        except redis.RedisError as exc:
            # Host and port only: the URL may carry a password.
            where = urlsplit(current_app.config["REDIS_URL"])
            raise click.ClickException(
                f"cannot reach the simulated carrier's Redis at {where.hostname}:{where.port}"
                f" ({type(exc).__name__}): is REDIS_URL the one the service uses?"
            ) from None

    return wrapper


def url_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--url",
        "listen_url",
        metavar="URL",
        help="Where the service listens, if not at PUBLIC_BASE_URL "
        "(requests are still signed for PUBLIC_BASE_URL).",
    )(command)


def verbose_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-v", "--verbose", is_flag=True, help="Also show each webhook sent to the service."
    )(command)


def network(listen_url: str | None = None) -> PhoneNetwork:
    """The phone network for the configured service; refuses a real Twilio account."""
    simulated = carrier()
    if not isinstance(simulated, SimulatedCarrier):
        raise click.ClickException(
            "the service is set up with a Twilio account (TWILIO_ACCOUNT_SID), so its calls "
            "and texts go to real phones; unset TWILIO_ACCOUNT_SID to use this phone"
        )
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    if not token:
        raise click.ClickException("no TWILIO_AUTH_TOKEN to sign webhooks with")
    webhooks = Webhooks(current_app.config["PUBLIC_BASE_URL"], token, listen_url)
    return PhoneNetwork(simulated, webhooks)


def phone_number(ctx: click.Context, param: click.Parameter, raw: str | None) -> str | None:
    """Any dialable number, as E.164; click names the option when it is not one."""
    if raw is None:
        return None
    try:
        return normalise(raw, phonenumbers.SUPPORTED_REGIONS)
    except InvalidNumber as exc:
        raise click.BadParameter(
            f"{raw!r} is {exc}. Give a whole number with its country code, e.g. +12025550111 "
            "(a North American number may leave out the +1)."
        ) from None


def ago(then: float) -> str:
    seconds = max(0, int(time.time() - then))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def stdin_keypad(prompt: GatherPrompt) -> str | None:
    """A line of keys from stdin; an empty line is silence, end of input hangs up."""
    if sys.stdin.isatty():
        click.echo("           > ", nl=False)
    try:
        line = sys.stdin.readline()
    except KeyboardInterrupt:
        click.echo()
        return None
    return line.rstrip("\r\n") if line else None


def show(verbose: bool, typed: bool) -> Callable[[Heard], None]:
    """Print what is heard on a call, a line each."""

    def listener(heard: Heard) -> None:
        if heard.kind in {"webhook", "redirect"} and not verbose:
            return
        if heard.kind == "keyed" and typed:
            return  # the keys are on screen already
        text = "(nothing: silence)" if heard.kind == "silence" else heard.text
        click.echo(f"  {LABELS.get(heard.kind, heard.kind.upper()):<8} {text}")

    return listener


def finish(outcome: CallOutcome) -> None:
    if outcome.ended_by == "error":
        raise click.ClickException("the call failed (see above)")


def choose_call(net: PhoneNetwork, call_sid: str | None, latest: bool) -> SimulatedCall:
    if bool(call_sid) == latest:
        raise click.UsageError("name one call by its SID (see 'flask phone calls') or say --latest")
    return net.find_call(None if latest else call_sid)


@phone.command("calls")
@plain_errors
@click.option("--all", "show_all", is_flag=True, help="Also list calls already answered or ended.")
def calls(show_all: bool) -> None:
    """List the calls the service placed that are still ringing."""
    net = network()
    listed = net.calls() if show_all else net.pending_calls()
    if not listed:
        click.echo("no calls ringing" if not show_all else "no calls placed")
        return
    for call in listed:
        state = call.state or "ringing"
        click.echo(
            f"{call.sid}  to {call.to_number}  from {call.from_number}  "
            f"{ago(call.placed_at)}  {state}"
        )


@phone.command("answer")
@plain_errors
@click.argument("call_sid", required=False)
@click.option("--latest", is_flag=True, help="Answer the most recent call still ringing.")
@click.option(
    "--machine",
    is_flag=True,
    help="Answer as voicemail: AnsweredBy=machine_start (when the call detects machines), "
    "and no keys pressed.",
)
@url_option
@verbose_option
def answer(
    call_sid: str | None, latest: bool, machine: bool, listen_url: str | None, verbose: bool
) -> None:
    """Answer a call: hear its prompts, key digits (a line each), hear the result.

    Enter alone is silence; end of input (Ctrl-D) hangs up.
    """
    net = network(listen_url)
    call = choose_call(net, call_sid, latest)
    who = "voicemail" if machine else "you"
    click.echo(f"Call {call.sid} from {call.from_number} to {call.to_number}: {who} answered.")
    typed = sys.stdin.isatty()
    if not machine and typed:
        click.echo("Type keys and Enter when asked; Enter alone is silence; Ctrl-D hangs up.")
    outcome = net.answer(call, stdin_keypad, show(verbose, typed), machine=machine)
    click.echo(f"Call over after {outcome.duration} s.")
    finish(outcome)


@phone.command("decline")
@plain_errors
@click.argument("call_sid", required=False)
@click.option("--latest", is_flag=True, help="Decline the most recent call still ringing.")
@click.option(
    "--as",
    "status",
    type=click.Choice(UNANSWERED),
    default="no-answer",
    show_default=True,
    help="How the call ends.",
)
@url_option
@verbose_option
def decline(
    call_sid: str | None, latest: bool, status: str, listen_url: str | None, verbose: bool
) -> None:
    """Let a call end unanswered, and report it to the service."""
    net = network(listen_url)
    call = choose_call(net, call_sid, latest)
    net.leave_unanswered(call, status, show(verbose, False))


@phone.command("dial")
@plain_errors
@click.option("--from", "number", required=True, callback=phone_number, help="The number calling.")
@url_option
@verbose_option
def dial(number: str, listen_url: str | None, verbose: bool) -> None:
    """Call the service's own number, as someone calling it back would."""
    net = network(listen_url)
    click.echo(f"Calling {net.service_number} from {number}.")
    typed = sys.stdin.isatty()
    outcome = net.dial(number, stdin_keypad, show(verbose, typed))
    click.echo(f"Call over after {outcome.duration} s.")
    finish(outcome)


def show_text(text: SimulatedText) -> None:
    status = text.status or "queued"
    if text.redacted:
        status += ", body since redacted at the carrier"
    click.echo(f"{text.sid}  to {text.to_number}  {ago(text.sent_at)}  {status}")
    if text.status == "failed":
        click.echo("    (never reached the phone)")
    else:
        click.echo(textwrap.indent(text.body, "    ", lambda line: True))


@phone.command("texts")
@plain_errors
@click.option("--to", "number", callback=phone_number, help="Only texts to this number.")
@url_option
def texts(number: str | None, listen_url: str | None) -> None:
    """List the texts the service sent (newest first), delivering any still queued."""
    net = network(listen_url)
    problems = net.deliver(net.texts(number))
    listed = net.texts(number)
    if not listed:
        click.echo("no texts" + (f" to {number}" if number else ""))
    for text in listed:
        show_text(text)
    for problem in problems:
        click.echo(f"! {problem}", err=True)
    if problems:
        raise SystemExit(1)


def no_reply_because(body: str) -> str:
    """What to make of a text that got no answer."""
    if parse_keyword(body).kind in {Kind.OPT_OUT, Kind.OPT_IN}:
        return (
            "(no reply from the service: on a real number Twilio itself answers STOP, START"
            " and its other opt-out and opt-in words, so the service only records them)"
        )
    return "(no reply)"


@phone.command("text")
@plain_errors
@click.option("--from", "number", required=True, callback=phone_number, help="The number texting.")
@click.argument("body")
@click.option(
    "--wait",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds to wait for a text when the service sends no reply (its worker texts it).",
)
@url_option
def text(number: str, body: str, wait: float, listen_url: str | None) -> None:
    """Text the service's number and show what comes back.

    Shows the TwiML reply, and every text the service sent to the same number through
    the carrier meanwhile (these are delivered, reporting their status to the service).
    Without a reply, waits up to --wait seconds for a text: the codeword comes from the
    service's background worker (``flask --app wsgi worker``, started by scripts/run).
    """
    net = network(listen_url)
    exchange = net.send_text(number, body, wait=wait)
    click.echo(f"{number} -> {net.service_number}: {body}")
    for reply in exchange.replies:
        to = "" if reply.to_number == number else f" (to {reply.to_number})"
        click.echo(f"reply{to}: {reply.body}")
    for sent in exchange.texts:
        body = textwrap.indent(sent.body, "    ").lstrip()
        click.echo(f"text {sent.sid} ({sent.status or 'queued'}): {body}")
    if not exchange.replies and not exchange.texts:
        click.echo(no_reply_because(body))
    for problem in exchange.problems:
        click.echo(f"! {problem}", err=True)
    if exchange.problems:
        raise SystemExit(1)
