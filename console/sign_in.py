"""Signing in to the console with a support token, and signing out.

A single sign-on login (OIDC) would plug in here: instead of the token form, the
sign-in page would redirect to the identity provider, and its callback would call
``sessions.start`` with the support token's name the agent's group maps to. Sessions,
CSRF and everything after sign-in stay as they are.
"""

from __future__ import annotations

import logging

from flask import g, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from console import bp, sessions, words
from core import rate_limits
from core.auth import find_token
from store.errors import LimitExceeded

log = logging.getLogger(__name__)

# Longer than any token we issue; anything longer is not compared at all.
TOKEN_MAX_LENGTH = 512


@bp.route("/login", methods=["GET", "POST"])
def sign_in() -> Response:
    """The sign-in form; a valid support token opens a session with a new id."""
    target = _safe_next(request.values.get("next"))
    current = sessions.load(sessions.client_cookie())
    if request.method == "GET":
        if current is not None and sessions.actor_for(current):
            return redirect(target, 303)
        if sessions.client_cookie() is None and not request.args.get("checked"):
            # Arriving from another site (a help desk link), SameSite=Strict kept the
            # cookie back; one hop from this page sends it, if the agent has one.
            return _same_site_hop(target)
        return _form(target, signed_out=bool(request.args.get("signed_out")))

    if not sessions.sign_in_token_is_valid(
        request.cookies.get(sessions.SIGN_IN_COOKIE), request.form.get("csrf_token")
    ):
        return _form(
            target, error="The sign-in form had expired. Please sign in again.", status=403
        )
    # Every attempt takes a failure's slot before any token is compared, so that
    # attempts arriving together cannot pass the limit; a good one gives it back.
    try:
        reservation = rate_limits.reserve_console_sign_in(request.remote_addr or "unknown")
    except LimitExceeded as refused:
        wait = words.wait_in_words(refused.retry_after)
        response = _form(
            target,
            error=f"Too many failed sign-ins from this computer. Try again in {wait}.",
            status=429,
        )
        response.headers["Retry-After"] = str(refused.retry_after)
        return response

    presented = (request.form.get("token") or "").strip()
    found = find_token(presented) if 0 < len(presented) <= TOKEN_MAX_LENGTH else None
    if found is None or found[0] != "support":
        log.warning("console sign-in refused: not a support token")
        return _form(target, error="That is not a valid support token.", status=403)
    rate_limits.give_back(reservation)

    if current is not None:
        sessions.end(current)
    response = redirect(target, 303)
    sessions.set_cookie(response, sessions.start(presented))
    sessions.clear_sign_in_cookie(response)
    log.info("console sign-in by %s", found[1])
    return response


@bp.post("/logout")
def sign_out() -> Response:
    """End the session on the server, so its cookie no longer works anywhere."""
    sessions.end(g.console_session)
    log.info("console sign-out by %s", g.actor)
    response = redirect(url_for("console.sign_in", signed_out=1, checked=1), 303)
    sessions.clear_cookie(response)
    return response


def _form(
    target: str, *, error: str | None = None, status: int = 200, signed_out: bool = False
) -> Response:
    nonce = sessions.new_sign_in_nonce()
    response = make_response(
        render_template(
            "console/sign_in.html",
            sign_in_token=sessions.sign_in_token(nonce),
            next=target,
            error=error,
            signed_out=signed_out,
        ),
        status,
    )
    sessions.set_sign_in_cookie(response, nonce)
    return response


def _same_site_hop(target: str) -> Response:
    again = url_for("console.sign_in", next=target, checked=1)
    return make_response(render_template("console/hop.html", again=again))


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a console page on this site, never elsewhere."""
    home = url_for("console.home")
    if not value or not value.isprintable() or "\\" in value or value.startswith("//"):
        return home
    if value == "/console" or value.startswith(("/console/", "/console?")):
        return value
    return home
