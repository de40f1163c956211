"""nginx with the repo's deploy/nginx.conf in front of a gunicorn, on loopback.

nginx runs in the foreground (``daemon off``) with its own prefix, pid file and temporary
folders in a temporary folder of its own, so it needs no root and touches nothing of the
system's nginx. Run as root, its workers run as ``nobody``, as Debian's nginx does.

    with gunicorn_server(env) as upstream, nginx_server(upstream) as url:
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import requests

from devservers.processes import HOST, REPO, free_port, run_process

TEMPLATE = REPO / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    """Debian's nginx (in /usr/sbin, which a user's PATH may lack)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("nginx not found; run scripts/bootstrap --dev (installs nginx-light)")
    return found


def render_site(listen: str, gunicorn_address: str) -> str:
    """deploy/nginx.conf as ``envsubst '$NGINX_LISTEN $GUNICORN_ADDRESS'`` renders it."""
    text = TEMPLATE.read_text()
    for name, value in (("NGINX_LISTEN", listen), ("GUNICORN_ADDRESS", gunicorn_address)):
        assert "${" + name + "}" in text, name
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, "a placeholder this does not fill"
    return text


def main_config(folder: Path, site: Path) -> str:
    """A main nginx.conf around the site: everything nginx writes stays in ``folder``."""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log stderr warn;
events {{
    worker_connections 512;
}}
http {{
{temp_paths}
    include {site};
}}
"""


@contextlib.contextmanager
def nginx_server(upstream_url: str, timeout: float = 20) -> Iterator[str]:
    """Run nginx with deploy/nginx.conf in front of ``upstream_url``; yield its URL."""
    port = free_port()
    # In the system's temporary folder, which nginx's workers (nobody, when the master
    # runs as root) can reach; pytest's are the user's alone.
    with tempfile.TemporaryDirectory(prefix="devserver-nginx-") as name:
        folder = Path(name)
        if os.geteuid() == 0:
            folder.chmod(0o711)
        site = folder / "codeword.conf"
        site.write_text(render_site(f"{HOST}:{port}", urlsplit(upstream_url).netloc))
        config = folder / "nginx.conf"
        config.write_text(main_config(folder, site))
        cmd = [nginx_binary(), "-p", str(folder), "-c", str(config), "-e", "stderr"]
        url = f"http://{HOST}:{port}"

        def ready() -> bool:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200

        with run_process(cmd, "nginx", ready, timeout):
            yield url
