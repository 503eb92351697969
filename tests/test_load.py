"""Load and endurance against real OpenSSH (issue 5 item 4). CI runs it; it takes a few minutes.

* 500 sequential connect/close cycles through a ProxyCommand, 200 through the two-hop chain
  (ProxyJump gatekeeper,yuka -> mayu.kamakura): the process's descriptors, threads and child
  processes are sampled after a warm-up and after the last cycle, and may not grow at all;
* 64 concurrent connections through the chain from one process;
* a 1 GiB download through the chain, checksummed on both ends.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
import traceback

import pytest
from _faults import IDENTITIES, chain_home, connected, run, sample
from testbed.leaks import wait_until

pytest_plugins = ["fault_report"]

TABLE = "Load and endurance"
CHAIN = "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n" + IDENTITIES
PROXY = "Host gk\n    HostName 198.18.1.2\n    User root\n    ProxyCommand nc %h %p\n"


@pytest.fixture
def home(ssh_home, testbed):
    return chain_home(ssh_home, testbed)


def _cycles(host: str, count: int, record) -> None:  # type: ignore[no-untyped-def]
    """``count`` connect/close cycles; resources after == resources after the first one."""
    client = connected(host)  # warm-up: imports, caches, the first thread pools
    assert run(client, "echo ok") == "ok"
    client.close()
    assert wait_until(lambda: sample() == _settled(), 5)
    before = sample()
    start = time.monotonic()
    for i in range(count):
        client = connected(host)
        try:
            if i % 50 == 0:
                assert run(client, "echo ok") == "ok"
        finally:
            client.close()
    seconds = time.monotonic() - start
    after: list[tuple[int, int, int]] = []

    def back() -> bool:
        after[:] = [sample()]
        return all(a <= b for a, b in zip(after[0], before))

    ok = wait_until(back, 5)
    record.note(f"{count} cycles in {seconds:.1f} s ({1000 * seconds / count:.0f} ms each); "
                f"fds/threads/children before {before}, after {after[0]}")
    assert ok, f"grew over {count} cycles: (fds, threads, children) {before} -> {after[0]}"


def _settled() -> tuple[int, int, int]:
    return sample()


def test_500_cycles_through_a_proxycommand(home, fault_case):
    record = fault_case(TABLE, "500 sequential connect/close cycles through ProxyCommand nc",
                        "fds, threads and children constant")
    home.write_config(PROXY)
    _cycles("gk", 500, record)


def test_200_cycles_through_the_two_hop_chain(home, fault_case):
    record = fault_case(TABLE, "200 sequential connect/close cycles through ProxyJump "
                        "gatekeeper,yuka", "fds, threads and children constant")
    home.write_config(CHAIN)
    _cycles("mayu.kamakura", 200, record)


def test_64_concurrent_connections_through_the_chain(home, fault_case):
    record = fault_case(TABLE, "64 concurrent connections through the chain, one process",
                        "all succeed, each lands on mayu.kamakura; nothing left")
    home.write_config(CHAIN)
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(64, timeout=60)

    def worker() -> None:
        try:
            barrier.wait()
            client = connected("mayu.kamakura")
            try:
                results.append(run(client, "echo $SSH_CONNECTION").split()[2])
            finally:
                client.close()
        except BaseException as exc:
            errors.append(exc)

    start = time.monotonic()
    threads = [threading.Thread(target=worker, name=f"load-worker-{i}") for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    record.note(f"{len(results)} ok, {len(errors)} failed in {time.monotonic() - start:.1f} s")
    if errors:
        record.seen(errors[0])
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:3]
    assert results == ["198.18.3.2"] * 64


def test_one_gib_download_through_the_chain(home, fault_case):
    record = fault_case(TABLE, "1 GiB download through the two-hop chain",
                        "sha256 equal at both ends, every byte delivered")
    home.write_config(CHAIN)
    size = 1 << 30
    client = connected("mayu.kamakura")
    try:
        chan = client.get_transport().open_session()
        chan.exec_command(f"bash -c 'head -c {size} /dev/urandom | tee >(sha256sum >&2)'")
        digest = hashlib.sha256()
        got = 0
        start = time.monotonic()
        with _StallWatch(lambda: got) as watch:
            try:
                while True:
                    data = chan.recv(1 << 20)
                    if not data:
                        break
                    digest.update(data)
                    got += len(data)
            except Exception as exc:
                record.seen(exc)
                record.note(f"stalled at {got} bytes; thread stacks 5 s into the stall:\n"
                            + watch.stacks)
                raise AssertionError(f"transfer died at {got} bytes: {exc!r}\n"
                                     f"thread stacks 5 s into the stall:\n{watch.stacks}") from exc
        seconds = time.monotonic() - start
        status = chan.recv_exit_status()
        err = b""
        while True:
            part = chan.recv_stderr(65536)
            if not part:
                break
            err += part
        chan.close()
    finally:
        client.close()
    remote = err.decode().split()[0] if err.split() else ""
    record.note(f"{got} bytes in {seconds:.1f} s ({got / seconds / 1e6:.0f} MB/s); exit {status}")
    assert got == size
    assert status == 0
    assert remote == digest.hexdigest(), (remote, digest.hexdigest())


class _StallWatch:
    """Diagnostics only: if ``progress()`` stops moving for 5 s, keep every thread's stack."""

    def __init__(self, progress) -> None:  # type: ignore[no-untyped-def]
        self.progress = progress
        self.stacks = "(no stall seen)"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-watch", daemon=True)

    def __enter__(self) -> _StallWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last, since = self.progress(), time.monotonic()
        while not self._stop.wait(0.5):
            now = self.progress()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since > 5 and self.stacks == "(no stall seen)":
                frames = sys._current_frames()
                parts = []
                for thread in threading.enumerate():
                    frame = frames.get(thread.ident or 0)
                    if frame is not None and thread is not threading.current_thread():
                        stack = "".join(traceback.format_stack(frame)[-6:])
                        parts.append(f"--- {thread.name}\n{stack}")
                self.stacks = "\n".join(parts)
