"""A measuring process, driven by ``run.py`` one JSON request per line.

Run as ``python worker.py TESTBED.json plain|hook``. A ``plain`` worker never
activates paraproxy's hook (``PARAPROXY_DISABLE=1``; it may import
``paraproxy.proxycommand`` for the bridge variant); a ``hook`` worker does
``import paraproxy`` first, with ``HOME`` and ``PARAPROXY_CONFIG`` pointing at
the testbed. Keeping them apart means the hook can never touch the baselines,
and a crash or hang in one (the hook is new code) cannot take down the others.

Replies go to a private copy of stdout; ``sys.stdout`` is stderr, so a stray
print cannot corrupt the protocol.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from servers import TestbedInfo

_OUT = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

import variants  # noqa: E402  (after the stdout swap: imports may print)


class Worker:
    """Carries out requests against one testbed."""

    def __init__(self, tb: TestbedInfo, kind: str) -> None:
        self.tb = tb
        self.kind = kind
        self.hook_error: str | None = None
        self.hook_installed = False
        if kind == "hook":
            try:
                import paraproxy  # noqa: PLC0415 - only in hook workers
                import paraproxy.hook  # noqa: PLC0415

                self.hook_installed = bool(paraproxy.hook.is_installed())
                if not self.hook_installed:
                    self.hook_error = "import paraproxy did not install the hook"
            except Exception as exc:
                self.hook_error = f"import paraproxy failed: {type(exc).__name__}: {exc}"

    # -- requests --------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        import paramiko  # noqa: PLC0415

        out: dict[str, Any] = {
            "paramiko": paramiko.__version__,
            "kind": self.kind,
            "hook_installed": self.hook_installed,
            "hook_error": self.hook_error,
            "pid": os.getpid(),
        }
        try:
            import paraproxy  # noqa: PLC0415

            out["paraproxy"] = getattr(paraproxy, "__version__", "?")
        except Exception as exc:
            out["paraproxy"] = f"unimportable: {exc}"
        try:
            import asyncssh  # noqa: PLC0415 - optional

            out["asyncssh"] = asyncssh.__version__
        except ImportError:
            out["asyncssh"] = None
        return out

    def connect(self, variant: str) -> dict[str, Any]:
        """Open (connect+auth) and close one connection; time both."""
        self._settle()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        conn = variants.open_variant(variant, self.tb)
        t1 = time.perf_counter()
        conn.close()
        t2 = time.perf_counter()
        cpu1 = time.process_time()
        return {"connect": t1 - t0, "close": t2 - t1, "cpu": cpu1 - cpu0}

    def transfer(self, variant: str, direction: str, nbytes: int) -> dict[str, Any]:
        """Stream ``nbytes`` one way on a fresh connection; time and CPU."""
        self._settle()
        if variant.startswith("ssh"):
            argv = variants.ssh_argv(
                self.tb, variant,
                f"head -c {nbytes} /dev/zero" if direction == "down" else variants.UPLOAD_COMMAND,
            )
            ch0 = variants.children_cpu()
            cpu0 = time.process_time()
            seconds = variants.ssh_transfer(argv, dict(os.environ), direction, nbytes)
            cpu1 = time.process_time()
            ch1 = variants.children_cpu()
            return {
                "seconds": seconds,
                "bytes": nbytes,
                "cpu_self": cpu1 - cpu0,
                "cpu_children": ch1 - ch0,
                "cpu_client": ch1 - ch0,
                "cipher": "openssh default",
            }
        ch0 = variants.children_cpu()
        conn = variants.open_variant(variant, self.tb)
        try:
            cpu0 = time.process_time()
            if direction == "down":
                seconds, _ = conn.download(nbytes)
            else:
                seconds = conn.upload(nbytes)
            cpu1 = time.process_time()
            cipher = conn.cipher
        finally:
            conn.close()
            for reap in getattr(conn, "reapers", ()):
                reap()
        ch1 = variants.children_cpu()
        return {
            "seconds": seconds,
            "bytes": nbytes,
            "cpu_self": cpu1 - cpu0,
            "cpu_children": ch1 - ch0,
            "cpu_client": (cpu1 - cpu0) + (ch1 - ch0),
            "cipher": cipher,
        }

    def resources(self, variant: str, k: int) -> dict[str, Any]:
        """Threads, fds and child processes added by ``k`` open connections, and left after."""
        # One connection first, so one-time costs (lazy imports, an event loop,
        # caches) are not counted per connection.
        variants.open_variant(variant, self.tb).close()
        self._settle(stable=0.3)
        t0, f0, p0 = threading.active_count(), _fds(), _children()
        conns = []
        try:
            for _ in range(k):
                conns.append(variants.open_variant(variant, self.tb))
            time.sleep(0.1)
            t1, f1, p1 = threading.active_count(), _fds(), _children()
        finally:
            for c in conns:
                with contextlib.suppress(Exception):
                    c.close()
        self._settle()
        t2, f2, p2 = threading.active_count(), _fds(), _children()
        new = {fd: target for fd, target in f1.items() if f0.get(fd) != target}
        kinds: dict[str, int] = {}
        for target in new.values():
            kind = _fd_kind(target)
            kinds[kind] = kinds.get(kind, 0) + 1
        left = {fd: target for fd, target in f2.items() if f0.get(fd) != target}
        return {
            "k": k,
            "threads": (t1 - t0) / k,
            "fds": (len(f1) - len(f0)) / k,
            "procs": (len(p1) - len(p0)) / k,
            "fd_kinds": {kind: n / k for kind, n in sorted(kinds.items())},
            "left_threads": t2 - t0,
            "left_fds": len(f2) - len(f0),
            "left_fd_kinds": sorted({_fd_kind(t) for t in left.values()}),
            "left_procs": len(p2) - len(p0),
        }

    def reuse(self, variant: str) -> dict[str, Any]:
        """A second connection to the target while a first one through the same hop is open."""
        self._settle()
        log = self.tb.logs["h1"]
        first: Any = None
        hop: Any = None
        if variant == "hand-reuse":
            t0 = time.perf_counter()
            hop = variants.hand_hop(self.tb)
            first = variants.open_via_hop(self.tb, hop)
        else:
            t0 = time.perf_counter()
            first = variants.open_variant(variant, self.tb)
        cold = time.perf_counter() - t0
        try:
            n0 = _accepted(log)
            f0, th0 = len(_fds()), threading.active_count()
            t1 = time.perf_counter()
            if variant == "hand-reuse":
                second = variants.open_via_hop(self.tb, hop)
            else:
                second = variants.open_variant(variant, self.tb)
            warm = time.perf_counter() - t1
            f1, th1 = len(_fds()), threading.active_count()
            n1 = _accepted(log)
            second.close()
        finally:
            first.close()
            if hop is not None:
                hop.close()
        return {
            "cold": cold,
            "warm": warm,
            "hop_logins": n1 - n0,
            "fds": f1 - f0,
            "threads": th1 - th0,
        }

    def channel_probe(self, ignore: bool = False) -> dict[str, Any]:
        """Time the first and second channel open on a freshly authenticated hop.

        With ``ignore``, the client sends an SSH_MSG_IGNORE right after auth
        and waits 10 ms (not timed) before the first open: its segment carries
        the ACK that sshd's Nagle-delayed reply would otherwise wait for.
        """
        self._settle()
        tb = self.tb
        c = variants.new_client(tb)
        sock = variants.nodelay_socket(tb.ports["h1"])
        try:
            c.connect("127.0.0.1", tb.ports["h1"], sock=sock, **variants.auth_kwargs(tb))
            t = c.get_transport()
            assert t is not None
            if ignore:
                t.send_ignore()
                time.sleep(0.01)
            dest = ("127.0.0.1", tb.ports["target"])
            t0 = time.perf_counter()
            first = t.open_channel("direct-tcpip", dest, ("127.0.0.1", 0))
            t1 = time.perf_counter()
            second = t.open_channel("direct-tcpip", dest, ("127.0.0.1", 0))
            t2 = time.perf_counter()
            first.close()
            second.close()
        finally:
            c.close()
        return {"first": t1 - t0, "second": t2 - t1}

    # -- helpers ---------------------------------------------------------------

    def _settle(self, limit: float = 3.0, stable: float = 0.06) -> None:
        """Wait until threads from earlier connections are gone (bounded)."""
        gc.collect()
        deadline = time.monotonic() + limit
        last = (threading.active_count(), len(_fds()))
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.02)
            now = (threading.active_count(), len(_fds()))
            if now != last:
                last, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= stable:
                return


def _fds() -> dict[int, str]:
    out: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return out


def _fd_kind(target: str) -> str:
    if target.startswith("socket:"):
        return "socket"
    if target.startswith("pipe:"):
        return "pipe"
    if target.startswith("anon_inode:"):
        return target[len("anon_inode:"):].strip("[]")
    return "file"


def _children() -> list[int]:
    pids: list[int] = []
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            text = Path(f"/proc/self/task/{task}/children").read_text()
            pids.extend(int(p) for p in text.split())
    return pids


def _accepted(log: str) -> int:
    """How many logins the hop's sshd has accepted so far."""
    try:
        return Path(log).read_text(errors="replace").count("Accepted publickey")
    except OSError:
        return -1


def main() -> None:
    tb = TestbedInfo.load(sys.argv[1])
    worker = Worker(tb, sys.argv[2])
    for line in sys.stdin:
        req = json.loads(line)
        op = req.pop("op")
        if op == "quit":
            break
        if worker.kind == "hook" and worker.hook_error and op != "info":
            reply: dict[str, Any] = {"ok": False, "error": worker.hook_error}
        else:
            try:
                value = getattr(worker, op)(**req)
                reply = {"ok": True, "value": value}
            except Exception as exc:
                traceback.print_exc()
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        _OUT.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
