"""CPU time of a benchmark's processes, read from /proc: what each side of a comparison spent.

A side is named groups of processes ("api", "workers", "postgres", ...). `Sample.take` reads
the user + system CPU of every process of every group; the difference of two samples is what
each group spent in between. A process that appears between the two samples counts from zero
(all its CPU is new); one that ended in between is lost with what it spent (its parent's
`cutime` has it, mixed with everything else), so a benchmark should keep its processes and
their connections for the whole row.

PostgreSQL's share is read the same way: the server's processes are the postmaster's
children. A client backend's process title names its database (`postgres: [cluster:] user
database host(port) state`), so the backends of a side's own database are its own; the
auxiliaries (checkpointer, background and WAL writers, autovacuum, replication launchers)
serve every database on the server and are counted for whichever side ran in the meantime.
Other databases' backends (other people's work on a shared server) are left out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def ticks(pid: int, proc: Path = PROC) -> int | None:
    """The process's user + system CPU so far, in clock ticks; None if it is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and brackets
    return int(fields[11]) + int(fields[12])  # utime and stime: fields 14 and 15 of stat


def parent(pid: int, proc: Path = PROC) -> int | None:
    try:
        text = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(text.rsplit(")", 1)[1].split()[1])


def tree(pid: int, proc: Path = PROC) -> list[int]:
    """The process and all its descendants (uvicorn's `--workers N` children, for one)."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            up = parent(int(entry.name), proc)
            if up is not None:
                children.setdefault(up, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        if (proc / str(current)).exists():
            found.append(current)
            pending += children.get(current, [])
    return found


def title(pid: int, proc: Path = PROC) -> str:
    """The process's command line as `ps` shows it (PostgreSQL writes its title there)."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def postgres_server(proc: Path = PROC) -> list[int]:
    """Every process of the PostgreSQL server on this machine (the postmaster and its
    children), or an empty list if none is visible here."""
    named = set()
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    named.add(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return sorted(named)


def is_client_backend(process_title: str) -> bool:
    """A backend serving a client: its title ends in its address and state, `host(port)` or
    `[local]`, after the user and database."""
    words = process_title.split()
    return any((word.endswith(")") and "(" in word) or word == "[local]" for word in words[3:])


def postgres_processes(database: str, proc: Path = PROC) -> dict[str, list[int]]:
    """The server's processes that work for `database`: its client backends (and autovacuum
    workers on it) as "backends", and the shared auxiliaries as "auxiliaries". The
    postmaster itself only forks; it is counted with the auxiliaries."""
    backends, auxiliaries = [], []
    for pid in postgres_server(proc):
        words = title(pid, proc).split()
        if database in words:
            backends.append(pid)
        elif not is_client_backend(" ".join(words)):
            auxiliaries.append(pid)
    return {"backends": backends, "auxiliaries": auxiliaries}


Groups = Callable[[], Mapping[str, Iterable[int]]]
"""Where a side's processes are right now: group name to process ids."""


@dataclass(frozen=True)
class Sample:
    """Every process's CPU ticks, per group, at one moment."""

    ticks: dict[str, dict[int, int]] = field(default_factory=dict)

    @classmethod
    def take(cls, groups: Mapping[str, Iterable[int]], proc: Path = PROC) -> Sample:
        found: dict[str, dict[int, int]] = {}
        for group, pids in groups.items():
            found[group] = {}
            for pid in pids:
                used = ticks(pid, proc)
                if used is not None:
                    found[group][pid] = used
        return cls(found)

    def since(self, before: Sample) -> dict[str, float]:
        """CPU seconds each group spent from `before` to this sample."""
        spent = {}
        for group, now in self.ticks.items():
            then = before.ticks.get(group, {})
            spent[group] = sum(n - then.get(pid, 0) for pid, n in now.items()) / TICKS
        return spent
