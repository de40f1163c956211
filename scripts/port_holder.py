"""Say whether a TCP port can be listened on, and if not, what holds it.

    python3 scripts/port_holder.py PORT [HOST]

Exit status 0 when HOST:PORT (127.0.0.1 by default) is free. Otherwise 1, and one line on
stdout naming the holder, e.g. ``port 8000 is in use by pid 4242 (gunicorn: master
[wsgi:app])``. The standard library only: scripts/run asks before anything is installed.
Linux: the holder is found through /proc, where this user may look.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket


def bind_error(host: str, port: int) -> OSError | None:
    """Why HOST:PORT cannot be bound as gunicorn and redis-server bind it, or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
    return None


def listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port``, any address, IPv4 or IPv6."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == LISTEN:
                inodes.add(fields[9])
    return inodes


def holders(inodes: set[str]) -> list[int]:
    """Processes with one of those sockets open (those this user may look into)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    found.append(int(proc.name))
                    break
            except OSError:
                continue
    return sorted(found)


def parent(pid: int) -> int | None:
    """The parent process of ``pid``, from /proc/PID/stat (after the command in brackets)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def command_line(pid: int) -> str:
    """What the process calls itself (gunicorn and redis-server retitle themselves)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    words = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
    return words if len(words) <= 80 else words[:77] + "..."


def describe(port: int, error: OSError) -> str:
    """One line on why the port is not free."""
    if error.errno == errno.EACCES:
        return f"port {port} needs root; choose one above 1023"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"the address to bind port {port} on is not one of this machine's"
    inodes = listening_inodes(port)
    if not inodes:
        return f"port {port} is in use ({error.strerror})"
    pids = holders(inodes)
    if not pids:
        return f"port {port} is in use, by a process this user cannot look into"
    # A forking server's workers share the socket; name the master, whose parent is not one.
    masters = [pid for pid in pids if parent(pid) not in pids]
    pid = (masters or pids)[0]
    return f"port {port} is in use by pid {pid} ({command_line(pid)})"


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not argv[1].isdigit():
        print("usage: port_holder.py PORT [HOST]", file=sys.stderr)
        return 2
    port, host = int(argv[1]), argv[2] if len(argv) == 3 else "127.0.0.1"
    error = bind_error(host, port)
    if error is None:
        return 0
    print(describe(port, error))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
