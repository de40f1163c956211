"""CPU accounting from /proc: what the server, Redis and everything else used during a run."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, ..."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _processes(name: bytes, bind: str) -> list[int]:
    """Processes whose command line names ``name`` and ``bind`` (host:port)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if name in cmdline and bind.encode() in cmdline:
            found.append(int(entry.name))
    return found


def server_pids(base_url: str) -> list[int]:
    """The gunicorn master serving ``base_url`` and its workers (which share its command)."""
    return _processes(b"gunicorn", base_url.removeprefix("http://") + " ")


def redis_pids(redis_url: str) -> list[int]:
    """The redis-server at ``redis_url``."""
    host_port = redis_url.removeprefix("redis://").split("/")[0]
    return _processes(b"redis-server", host_port)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes used so far."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / _TICKS
