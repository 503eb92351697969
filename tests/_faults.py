"""Helpers shared by the hardening tests (faults, bad input, load, interrupts).

``GATEKEEPER``, ``IDENTITIES``, ``connected`` and ``run`` come from :mod:`testbed.clients`
(shared with the other end-to-end tests); ``chain_home`` is its ``client_home`` as these
tests use it.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from testbed.bed import SshTestbed
from testbed.clients import GATEKEEPER, IDENTITIES, client_home, connected, run
from testbed.home import SshHome
from testbed.leaks import child_processes, open_fds, wait_until

import paraproxy  # noqa: F401 - installs the hook: the tests drive SSHClient.connect

__all__ = [
    "GATEKEEPER",
    "IDENTITIES",
    "RELAY",
    "chain_home",
    "connected",
    "cpu_during",
    "gone",
    "relay_command",
    "run",
    "sample",
    "timed",
]

TESTS = Path(__file__).resolve().parent
RELAY = TESTS / "_faults_relay.py"


def chain_home(ssh_home: SshHome, testbed: SshTestbed) -> SshHome:
    """HOME with one key per host, id_ed25519 (authorized everywhere), known_hosts for all.

    :func:`testbed.clients.client_home` with gatekeeper known by address and by name.
    """
    return client_home(ssh_home, testbed, id_all=True, gatekeeper_as=(GATEKEEPER, "gatekeeper"))


def relay_command(mode: str, *flags: str, host: str = "%h", port: str = "%p") -> str:
    """A ProxyCommand running the fault relay (see tests/_faults_relay.py)."""
    words = [sys.executable, str(RELAY), mode, host, port, *flags]
    return " ".join(shlex.quote(w) if not w.startswith("%") else w for w in words)


def timed(func: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Run ``func``; return (seconds, the exception it raised or None)."""
    start = time.monotonic()
    try:
        func()
    except BaseException as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def cpu_during(
    seconds: float, predicate: Callable[[], object] | None = None
) -> tuple[float, float]:
    """Wait ``seconds`` (or until ``predicate``), return (wall, process CPU) spent meanwhile."""
    wall0, cpu0 = time.monotonic(), time.process_time()
    if predicate is None:
        time.sleep(seconds)
    else:
        wait_until(predicate, seconds)
    return time.monotonic() - wall0, time.process_time() - cpu0


def sample() -> tuple[int, int, int]:
    """(open fds, threads, child processes) of this process."""
    return len(open_fds()), threading.active_count(), len(child_processes())


def gone(pid: int) -> bool:
    """Whether ``pid`` is no longer a running process (absent or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return True
    return raw[raw.rindex(")") + 2 :].split()[0] in ("Z", "X")


def read_pids(*paths: Path) -> list[int]:
    """The pids written in ``paths`` (missing files are skipped)."""
    pids = []
    for path in paths:
        try:
            pids.append(int(path.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def fd_count() -> int:
    """Open descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))
