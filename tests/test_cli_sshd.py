"""``python -m paraproxy run`` and ``check`` against real OpenSSH through the chain."""

from __future__ import annotations

import subprocess
import sys

import pytest
from testbed.clients import GATEKEEPER, client_home, identities

CONFIG = identities(
    yuka="ProxyCommand ssh -q -A -x gatekeeper 'nc %h 22'",
    mayu="ProxyJump gatekeeper,yuka",
)


@pytest.fixture
def home(ssh_home, testbed):
    """HOME with per-host keys and known hosts."""
    return client_home(ssh_home, testbed, config=CONFIG)


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m paraproxy ARGS`` with ``stdin``."""
    return subprocess.run([sys.executable, "-m", "paraproxy", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def test_run_streams_stdout_and_exits_with_the_remote_status(home):
    done = _cli("run", "mayu.kamakura", "--", "echo", "$SSH_CONNECTION;", "exit", "3")
    assert done.returncode == 3, done.stderr
    assert done.stdout.split()[2] == "198.18.3.2"


def test_run_streams_stdin_and_stderr_separately(home):
    data = "".join(f"line {i}\n" for i in range(20000))
    done = _cli("run", "mayu.kamakura", "--", "sh", "-c", "'cat; echo oops >&2'", stdin=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout == data
    assert done.stderr == "oops\n"


def test_run_that_cannot_connect_exits_255_naming_the_hop(home, testbed):
    home.write_known_hosts([testbed.known_hosts_line("gatekeeper", GATEKEEPER)])
    done = _cli("run", "mayu.kamakura", "--", "true")
    assert done.returncode == 255
    assert done.stderr.startswith("paraproxy: hop 2/3 yuka (root@yuka:22): host key for yuka")


def test_check_reports_every_hop(home):
    done = _cli("check", "yuka")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"OK      hop 1/2 gatekeeper (root@{GATEKEEPER}:22)")
    assert "known as 198.18.1.2, authenticated by publickey" in lines[0]
    assert lines[1].startswith("OK      hop 2/2 yuka (root@yuka:22)")
    assert "ssh-ed25519 SHA256:" in lines[1]
    assert lines[2].startswith("OK      yuka reached in ")


def test_check_names_the_first_failure(home, testbed):
    home.write_known_hosts([testbed.known_hosts_line("gatekeeper", GATEKEEPER)])
    done = _cli("check", "mayu.kamakura")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("OK      hop 1/3 gatekeeper")
    assert lines[-1].startswith("FAILED  hop 2/3 yuka (root@yuka:22): host key for yuka is not "
                                "known")
