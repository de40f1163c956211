"""openapi.yaml describes every JSON route the app serves, and only those."""

from __future__ import annotations

import re

import yaml
from flask import Flask

from devservers.processes import REPO

WEBHOOK_PREFIXES = ("/ivr/", "/sms/", "/twilio/")
# The support console's pages are HTML for people (docs/console.md), not an API.
CONSOLE_PREFIX = "/console"


def test_every_json_route_is_documented_and_nothing_else(app: Flask) -> None:
    spec = yaml.safe_load((REPO / "openapi.yaml").read_text())
    documented = {
        (path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith((*WEBHOOK_PREFIXES, CONSOLE_PREFIX))
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert documented == served
