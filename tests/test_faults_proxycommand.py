"""ProxyCommand faults against real OpenSSH (REFERENCE 3.3; issue 5 item 1).

Each case drives ``SSHClient.connect()`` through the hook with a ProxyCommand that misbehaves
in one way, in front of the test bed's gatekeeper sshd (198.18.1.2) or a throwaway ``sshd -i``.
Each must end with a clear :class:`ProxyCommandError` (phase, command, exit status, stderr
tail) within its bound, and the autouse ``no_leaks`` check proves nothing was left behind.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
import warnings

import paramiko
import pytest
from _faults import (
    GATEKEEPER,
    connected,
    cpu_during,
    gone,
    read_pids,
    relay_command,
    run,
    timed,
)
from testbed.clients import client_home
from testbed.leaks import child_processes, wait_until

from paraproxy import proxycommand
from paraproxy.errors import ProxyCommandError
from paraproxy.hook import chain_of

pytest_plugins = ["fault_report"]

TABLE = "ProxyCommand faults"


@pytest.fixture
def home(ssh_home, testbed):
    """HOME with id_ed25519 (authorized everywhere) and known_hosts for gatekeeper."""
    return client_home(ssh_home, testbed, host_keys=False, id_all=True, known=("gatekeeper",))


def _config(home, proxy: str, extra: str = "") -> None:
    home.write_config(
        f"Host gk\n    HostName {GATEKEEPER}\n    User root\n{extra}    ProxyCommand {proxy}\n"
    )


def _fails(fault_case, case: str, bound: str, limit: float, **kwargs):
    """connect("gk") must raise ProxyCommandError within ``limit`` seconds; return it and
    the report record."""
    record = fault_case(TABLE, case, bound)
    seconds, exc = timed(lambda: connected("gk", **kwargs).close())
    record.note(f"failed after {seconds:.2f} s")
    assert exc is not None, "connect() succeeded"
    record.seen(exc)
    assert isinstance(exc, ProxyCommandError), repr(exc)
    assert seconds < limit, f"took {seconds:.1f} s, bound {limit} s"
    return exc, record


# -- the proxy never gets going --------------------------------------------------------------


def test_command_not_found(home, fault_case):
    _config(home, "no-such-proxy-xyz %h %p")
    exc, _ = _fails(
        fault_case, "command not found", "error at once with status 127 and the "
                 "shell's message", 5)
    assert exc.exit_status == 127 and exc.phase == "banner"
    assert "no-such-proxy-xyz" in exc.command and "no-such-proxy-xyz" in exc.stderr_tail
    assert "exited with status 127 before the SSH banner" in str(exc)


@pytest.mark.parametrize(("proxy", "status"), [("true", 0), ("false", 1),
                                               ("sh -c 'echo bye >&2; exit 3'", 3)])
def test_exits_at_once(home, fault_case, proxy, status):
    _config(home, proxy)
    before = time.process_time()
    exc, record = _fails(
        fault_case, f"exits at once: {proxy}", f"error at once, status {status}, no "
                 "CPU spin", 5)
    cpu = time.process_time() - before
    record.note(f"CPU {cpu:.3f} s")
    assert exc.exit_status == status
    assert exc.phase == "banner"
    assert f"exited with status {status} before the SSH banner" in str(exc)
    if status == 3:
        assert "bye" in exc.stderr_tail
    assert cpu < 1.0, f"{cpu:.2f} s of CPU for a proxy that exited at once"


# -- garbage instead of a banner -------------------------------------------------------------


def test_endless_garbage_lines(home, fault_case):
    _config(home, "yes hello")
    exc, _ = _fails(
        fault_case, "garbage lines forever (yes hello)", "clear error after a "
                 "bounded number of lines (OpenSSH 1024, paramiko 100)", 10)
    assert exc.phase == "banner"
    _says_not_ssh(exc, "hello")


def _says_not_ssh(exc: ProxyCommandError, garbage: str) -> None:
    """A clear message: it says what came instead of a banner (not just how the proxy ended)."""
    reason = exc.error  # the message without the command line
    assert garbage in reason, f"the error does not say what the proxy sent: {reason!r}"
    assert any(w in reason for w in ("not an SSH server", "protocol version", "SSH banner")), reason


def test_two_thousand_junk_lines_then_a_real_server(home, fault_case, tmp_path):
    count = tmp_path / "lines"
    # Writes 2000 junk lines, then would relay to sshd; counts how many lines were taken.
    _config(home, f"sh -c 'i=0; while [ $i -lt 2000 ]; do echo junk line $i || exit 9; "
                  f"i=$((i+1)); echo $i > {count}; done; exec nc %h %p'")
    exc, record = _fails(
        fault_case, "2000 junk lines before the banner", "clear error after a bounded "
                 "number of lines", 10)
    assert exc.phase == "banner"
    _says_not_ssh(exc, "junk line")
    taken = int(count.read_text()) if count.exists() else 0
    record.note(f"the proxy wrote {taken} lines before it was stopped")


def test_endless_bytes_without_newline_connecttimeout(home, fault_case):
    _config(home, "yes hello | tr -d '\\n'", "    ConnectTimeout 2\n")
    exc, _ = _fails(
        fault_case, "endless bytes, no newline (ConnectTimeout 2)", "ConnectTimeout "
                 "(2 s) + 1 s, bounded memory", 3.5)
    assert "timed out after 2 s (ConnectTimeout) before the SSH banner" in str(exc)
    assert exc.exit_status is not None


def test_endless_bytes_without_newline_timeout_argument(home, fault_case):
    _config(home, "yes hello | tr -d '\\n'")
    rss0 = _rss()
    exc, _ = _fails(
        fault_case, "endless bytes, no newline (timeout=2)", "timeout= (2 s) + 1 s",
                 3.5, timeout=2)
    grown = _rss() - rss0
    assert "timed out after 2 s" in str(exc)
    assert grown < 256 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB"


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("how", ["ConnectTimeout 2", "timeout=2"])
def test_never_answers(home, fault_case, how):
    kwargs = {}
    if how.startswith("timeout"):
        _config(home, "sleep 3600")
        kwargs["timeout"] = 2
    else:
        _config(home, "sleep 3600", f"    {how}\n")
    exc, _ = _fails(
        fault_case, f"never answers (sleep 3600), {how}", f"{how.split()[-1]} + 1 s, "
                 "then killed and reaped", 3.5, **kwargs)
    assert exc.phase == "banner"
    assert "timed out after 2 s" in str(exc)
    assert exc.exit_status is not None and exc.exit_status < 0  # killed, reaped


def test_valid_banner_then_silence(home, fault_case):
    # A banner, then nothing: the deadline cuts the key exchange. paramiko's own handshake
    # timer (15 s) was started by then; it must not outlive the failure.
    _config(home, "sh -c 'echo SSH-2.0-OpenSSH_9.9 silent; exec sleep 60'",
            "    ConnectTimeout 2\n")
    exc, _ = _fails(fault_case, "valid banner, then silence (ConnectTimeout 2)",
                    "ConnectTimeout + 1 s, phase kex; no paramiko timer thread left", 3.5)
    assert exc.phase == "kex", str(exc)
    assert "timed out after 2 s (ConnectTimeout) during key exchange" in str(exc)


# -- dies during the handshake ---------------------------------------------------------------


@pytest.mark.parametrize(("mode", "phase", "words"), [
    ("kex", "kex", "during key exchange"),
    ("auth", "auth", "during authentication"),
])
def test_banner_then_exits(home, fault_case, mode, phase, words):
    _config(home, relay_command(mode))
    before = time.process_time()
    exc, _ = _fails(
        fault_case, f"valid banner, then exits {words}", "clear error at once "
                 "naming the phase, no spin", 5)
    cpu = time.process_time() - before
    assert exc.phase == phase, str(exc)
    assert words in str(exc)
    assert exc.exit_status == (7 if mode == "kex" else 8)
    assert f"exited with status {exc.exit_status}" in str(exc)
    assert "dying during" in exc.stderr_tail
    assert cpu < 1.5, f"{cpu:.2f} s of CPU"


# -- dies mid-session ------------------------------------------------------------------------


def test_dies_mid_session(home, fault_case, tmp_path):
    record = fault_case(TABLE, "dies mid-session (SIGKILL)", "channels see EOF, transport "
                        "inactive within 1 s, no busy loop, child reaped")
    _config(home, relay_command("plain"))
    client = connected("gk")
    try:
        chain = chain_of(client)
        assert chain is not None and chain.bridge is not None and chain.bridge.pid
        transport = client.get_transport()
        channel = transport.open_session()
        channel.exec_command("sleep 60")
        os.kill(chain.bridge.pid, signal.SIGKILL)
        wall, cpu = cpu_during(1.0, lambda: not transport.is_active())
        record.note(f"transport inactive after {wall:.3f} s")
        assert not transport.is_active(), "transport still active 1 s after the proxy died"
        channel.settimeout(5)
        assert channel.recv(1) == b""  # the channel saw EOF
        idle_wall, idle_cpu = cpu_during(1.0)
        record.note(f"CPU {cpu + idle_cpu:.3f} s over {wall + idle_wall:.2f} s")
        assert (cpu + idle_cpu) / (wall + idle_wall) < 0.5, "busy loop after the proxy died"
        assert chain.bridge.wait_exit(5) == -signal.SIGKILL
    finally:
        client.close()


# -- closing ---------------------------------------------------------------------------------


def test_ignores_sigterm(home, fault_case):
    record = fault_case(TABLE, "ignores SIGTERM", f"killed with SIGKILL after the "
                        f"{proxycommand._GRACE:g} s grace; close() never raises")
    _config(home, relay_command("plain", "--ignore-term", "--linger"))
    client = connected("gk")
    chain = chain_of(client)
    assert chain is not None and chain.bridge is not None
    assert run(client, "echo ok") == "ok"
    seconds, exc = timed(client.close)
    record.note(f"close() took {seconds:.2f} s")
    assert exc is None
    assert chain.bridge.exit_status == -signal.SIGKILL
    assert seconds < proxycommand._GRACE + 3


def test_compound_command_children_are_not_orphaned(home, fault_case, tmp_path):
    record = fault_case(TABLE, "compound shell command (background jobs, subshells)",
                        "no process of the command survives close()")
    pids = [tmp_path / f"pid{i}" for i in range(3)]
    _config(home, f"sleep 301 & echo $! > {pids[0]}; (sleep 302; true) & echo $! > {pids[1]}; "
                  f"sh -c 'echo $$ > {pids[2]}; sleep 303' & nc %h %p")
    client = connected("gk")
    try:
        assert run(client, "echo ok") == "ok"
        wait_until(lambda: len(read_pids(*pids)) == 3, 5)
        started = read_pids(*pids)
        assert len(started) == 3
        assert not any(gone(p) for p in started)
    finally:
        client.close()
    survivors = [p for p in started if not wait_until(lambda p=p: gone(p), 5)]
    record.note(f"{len(started)} background processes, {len(survivors)} survived")
    assert not survivors, f"orphans survived close(): {survivors}"


def test_megabytes_of_stderr_then_fails(home, fault_case):
    _config(home, "head -c 8000000 /dev/zero | tr '\\0' 'e' | fold -w 1000 >&2; "
                  "printf '\\nlast words\\n' >&2; exit 5")
    exc, _ = _fails(
        fault_case, "8 MB of stderr, then exits 5", "no deadlock; error with a "
                 "bounded stderr tail", 20)
    assert exc.exit_status == 5
    assert exc.stderr_tail.endswith("last words")
    assert len(exc.stderr_tail) < 20 * 1024


def test_megabytes_of_stderr_during_the_session(home, fault_case):
    record = fault_case(TABLE, "16 MB of stderr while carrying the session",
                        "no deadlock; session works")
    _config(home, "sh -c \"head -c 16000000 /dev/zero | tr '\\0' x | fold -w 4000 >&2\" & "
                  "exec nc %h %p")
    client = connected("gk")
    try:
        for i in range(20):
            assert run(client, f"echo {i}") == str(i)
    finally:
        client.close()
    record.note("20 commands ran while the proxy wrote 16 MB to stderr")


@pytest.mark.parametrize("tool", ["socat - TCP:%h:%p", "nc %h %p"])
def test_runs_as_another_user(home, fault_case, monkeypatch, tool):
    record = fault_case(TABLE, f"runs as another user (setpriv nobody {tool.split()[0]}), "
                        "signals refused with EPERM", "close() neither raises nor hangs; the "
                        "child exits because its socket closed")
    # The tests run as root, which may signal anyone: refuse signals to nobody's processes
    # as the kernel refuses them to an ordinary user.
    real_killpg = os.killpg
    refused = []

    def killpg(pgid: int, signum: int) -> None:
        if _uid(pgid) == 65534:
            refused.append(signum)
            raise PermissionError(1, "Operation not permitted")
        real_killpg(pgid, signum)

    monkeypatch.setattr(os, "killpg", killpg)
    _config(home, f"setpriv --reuid=nobody --regid=nogroup --clear-groups {tool}")
    client = connected("gk")
    chain = chain_of(client)
    assert chain is not None and chain.bridge is not None
    pid = chain.bridge.pid
    assert run(client, "echo ok") == "ok"
    assert _uid(pid) == 65534
    with _NoWarning():
        seconds, exc = timed(client.close)
    record.note(f"close() took {seconds:.2f} s; {len(refused)} signal(s) refused; proxy "
                f"{chain.bridge.describe_exit()}")
    assert exc is None, repr(exc)
    assert seconds < 3, f"close() took {seconds:.1f} s"
    assert wait_until(lambda: gone(pid), 5), "the other user's proxy is still running"


def _uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class _NoWarning:
    """Fail on any warning inside the block (a stuck supervisor warns)."""

    def __enter__(self):
        self._cm = warnings.catch_warnings(record=True)
        self.caught = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        assert not self.caught, [str(w.message) for w in self.caught]


def test_sshd_inetd_proxy_exits_mid_session(ssh_home, testbed, fault_case):
    # The ProxyCommand is the server itself (sshd -i): killing it is the server vanishing.
    record = fault_case(TABLE, "sshd -i as ProxyCommand, killed mid-session",
                        "EOF on the channel, transport inactive within 1 s")
    ssh_home.copy_key(testbed.key("all"), "id_ed25519")
    ssh_home.write_known_hosts([testbed.inetd_known_hosts_line("inetd-fault")])
    ssh_home.write_config(textwrap.dedent(f"""\
        Host inetd
            HostKeyAlias inetd-fault
            User root
            ProxyCommand {testbed.sshd_inetd_command()}
        """))
    client = connected("inetd")
    try:
        chain = chain_of(client)
        assert chain is not None and chain.bridge is not None
        chan = client.get_transport().open_session()
        chan.exec_command("sleep 60")
        os.killpg(chain.bridge.pid, signal.SIGKILL)
        wall, _ = cpu_during(1.0, lambda: not client.get_transport().is_active())
        record.note(f"inactive after {wall:.3f} s")
        assert not client.get_transport().is_active()
        chan.settimeout(5)
        assert chan.recv(1) == b""
    finally:
        client.close()


def test_paramiko_proxycommand_failure_is_still_caught(home):
    # Code written for plain paramiko catches ProxyCommandFailure; it still does.
    _config(home, "false")
    with pytest.raises(paramiko.ProxyCommandFailure):
        connected("gk")


# -- ProxyUseFdpass ----------------------------------------------------------------------------


def test_fdpass_nc_dash_f_works_and_leaves_no_process(home, fault_case):
    record = fault_case(TABLE, "ProxyUseFdpass yes with nc -F", "connects; the command exits "
                        "once it passed the socket; nothing left after close()")
    _config(home, "nc -F %h %p", "    ProxyUseFdpass yes\n")
    client = connected("gk")
    try:
        assert run(client, "echo $SSH_CONNECTION").split()[2] == GATEKEEPER
        assert wait_until(lambda: not child_processes_named("nc"), 5), "nc -F still running"
    finally:
        client.close()
    record.note("nc -F exited after passing its socket")


@pytest.mark.parametrize(("proxy", "extra", "limit"), [
    ("nc %h %p", "", 5),
    ("true", "", 5),
    ("sleep 3600", "    ConnectTimeout 2\n", 3.5),
])
def test_fdpass_command_that_passes_no_socket(home, fault_case, proxy, extra, limit):
    _config(home, proxy, "    ProxyUseFdpass yes\n" + extra)
    exc, _ = _fails(fault_case, f"ProxyUseFdpass yes, but {proxy!r} passes no socket"
                    + (" (ConnectTimeout 2)" if extra else ""),
                    f"a clear error within {limit} s; the command stopped", limit)
    assert "ProxyUseFdpass" in str(exc), str(exc)
    if extra:  # cut by the deadline: the message must say so
        assert "timed out after 2 s" in str(exc), str(exc)


def test_fdpass_command_that_never_answers_without_a_timeout(home, fault_case):
    # No ConnectTimeout and no timeout=: a normal ProxyCommand is still bounded by paramiko's
    # 15 s banner timeout; a ProxyUseFdpass command that never passes a socket must be too.
    record = fault_case(TABLE, "ProxyUseFdpass yes, 'sleep 3600', no timeout set",
                        "bounded like a normal ProxyCommand (15 s banner timeout) + 5 s")
    _config(home, "sleep 3600", "    ProxyUseFdpass yes\n")
    outcome: list[object] = []

    def attempt() -> None:
        seconds, exc = timed(lambda: connected("gk").close())
        outcome.append((seconds, exc))

    worker = threading.Thread(target=attempt, name="fdpass-attempt")
    worker.start()
    worker.join(20)
    hung = worker.is_alive()
    if hung:  # unblock it: the command dies, the wait for its socket ends
        for pid in child_processes_named("sleep"):
            os.kill(pid, signal.SIGKILL)
        worker.join(10)
    record.note("still waiting after 20 s" if hung else f"failed after {outcome[0][0]:.2f} s")
    if outcome:
        record.seen(outcome[0][1] or "connected")
    assert not hung, "connect() waited more than 20 s for a socket that never came"
    assert isinstance(outcome[0][1], ProxyCommandError), repr(outcome[0][1])


def child_processes_named(name: str) -> list[int]:
    """Running (non-zombie) children of this process whose argv[0] is ``name``."""
    return [c.pid for c in child_processes().values()
            if c.state != "Z" and os.path.basename(c.cmdline.split()[0]) == name]
