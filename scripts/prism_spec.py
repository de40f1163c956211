#!/usr/bin/env python3
"""Write a copy of Twilio's OpenAPI spec whose form arrays Prism 5 can validate.

Prism 5 rejects form-encoded arrays sent one ``Name=value`` pair per element, as
Twilio's clients send them: ``StatusCallbackEvent=a&StatusCallbackEvent=b`` gets 422
"must be array", though Twilio accepts it. In the patched copy each ``type: array``
property of a form body becomes ``oneOf: [the array schema, its item schema]``, which
keeps every other check.

Input: $TWILIO_OPENAPI_SPEC, else <repo>/../shared/twilio/twilio_api_v2010.json.
Output: <repo>/.cache/twilio_api_v2010.patched.json, rewritten when older than input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FORM = "application/x-www-form-urlencoded"
DEFAULT_OUTPUT = REPO / ".cache" / "twilio_api_v2010.patched.json"


def default_input() -> Path:
    """Twilio's spec: $TWILIO_OPENAPI_SPEC, or ../shared/twilio/ beside the repo."""
    env = os.environ.get("TWILIO_OPENAPI_SPEC")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "twilio" / "twilio_api_v2010.json"


def array_or_item(schema: dict[str, Any]) -> dict[str, Any]:
    """Turn an array property schema into oneOf [array, item], keeping annotations."""
    outer = {k: v for k, v in schema.items() if k in ("description", "title") or k.startswith("x-")}
    array = {k: v for k, v in schema.items() if k not in outer}
    outer["oneOf"] = [array, schema["items"]]
    return outer


def patch_spec(spec: dict[str, Any]) -> int:
    """Patch form-body array properties of every operation in place; return how many."""
    patched = 0
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            properties = content.get(FORM, {}).get("schema", {}).get("properties", {})
            for name, prop in properties.items():
                if prop.get("type") == "array" and "items" in prop:
                    properties[name] = array_or_item(prop)
                    patched += 1
    return patched


def ensure_patched_spec(
    source: Path | None = None, target: Path = DEFAULT_OUTPUT, force: bool = False
) -> Path:
    """Write the patched spec unless it is newer than its input; return its path."""
    source = source or default_input()
    newest_input = max(source.stat().st_mtime, Path(__file__).stat().st_mtime)
    if not force and target.exists() and target.stat().st_mtime >= newest_input:
        return target
    spec = json.loads(source.read_text(encoding="utf-8"))
    count = patch_spec(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    tmp.replace(target)
    print(
        f"prism_spec: patched {count} form array properties -> {target}",
        file=sys.stderr,
    )
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line: prism_spec.py [--input SPEC] [--output FILE] [--force]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=None, help="Twilio OpenAPI spec (JSON)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="patched copy")
    parser.add_argument("--force", action="store_true", help="rewrite even if up to date")
    args = parser.parse_args(argv)
    print(ensure_patched_spec(args.input, args.output, args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
