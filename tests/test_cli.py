"""``python -m paraproxy``: config and plan, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run ``python -m paraproxy ARGS``."""
    return subprocess.run([sys.executable, "-m", "paraproxy", *args], capture_output=True,
                          text=True, timeout=60, check=False, **kwargs)


@pytest.fixture
def original_config(ssh_home):
    """The original paraproxy README's chain, plus where gatekeeper is."""
    return ssh_home.write_config(textwrap.dedent("""\
        Host gatekeeper
            HostName 198.18.1.2
            User root
        Host yuka
        \tProxyCommand ssh -q -A -x gatekeeper 'nc -w1 %h 22'
        Host *.kamakura
        \tProxyCommand ssh -q -A -x yuka 'nc -w 1 %h 22'
        """))


def test_config_prints_like_ssh_dash_g(original_config):
    done = _cli("config", "-F", str(original_config), "-l", "bob", "-p", "2200", "yuka")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "user bob" in lines
    assert "port 2200" in lines
    assert "hostname yuka" in lines
    assert "proxycommand ssh -q -A -x gatekeeper 'nc -w1 %h 22'" in lines
    oracle = subprocess.run(["ssh", "-G", "-F", str(original_config), "-l", "bob", "-p", "2200",
                             "yuka"], capture_output=True, text=True, check=True, timeout=30)
    for keyword in ("user", "port", "hostname", "proxycommand"):
        ours = [line for line in lines if line.split(" ", 1)[0] == keyword]
        theirs = [line for line in oracle.stdout.splitlines()
                  if line.split(" ", 1)[0] == keyword]
        assert ours == theirs


def test_plan_draws_the_chain_with_where_it_came_from(original_config):
    done = _cli("plan", "-F", str(original_config), "mayu.kamakura")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "# local -> gatekeeper -> yuka -> mayu.kamakura",
        "CONNECT 198.18.1.2:22",
        "SSHAUTH root@gatekeeper (198.18.1.2:22)",
        f"--> EXEC 'nc -w1 yuka 22'    # {original_config} line 5",
        "    SSHAUTH root@yuka (yuka:22)",
        f"    --> EXEC 'nc -w 1 mayu.kamakura 22'    # {original_config} line 7",
        "        SSHAUTH root@mayu.kamakura (mayu.kamakura:22)",
    ]


def test_plan_says_why_a_proxycommand_runs_as_a_process(ssh_home):
    path = ssh_home.write_config("Host x\n    ProxyCommand ssh gw nc %h %p | tee /dev/null\n")
    done = _cli("plan", "-F", str(path), "x")
    assert done.returncode == 0, done.stderr
    assert "running ProxyCommand as a process" in done.stdout
    assert "PROXY 'ssh gw nc x 22 | tee /dev/null'" in done.stdout


def test_bad_config_exits_1_with_file_and_line(ssh_home):
    path = ssh_home.write_config("Host x\n    Port nope\n")
    done = _cli("config", "-F", str(path), "x")
    assert done.returncode == 1
    assert f"{path} line 2" in done.stderr
    assert done.stdout == ""


def test_loop_is_reported_by_plan(ssh_home):
    path = ssh_home.write_config("Host a\n    ProxyJump b\nHost b\n    ProxyJump a\n")
    done = _cli("plan", "-F", str(path), "a")
    assert done.returncode == 1
    assert "loop" in done.stderr


def test_usage_error_exits_2():
    assert _cli("config").returncode == 2
    assert _cli("nonsense").returncode == 2


def test_plan_cites_the_proxyjump_line_for_every_hop_it_lists(ssh_home):
    path = ssh_home.write_config("Host gatekeeper\n    HostName 198.18.1.2\n"
                                 "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n")
    done = _cli("plan", "-F", str(path), "mayu.kamakura")
    assert done.returncode == 0, done.stderr
    jumps = [line for line in done.stdout.splitlines() if "--> JUMP" in line]
    assert len(jumps) == 2
    assert all(line.endswith(f"# {path} line 4") for line in jumps)
