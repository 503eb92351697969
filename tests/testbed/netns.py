"""Network namespaces, veth links, hosts files and process control for the test bed.

Everything here names its resources after the owning run (``ppx-<pid>-<rand>-<host>``), so
parallel runs and the leftovers of a crashed run never clash, and :func:`cleanup_stale` can
remove what a dead run left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .leaks import wait_until

__all__ = [
    "NETNS_ETC_DIR",
    "NETNS_RUN_DIR",
    "PREFIX",
    "AddressLock",
    "Namespace",
    "TestbedError",
    "cleanup_stale",
    "descendants",
    "ip",
    "kill_processes",
    "namespace_name",
    "namespace_pids",
    "process_tree",
    "root_ifname",
]

PREFIX = "ppx"
NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")
TMP_PREFIX = f"{PREFIX}-testbed-"
#: Routing protocol number tagging the routes a run adds to the root namespace (unassigned).
ROUTE_PROTO = "74"
_NS_NAME = re.compile(rf"^{PREFIX}-(?P<pid>\d+)-(?P<rand>[0-9a-f]+)-(?P<host>[a-z0-9.-]+)$")
_TMP_NAME = re.compile(rf"^{TMP_PREFIX}(?P<pid>\d+)-(?P<rand>[0-9a-f]+)-")


class TestbedError(RuntimeError):
    """The test bed could not be built, used or torn down."""

    __test__ = False  # not a pytest test class


def ip(*args: str, batch: Sequence[str] | None = None, netns: str | None = None) -> str:
    """Run ``ip [-n NETNS] ARGS`` (or ``ip -batch -`` with ``batch`` lines); raise on failure."""
    argv = ["ip"] + (["-n", netns] if netns else []) + list(args)
    if batch is not None:
        argv += ["-batch", "-"]
    proc = subprocess.run(
        argv,
        input="".join(f"{line}\n" for line in batch) if batch is not None else None,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        shown = " ".join(argv) + ("\n    " + "\n    ".join(batch) if batch else "")
        raise TestbedError(f"{shown}\nfailed with status {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def _ns_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a network namespace file, or None if it can not be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def namespace_pids(ns_path: Path) -> list[int]:
    """Live processes (zombies have no namespace any more) in the network namespace ``ns_path``.

    The same scan as ``ip netns pids``, done in-process.
    """
    wanted = _ns_identity(str(ns_path))
    if wanted is None:
        return []
    return [
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and _ns_identity(f"/proc/{name}/ns/net") == wanted
    ]


def process_tree() -> dict[int, int]:
    """Map pid -> ppid for every process."""
    tree: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        tree[int(name)] = int(raw[raw.rindex(b")") + 2 :].split()[1])
    return tree


def descendants(pid: int) -> list[int]:
    """All descendants of ``pid``, parents before children."""
    tree = process_tree()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop(0)
        kids = [p for p, pp in tree.items() if pp == parent and p not in found]
        found += kids
        frontier += kids
    return found


def _exists(pid: int) -> bool:
    """Whether ``pid`` still exists as a process that is not yet reaped (zombies count)."""
    return os.path.exists(f"/proc/{pid}")


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rindex(b")") + 2 :].split()[0] != b"Z"


def kill_processes(pids: Iterable[int], timeout: float = 5.0, reaped: bool = False) -> list[int]:
    """SIGKILL ``pids`` and wait until they died (with ``reaped``: and were reaped too).

    Returns those left at the deadline. Our own children among them are reaped here; others
    by their parents (the sshds are child subreapers, see sshd.py).
    """
    left = _alive if not reaped else _exists
    pids = [p for p in pids if p > 1 and p != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)

    def gone() -> bool:
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        return not any(left(p) for p in pids)

    wait_until(gone, timeout)
    return [p for p in pids if left(p)]


@dataclass(frozen=True)
class Namespace:
    """One named network namespace of the test bed (``ip netns add``)."""

    name: str
    host: str

    @property
    def path(self) -> Path:
        """The namespace's bind-mounted file under /run/netns."""
        return NETNS_RUN_DIR / self.name

    @property
    def etc_dir(self) -> Path:
        """/etc/netns/<name>: files here are bind-mounted over /etc by ``ip netns exec``."""
        return NETNS_ETC_DIR / self.name

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self, argv: Sequence[str], *, timeout: float = 15.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace and return its completed process (never raises)."""
        return subprocess.run(
            self.exec_argv(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pids(self) -> list[int]:
        """Live processes inside this namespace."""
        return namespace_pids(self.path)

    def write_etc(self, files: dict[str, str]) -> None:
        """Create /etc/netns/<name>/ with ``files`` (e.g. hosts, resolv.conf)."""
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        for filename, text in files.items():
            (self.etc_dir / filename).write_text(text)


def namespace_name(pid: int, rand: str, host: str) -> str:
    """The namespace name for ``host`` in the run (``pid``, ``rand``)."""
    return f"{PREFIX}-{pid}-{rand}-{host.split('.', maxsplit=1)[0]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _alive(pid)


def cleanup_stale() -> list[str]:
    """Remove namespaces, /etc/netns dirs and temp dirs of test-bed runs whose owner is dead.

    Returns a description of what was removed.
    """
    removed: list[str] = []
    names = set(os.listdir(NETNS_RUN_DIR)) if NETNS_RUN_DIR.is_dir() else set()
    names |= set(os.listdir(NETNS_ETC_DIR)) if NETNS_ETC_DIR.is_dir() else set()
    for name in sorted(names):
        m = _NS_NAME.match(name)
        if not m or _pid_alive(int(m["pid"])):
            continue
        ns = Namespace(name, m["host"])
        kill_processes(ns.pids())
        with contextlib.suppress(TestbedError):  # at once: a dead namespace's veth lingers
            ip("link", "del", root_ifname(int(m["pid"]), m["rand"]))
        if ns.path.exists():
            with contextlib.suppress(TestbedError):
                ip("netns", "del", name)
        shutil.rmtree(ns.etc_dir, ignore_errors=True)
        removed.append(f"namespace {name}")
    tmp = Path(tempfile.gettempdir())
    for entry in tmp.iterdir() if tmp.is_dir() else []:
        m = _TMP_NAME.match(entry.name)
        if m and not _pid_alive(int(m["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(f"temp dir {entry}")
    with contextlib.suppress(OSError):
        NETNS_ETC_DIR.rmdir()  # only if empty: another run may be using it
    removed += _cleanup_stale_routes()
    return removed


def _cleanup_stale_routes() -> list[str]:
    """Delete our tagged root-namespace routes of address blocks no live run holds."""
    removed = []
    for line in ip("route", "show", "proto", ROUTE_PROTO).splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "unreachable":
            continue
        net = ".".join(words[1].split(".")[:2])
        lock = AddressLock(net)
        try:
            lock.acquire(0)
        except TestbedError:
            continue  # a live run owns it
        try:
            with contextlib.suppress(TestbedError):
                ip("route", "del", *words[:2], "proto", ROUTE_PROTO)
                removed.append(f"route {' '.join(words[:2])}")
        finally:
            lock.release()
    return removed


def root_ifname(pid: int, rand: str) -> str:
    """The root-namespace end of the client veth of run (``pid``, ``rand``): <= 15 chars."""
    return f"{PREFIX}{rand}{str(pid)[-6:]}"[:15]


class AddressLock:
    """Machine-wide exclusive use of one test-bed address block (e.g. ``198.18``).

    Two test beds with the same addresses would both route 198.18.1.0/24 from the root
    namespace, so runs sharing a block take turns. The lock is an abstract unix socket: it
    leaves no file and is released by the kernel when its holder dies.
    """

    def __init__(self, net: str) -> None:
        self.net = net
        self._sock: socket.socket | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._sock is not None

    def acquire(self, timeout: float, on_wait: Callable[[str], None] | None = None) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; raise TestbedError if busy."""
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = f"\0paraproxy-testbed-{self.net}"
        told = False

        def try_bind() -> bool:
            nonlocal told
            try:
                sock.bind(address)
            except OSError:
                if not told and on_wait is not None:
                    on_wait(f"test bed addresses {self.net}.0.0/16 in use by another run; waiting")
                    told = True
                return False
            return True

        if not wait_until(try_bind, timeout, interval=0.2):
            sock.close()
            raise TestbedError(
                f"another test-bed run holds the addresses {self.net}.*.* (abstract socket "
                f"@paraproxy-testbed-{self.net}; see `ss -xlp | grep paraproxy-testbed`); "
                f"waited {timeout:.0f} s"
            )
        self._sock = sock

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def python_argv() -> list[str]:
    """The interpreter running the tests, isolated from the user's site and environment."""
    return [sys.executable, "-I", "-S"]
