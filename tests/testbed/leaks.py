"""Leak detection for tests: file descriptors, threads and child processes.

``Snapshot.take()`` records what the test process holds; ``Snapshot.leaks_since(before)`` lists
what appeared since. The ``no_leaks`` fixture in ``tests/conftest.py`` takes a snapshot before every
test and, after it, polls with :func:`wait_until` (never a fixed sleep) until the process is back
to its baseline, else fails with the exact leftovers.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

__all__ = [
    "ChildInfo",
    "Leaks",
    "Snapshot",
    "check_back_to",
    "child_processes",
    "open_fds",
    "wait_until",
]


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it returns something true or ``timeout`` seconds pass.

    Returns whether the predicate became true; the predicate is always evaluated at least
    once, and once more after the deadline, so a slow machine never loses a late success.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


def open_fds() -> dict[int, str]:
    """Map each open descriptor of this process to its ``readlink`` target."""
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            # The descriptor listdir() itself used is already closed again.
            continue
    return fds


@dataclass(frozen=True)
class ChildInfo:
    """A child process of the test process (a zombie included)."""

    pid: int
    start_time: int
    state: str
    cmdline: str

    def describe(self) -> str:
        """One line for a failure message."""
        state = {"Z": "zombie", "T": "stopped", "t": "traced"}.get(self.state, self.state)
        return f"pid {self.pid} [{state}] {self.cmdline}"


def _read_stat(pid: str) -> tuple[int, str, int, str] | None:
    """Return (ppid, state, start time, comm) of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    # comm sits in parentheses and may itself contain spaces and ')'.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19]), comm


def _cmdline(pid: int, comm: str) -> str:
    """The command line of ``pid`` (its comm in brackets for zombies and kernel threads)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        args = []
    text = " ".join(a.decode("utf-8", "replace") for a in args if a)
    return text or f"[{comm}]"


def child_processes(parent: int | None = None) -> dict[tuple[int, int], ChildInfo]:
    """All processes whose parent is ``parent`` (default: this process), keyed by (pid, start)."""
    parent = os.getpid() if parent is None else parent
    children: dict[tuple[int, int], ChildInfo] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _read_stat(name)
        if stat is None or stat[0] != parent:
            continue
        pid = int(name)
        children[(pid, stat[2])] = ChildInfo(pid, stat[2], stat[1], _cmdline(pid, stat[3]))
    return children


@dataclass
class Leaks:
    """What a test left behind, relative to a baseline snapshot."""

    fds: dict[int, str] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    children: list[ChildInfo] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fds or self.threads or self.children)

    def describe(self) -> str:
        """A precise, multi-line report of every leftover."""
        lines: list[str] = []
        if self.fds:
            lines.append(f"{len(self.fds)} file descriptor(s) left open:")
            lines += [f"  fd {fd} -> {target}" for fd, target in sorted(self.fds.items())]
        if self.threads:
            lines.append(f"{len(self.threads)} thread(s) still alive:")
            lines += [f"  {t.name!r} (daemon={t.daemon}, ident={t.ident})" for t in self.threads]
        if self.children:
            lines.append(f"{len(self.children)} child process(es) left (incl. zombies):")
            lines += [f"  {c.describe()}" for c in self.children]
        return "\n".join(lines)


@dataclass
class Snapshot:
    """Descriptors, threads and children of the test process at one moment."""

    fds: dict[int, str]
    threads: frozenset[threading.Thread]
    children: dict[tuple[int, int], ChildInfo]

    @classmethod
    def take(cls) -> Snapshot:
        """Record the current state of this process."""
        return cls(open_fds(), frozenset(threading.enumerate()), child_processes())

    def leaks_since(self, before: Snapshot) -> Leaks:
        """What this snapshot holds that ``before`` did not."""
        fds = {fd: t for fd, t in self.fds.items() if before.fds.get(fd) != t}
        threads = sorted(
            (t for t in self.threads - before.threads if t.is_alive()), key=lambda t: t.name
        )
        children = [c for key, c in sorted(self.children.items()) if key not in before.children]
        return Leaks(fds, threads, children)


def check_back_to(before: Snapshot, timeout: float = 5.0) -> Leaks:
    """Wait until nothing is left relative to ``before``; return the leftovers (empty if none)."""
    leaks = Leaks()

    def clean() -> bool:
        nonlocal leaks
        leaks = Snapshot.take().leaks_since(before)
        return not leaks

    wait_until(clean, timeout)
    return leaks
