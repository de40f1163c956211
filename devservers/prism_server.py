"""Prism serving Twilio's own OpenAPI description: as a mock, or as a checking proxy."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import requests

from devservers.processes import HOST, REPO, free_port, run_process

PRISM_BIN = REPO / ".cache" / "prism" / "node_modules" / ".bin" / "prism"


def patched_spec() -> Path:
    """Path of the Prism-friendly Twilio spec (scripts/prism_spec.py), fresh."""
    module_spec = importlib.util.spec_from_file_location(
        "prism_spec", REPO / "scripts" / "prism_spec.py"
    )
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return Path(module.ensure_patched_spec())


@contextlib.contextmanager
def prism(mode: str = "mock", upstream: str | None = None, timeout: float = 30) -> Iterator[str]:
    """Run Prism on Twilio's spec as "mock" or "proxy" to upstream; yield its URL.

    Requests need HTTP basic auth (any account SID and token). Invalid ones get 422.
    """
    if not PRISM_BIN.exists():
        raise RuntimeError(f"{PRISM_BIN} not found; run scripts/bootstrap --dev")
    port = free_port()
    cmd = [str(PRISM_BIN), mode, "-h", HOST, "-p", str(port)]
    if mode == "mock":
        cmd.append(str(patched_spec()))
    elif mode == "proxy":
        if not upstream:
            raise ValueError("prism(mode='proxy') needs an upstream URL")
        cmd += ["--errors", str(patched_spec()), upstream]
    else:
        raise ValueError(f"unknown Prism mode: {mode!r}")
    url = f"http://{HOST}:{port}"

    def ready() -> bool:
        requests.get(f"{url}/", timeout=2)  # any HTTP answer means it is serving
        return True

    with run_process(cmd, f"prism {mode}", ready, timeout):
        yield url
