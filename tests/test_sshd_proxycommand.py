"""End to end against real OpenSSH: one host behind a ProxyCommand, through the hook.

Everything here runs on the namespace test bed (``testbed`` fixture): gatekeeper is a real
sshd at 198.18.1.2, and ProxyCommands are real ``socat``/``nc``/``sshd -i`` processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import paramiko
import pytest
from testbed.clients import GATEKEEPER, client_home, connected, run

from paraproxy.errors import InvalidNameError, ProxyCommandError
from paraproxy.hook import chain_of

NC_CONFIG = f"Host gk\n    HostName {GATEKEEPER}\n    User root\n    ProxyCommand nc %h %p\n"


@pytest.fixture
def home(ssh_home, testbed):
    """HOME with id_ed25519 (authorized everywhere) and known_hosts for gatekeeper."""
    return client_home(ssh_home, testbed, host_keys=False, id_all=True, known=("gatekeeper",),
                      gatekeeper_as=(GATEKEEPER, "gatekeeper"))


def test_issue_example_socat_proxycommand_reaches_real_sshd(home):
    home.write_config(textwrap.dedent("""\
        Host gatekeeper
            HostName 198.18.1.2
            User root
            IdentityFile ~/.ssh/id_ed25519
            ProxyCommand socat - TCP:%h:%p
        """))
    client = connected("gatekeeper")
    try:
        assert run(client, "cat /etc/hostname 2>/dev/null; hostname") != ""
        # The server saw the connection come from the proxy's own TCP connection.
        assert run(client, "echo $SSH_CONNECTION").split()[2] == GATEKEEPER
        chain = chain_of(client)
        assert chain is not None and chain.bridge is not None
        assert chain.bridge.exit_status is None  # socat still carrying the session
    finally:
        client.close()
    assert chain.bridge.exit_status is not None  # reaped by close()


@pytest.mark.parametrize("proxy", ["nc %h %p", "socat STDIO TCP:%h:%p", "/usr/bin/nc %h %p"])
def test_common_proxycommands(home, proxy):
    home.write_config(
        f"Host gk\n    HostName {GATEKEEPER}\n    User root\n    ProxyCommand {proxy}\n"
    )
    client = connected("gk")
    try:
        assert run(client, "whoami") == "root"
    finally:
        client.close()


def test_sshd_inetd_as_proxycommand_with_hostkeyalias(ssh_home, testbed):
    # OpenSSH regress's trick: the ProxyCommand *is* the server (sshd -i over stdio).
    ssh_home.copy_key(testbed.key("all"), "id_ed25519")
    ssh_home.write_known_hosts([testbed.inetd_known_hosts_line("localhost-with-alias")])
    ssh_home.write_config(
        "Host somehost\n    HostKeyAlias localhost-with-alias\n    User root\n"
        f"    ProxyCommand {testbed.sshd_inetd_command()}\n"
    )
    client = connected("somehost")
    try:
        # Through sshd -i there is no TCP connection at all.
        assert run(client, "echo $SSH_CONNECTION").startswith("UNKNOWN 65535 ")
    finally:
        client.close()


def test_tokens_are_expanded_once_with_effective_values(home, tmp_path):
    seen = tmp_path / "seen"
    home.write_config(textwrap.dedent(f"""\
        Host t5
            HostName {GATEKEEPER}
            User root
            ProxyCommand sh -c 'echo "h=%h p=%p r=%r n=%n pct=%% home=$HOME" >{seen};exec nc %h %p'
        """))
    client = connected("t5")
    client.close()
    # $HOME is left to the shell, as OpenSSH does; %% is a literal percent.
    assert seen.read_text().strip() == f"h={GATEKEEPER} p=22 r=root n=t5 pct=% home={home.path}"


def test_explicit_port_and_user_are_the_command_line(home, tmp_path, testbed):
    seen = tmp_path / "seen"
    home.write_config(textwrap.dedent(f"""\
        Host gk
            HostName {GATEKEEPER}
            User nobody
            Port 2200
            ProxyCommand sh -c 'echo "%r %p" > {seen}; exec nc %h %p'
        """))
    client = connected("gk", username="root", port=22)
    client.close()
    assert seen.read_text().split() == ["root", "22"]


def test_connecttimeout_bounds_a_proxy_that_never_answers(home):
    home.write_config(
        f"Host slow\n    HostName {GATEKEEPER}\n    ConnectTimeout 1\n    ProxyCommand sleep 60\n"
    )
    with pytest.raises(ProxyCommandError) as info:
        connected("slow", username="root")
    error = info.value
    assert error.phase == "banner"
    assert "sleep 60" in error.command
    assert "killed by SIGTERM" in str(error) or "banner" in str(error)


def test_proxy_that_cannot_be_found_says_so(home):
    home.write_config("Host gone\n    ProxyCommand no-such-proxy-xyz %h %p\n")
    with pytest.raises(ProxyCommandError) as info:
        connected("gone", username="root")
    assert info.value.exit_status == 127
    assert "no-such-proxy-xyz" in info.value.stderr_tail
    assert "exited with status 127 before the SSH banner" in str(info.value)


def test_megabyte_of_proxy_stderr_does_not_block(home):
    home.write_config(textwrap.dedent(f"""\
        Host noisy
            HostName {GATEKEEPER}
            User root
            ProxyCommand head -c 1000000 /dev/zero | tr '\\0' x >&2; exec nc %h %p
        """))
    client = connected("noisy")
    try:
        assert run(client, "echo fine") == "fine"
    finally:
        client.close()


def test_proxy_dying_mid_session_is_noticed_and_reaped(home):
    home.write_config(NC_CONFIG)
    client = connected("gk")
    try:
        chain = chain_of(client)
        assert chain is not None and chain.bridge is not None and chain.bridge.pid
        channel = client.get_transport().open_session()
        channel.exec_command("sleep 30")
        os.kill(chain.bridge.pid, signal.SIGKILL)
        # The session sees EOF and the transport closes (no busy loop, no hang).
        channel.settimeout(10)
        assert channel.recv(1) == b""
        transport = client.get_transport()
        deadline = time.monotonic() + 10
        while transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not transport.is_active()
        assert chain.bridge.wait_exit(10) == -signal.SIGKILL
    finally:
        client.close()


def test_hostile_name_runs_nothing(home, tmp_path):
    marker = tmp_path / "pwned"
    home.write_config("Host *\n    ProxyCommand nc %h %p\n")
    with pytest.raises(InvalidNameError):
        connected(f"x`touch {marker}`", username="root")
    with pytest.raises(InvalidNameError):
        connected(f"$(touch {marker})", username="root")
    assert not marker.exists()


def test_many_connect_close_cycles_leave_nothing(home):
    home.write_config(NC_CONFIG)
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        client = connected("gk")
        client.close()
    # The autouse leak check asserts threads and children; fds must not grow per cycle.
    assert len(os.listdir("/proc/self/fd")) <= fds + 2


def test_verbose_mode_reports_each_step_on_stderr(home):
    home.write_config(NC_CONFIG)
    program = textwrap.dedent("""\
        import paraproxy, paramiko
        c = paramiko.SSHClient(); c.load_system_host_keys()
        c.connect("gk", password="not-a-real-secret-42")
        c.exec_command("true")[1].read()
        c.close()
        """)
    env = {**os.environ, "PARAMIKO_SSH_HOOK_VERBOSE": "1"}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    for step in ("plan: local -> [nc 198.18.1.2 22] -> gk", "PROXY", "started pid",
                 "SSHAUTH root@gk", "connected", "exited"):
        assert step in err, f"{step!r} missing from verbose output:\n{err}"
    assert "not-a-real-secret-42" not in err
    assert all(line.startswith("paraproxy: ") for line in err.splitlines() if line)


def test_without_verbose_nothing_is_printed(home):
    home.write_config(NC_CONFIG)
    program = (
        "import paraproxy, paramiko\n"
        "c = paramiko.SSHClient(); c.load_system_host_keys(); c.connect('gk'); c.close()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PARAMIKO_SSH_HOOK_VERBOSE"}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_trickling_proxy_is_cut_at_the_deadline(home, tmp_path):
    # 1 byte every 0.2 s, never a newline: paramiko's banner clock restarts on every byte.
    script = tmp_path / "trickle.py"
    script.write_text("import sys, time\n"
                      "while True: sys.stdout.write('x'); sys.stdout.flush(); time.sleep(0.2)\n")
    trickle = f"{sys.executable} {script}"
    home.write_config(f"Host trickle\n    HostName {GATEKEEPER}\n    ConnectTimeout 2\n"
                      f"    ProxyCommand {trickle}\n")
    with pytest.raises(ProxyCommandError) as info:
        connected("trickle", username="root")
    assert "timed out after 2 s (ConnectTimeout) before the SSH banner" in str(info.value)
    assert info.value.exit_status is not None  # stopped and reaped


def test_proxyusefdpass_hands_over_the_socket_and_no_process_stays(home):
    home.write_config(f"Host gk\n    HostName {GATEKEEPER}\n    User root\n"
                      "    ProxyUseFdpass yes\n    ProxyCommand nc -F %h %p\n")
    client = connected("gk")
    try:
        chain = chain_of(client)
        assert chain is not None and chain.bridge is not None
        assert chain.bridge.wait_exit(10) == 0  # nc -F passed the socket and left
        assert run(client, "echo $SSH_CONNECTION").split()[2] == GATEKEEPER
    finally:
        client.close()


def test_proxyusefdpass_with_a_command_that_passes_nothing(home):
    home.write_config(f"Host gk\n    HostName {GATEKEEPER}\n    User root\n"
                      "    ProxyUseFdpass yes\n    ProxyCommand echo nothing to pass >&2\n")
    with pytest.raises(ProxyCommandError) as info:
        connected("gk")
    assert "without passing a socket (ProxyUseFdpass)" in str(info.value)
    assert "nothing to pass" in info.value.stderr_tail


def test_proxycommand_dash_is_refused_clearly(home):
    path = home.write_config("Host gk\n    ProxyCommand -\n")
    with pytest.raises(paramiko.ConfigParseError) as info:
        connected("gk", username="root")
    assert f"{path} line 2" in str(info.value)
    assert "ProxyCommand -" in str(info.value)
