"""The public URLs handed to Twilio: ``PUBLIC_BASE_URL`` and a route, nothing from a request.

A request's script root (a proxy's ``SCRIPT_NAME``, say) belongs to that request;
were it to leak into a URL kept for later, every call after it would carry callbacks
that lead nowhere. So the route's path comes from the URL map alone.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app


def public_url(endpoint: str, **query: str) -> str:
    """The absolute URL of ``endpoint`` under ``PUBLIC_BASE_URL``, with ``query``."""
    paths: dict[str, str] = current_app.extensions.setdefault("public_urls", {})
    url = paths.get(endpoint)
    if url is None:
        # Bound afresh, with the root script name: never the current request's.
        path = current_app.url_map.bind("localhost", script_name="/").build(endpoint)
        url = paths.setdefault(endpoint, current_app.config["PUBLIC_BASE_URL"] + path)
    return f"{url}?{urlencode(query)}" if query else url
