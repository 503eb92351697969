"""The ProxyCommand bridge with real child processes (no SSH yet: see test_hook_sshd.py)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from paraproxy.errors import ProxyCommandError
from paraproxy.proxycommand import ProxyCommandBridge, shell_argv

PY = shlex.quote(sys.executable)


def _py(code: str) -> str:
    """A ProxyCommand that runs ``code`` on this interpreter."""
    return f"{PY} -c {shlex.quote(code)}"


def _recv_all(sock: socket.socket, deadline: float = 10.0) -> bytes:
    """Read until EOF, failing the test rather than hanging."""
    sock.settimeout(deadline)
    out = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return out
        out += data


def _alive(pid: int) -> bool:
    """Whether ``pid`` names a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def bridges():
    """Bridges made by a test, closed however it ends."""
    made: list[ProxyCommandBridge] = []

    def make(command: str) -> ProxyCommandBridge:
        bridge = ProxyCommandBridge(command, "test")
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        bridge.close()


def test_shell_argv_is_openssh_s(monkeypatch):
    monkeypatch.setenv("SHELL", "/bin/bash")
    assert shell_argv("nc %h 22") == ["/bin/bash", "-c", "exec nc %h 22"]
    monkeypatch.setenv("SHELL", "")
    assert shell_argv("x")[0] == "/bin/sh"
    monkeypatch.delenv("SHELL")
    assert shell_argv("x")[0] == "/bin/sh"


def test_data_flows_both_ways_through_the_pair(bridges):
    sock = bridges(_py(
        "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d[::-1])"
    )).start()
    sock.sendall(b"hello")
    sock.shutdown(socket.SHUT_WR)  # EOF reaches the child as end of stdin
    assert _recv_all(sock) == b"olleh"


def test_shell_features_work_like_under_ssh(bridges, monkeypatch, tmp_path):
    monkeypatch.setenv("SHELL", "/bin/sh")
    monkeypatch.setenv("PP_WORD", "piped")
    sock = bridges("echo $PP_WORD | tr a-z A-Z").start()
    assert _recv_all(sock) == b"PIPED\n"


def test_exit_gives_eof_at_once_and_status(bridges):
    bridge = bridges(_py("import sys; sys.stderr.write('gone\\n'); sys.exit(3)"))
    sock = bridge.start()
    started = time.monotonic()
    assert _recv_all(sock) == b""
    assert time.monotonic() - started < 5  # EOF, not a timeout
    assert bridge.wait_exit(5) == 3
    assert bridge.stderr_tail == "gone"
    assert bridge.describe_exit() == "exited with status 3"


def test_command_not_found_is_127_with_the_shells_message(bridges):
    bridge = bridges("no-such-proxy-command-xyz")
    bridge.start()
    assert bridge.wait_exit(5) == 127
    assert "no-such-proxy-command-xyz" in bridge.stderr_tail


def test_shell_that_can_not_start_raises_proxy_error(monkeypatch):
    monkeypatch.setenv("SHELL", "/nonexistent/shell")
    bridge = ProxyCommandBridge("true", "test")
    with pytest.raises(ProxyCommandError) as info:
        bridge.start()
    assert "could not start /nonexistent/shell" in str(info.value)
    bridge.close()


def test_megabytes_of_stderr_do_not_block_the_proxy(bridges):
    # paramiko's ProxyCommand deadlocks past 64 KiB of unread stderr.
    bridge = bridges(_py(
        "import sys\n"
        "for i in range(20000): sys.stderr.write('noise %05d ' % i + 'x' * 40 + '\\n')\n"
        "sys.stderr.flush(); sys.stdout.write('done'); sys.stdout.flush()"
    ))
    sock = bridge.start()
    assert _recv_all(sock) == b"done"
    assert bridge.wait_exit(10) == 0
    tail = bridge.stderr_tail.splitlines()
    assert len(tail) == 20
    assert tail[-1].startswith("noise 19999")


def test_endless_stderr_line_is_bounded(bridges):
    bridge = bridges(_py("import sys; sys.stderr.write('y' * 1000000); sys.stderr.flush()"))
    bridge.start()
    assert bridge.wait_exit(10) == 0
    assert len(bridge.stderr_tail) <= 20 * 513


def test_close_terminates_and_reaps_a_running_proxy(bridges):
    bridge = bridges("sleep 60")
    bridge.start()
    pid = bridge.pid
    assert pid is not None and _alive(pid)
    bridge.close()
    assert not _alive(pid)
    assert bridge.exit_status == -signal.SIGTERM
    assert bridge.describe_exit() == "was killed by SIGTERM (sent by paraproxy)"


def test_close_kills_a_proxy_that_ignores_sigterm(bridges, tmp_path):
    ready = tmp_path / "ready"
    bridge = bridges(_py(
        "import signal, time, pathlib\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)"
    ))
    bridge.start()
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    bridge.close()
    assert bridge.exit_status == -signal.SIGKILL


def test_compound_command_leaves_no_orphan(bridges, tmp_path):
    # SIGTERM to the shell alone would orphan `sleep`: the whole group must go.
    pidfile = tmp_path / "pid"
    bridge = bridges(f"sleep 61 & echo $! > {pidfile}; wait")
    bridge.start()
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    orphan = int(pidfile.read_text())
    assert _alive(orphan)
    bridge.close()
    deadline = time.monotonic() + 5
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(orphan)


def test_close_is_idempotent_and_safe_after_exit(bridges):
    bridge = bridges("true")
    bridge.start()
    assert bridge.wait_exit(5) == 0
    bridge.close()
    bridge.close()
    assert bridge.describe_exit() == "exited with status 0"


def test_close_before_start_is_harmless():
    ProxyCommandBridge("true", "test").close()


def test_child_runs_in_its_own_process_group(bridges, tmp_path):
    out = tmp_path / "pgid"
    bridge = bridges(_py(
        f"import os; open({str(out)!r}, 'w').write('%d %d' % (os.getpid(), os.getpgid(0)))"
    ))
    bridge.start()
    assert bridge.wait_exit(5) == 0
    pid, pgid = map(int, out.read_text().split())
    assert pid == pgid == bridge.pid
    assert pgid != os.getpgid(0)


def test_child_sees_no_other_descriptor_of_ours(bridges, tmp_path):
    out = tmp_path / "fds"
    bridge = bridges(_py(
        f"import os; open({str(out)!r}, 'w').write(' '.join(os.listdir('/proc/self/fd')))"
    ))
    bridge.start()
    assert bridge.wait_exit(5) == 0
    fds = {int(fd) for fd in out.read_text().split()}
    # 0 and 1 are the pair, 2 the stderr pipe, one more is the listing itself
    # and the file being written.
    assert fds <= {0, 1, 2, 3, 4}


def test_failure_names_command_status_and_tail(bridges):
    bridge = bridges(_py(
        "import sys; sys.stderr.write('ssh: connect to host nowhere port 22: refused\\n');"
        " sys.exit(255)"
    ))
    bridge.start()
    bridge.wait_exit(5)
    bridge.close()
    error = bridge.failure("banner", EOFError())
    assert isinstance(error, ProxyCommandError)
    assert error.exit_status == 255
    assert error.phase == "banner"
    text = str(error)
    assert "exited with status 255 before the SSH banner" in text
    assert "refused" in text
    assert error.command.startswith(PY)


def test_exec_covers_only_the_first_command_as_in_openssh(bridges):
    # `exec true; exit 3`: the shell is replaced by `true`, so `exit 3` never runs.
    bridge = bridges("true; exit 3")
    bridge.start()
    assert bridge.wait_exit(5) == 0


def test_many_cycles_leave_nothing_behind(bridges):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        bridge = ProxyCommandBridge("exit 0", "cycle")
        bridge.start()
        bridge.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_no_file_is_created_anywhere(bridges, tmp_path, monkeypatch):
    # The original paraproxy left unix sockets in /tmp; a socket pair has no name.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    bridge = bridges("cat")
    sock = bridge.start()
    sock.sendall(b"x")
    assert sock.recv(1) == b"x"
    assert list(Path(tmp_path).iterdir()) == []
