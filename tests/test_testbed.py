"""The namespace test bed itself: topology, name resolution, OpenSSH end to end, teardown."""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import paramiko
import pytest
from testbed import Snapshot, SshTestbed, check_back_to, cleanup_stale, wait_until
from testbed.home import GUARD, SshHome

# Tests using the `testbed` fixture are marked `netns` by conftest.py; the others here that
# need root and namespaces carry the mark themselves.

TESTS_DIR = Path(__file__).resolve().parent


def banner(address: str, port: int = 22, timeout: float = 3.0) -> bytes:
    """The first line an SSH server at ``address`` sends."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        return sock.recv(256).split(b"\r\n")[0]


# -- topology --------------------------------------------------------------------------------


def test_gatekeeper_answers_ssh_from_the_root_namespace(testbed: SshTestbed) -> None:
    assert testbed.gatekeeper.address == "198.18.1.2"
    assert banner("198.18.1.2").startswith(b"SSH-2.0-OpenSSH_")
    assert banner("198.18.1.2", 2222).startswith(b"SSH-2.0-OpenSSH_")


@pytest.mark.parametrize("address", ["198.18.2.1", "198.18.2.2", "198.18.3.1", "198.18.3.2"])
def test_inner_addresses_are_unreachable_from_the_root_namespace(
    testbed: SshTestbed, address: str
) -> None:
    start = time.monotonic()
    with pytest.raises(OSError):
        socket.create_connection((address, 22), timeout=1.0).close()
    assert time.monotonic() - start < 1.5


_PROBE = textwrap.dedent(
    """
    import json, socket, sys
    out = {}
    for name in sys.argv[1:]:
        try:
            addr = socket.getaddrinfo(name, 22, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
        except OSError as e:
            out[name] = "unresolved"
            continue
        try:
            with socket.create_connection((addr, 22), timeout=1.5) as s:
                out[name] = addr + " " + s.recv(64).decode(errors="replace").split("-")[0]
        except OSError as e:
            out[name] = addr + " unreachable"
    out["resolv.conf"] = open("/etc/resolv.conf").read()
    print(json.dumps(out))
    """
)


def probe(testbed: SshTestbed, host: str, names: Sequence[str]) -> dict[str, str]:
    """From inside ``host``'s namespace: resolve each name and connect to its port 22."""
    proc = testbed.run_in(host, [sys.executable, "-I", "-S", "-c", _PROBE, *names])
    assert proc.returncode == 0, proc.stderr
    result: dict[str, str] = json.loads(proc.stdout)
    return result


def test_inside_gatekeeper_yuka_resolves_and_answers_but_mayu_does_not(
    testbed: SshTestbed,
) -> None:
    seen = probe(testbed, "gatekeeper", ["gatekeeper", "yuka", "mayu.kamakura", "198.18.3.2"])
    assert seen["gatekeeper"] == "198.18.1.2 SSH"
    assert seen["yuka"] == "198.18.2.2 SSH"
    assert seen["mayu.kamakura"] == "unresolved"
    assert seen["198.18.3.2"] == "198.18.3.2 unreachable"
    assert seen["resolv.conf"].startswith("nameserver 127.0.0.1\n")


def test_inside_yuka_mayu_kamakura_resolves_and_answers(testbed: SshTestbed) -> None:
    seen = probe(testbed, "yuka", ["mayu.kamakura", "mayu", "gatekeeper", "198.18.1.1"])
    assert seen["mayu.kamakura"] == "198.18.3.2 SSH"
    assert seen["mayu"] == "198.18.3.2 SSH"
    assert seen["gatekeeper"] == "198.18.2.1 SSH"
    assert seen["198.18.1.1"] == "198.18.1.1 unreachable"


def test_root_namespace_has_no_hosts_entry_for_the_test_hosts(testbed: SshTestbed) -> None:
    for name in ("gatekeeper", "yuka", "mayu.kamakura"):
        assert name not in Path("/etc/hosts").read_text().split()


# -- OpenSSH itself through the topology ------------------------------------------------------


def write_openssh_config(
    testbed: SshTestbed, directory: Path, keys: Mapping[str, str], extra: str = ""
) -> Path:
    """An ssh -F config: strict host keys from a private known_hosts, BatchMode, ``keys``."""
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(
        "".join(
            testbed.known_hosts_line(host, name) + "\n"
            for host, name in [
                ("gatekeeper", "198.18.1.2"),
                ("gatekeeper", "[198.18.1.2]:2222"),
                ("yuka", "yuka"),
                ("mayu", "mayu.kamakura"),
            ]
        )
    )
    blocks = [extra, "Host gatekeeper\n    HostName 198.18.1.2\n"]
    blocks += [f"Host {host}\n    IdentityFile {testbed.key(key)}\n" for host, key in keys.items()]
    blocks.append(
        textwrap.dedent(
            f"""\
            Host *
                User root
                IdentitiesOnly yes
                IdentityAgent none
                UserKnownHostsFile {known_hosts}
                GlobalKnownHostsFile /dev/null
                StrictHostKeyChecking yes
                CheckHostIP no
                UpdateHostKeys no
                BatchMode yes
                ConnectTimeout 5
                ControlMaster no
                ControlPath none
                LogLevel ERROR
            """
        )
    )
    config = directory / "ssh_config"
    config.write_text("\n".join(blocks))
    return config


def ssh(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real OpenSSH client with ``config``."""
    env = {"PATH": os.environ["PATH"], "HOME": str(config.parent), "SHELL": "/bin/sh"}
    return subprocess.run(
        ["ssh", "-F", str(config), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


PER_HOST_KEYS = {"gatekeeper": "gatekeeper", "yuka": "yuka", "mayu.kamakura": "mayu"}


def test_openssh_runs_a_command_on_gatekeeper(testbed: SshTestbed, tmp_path: Path) -> None:
    config = write_openssh_config(testbed, tmp_path, PER_HOST_KEYS)
    mark = testbed.gatekeeper.sshd.log_mark() if testbed.gatekeeper.sshd else 0
    result = ssh(config, "gatekeeper", "echo ok")
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
    assert testbed.gatekeeper.sshd is not None
    testbed.gatekeeper.sshd.wait_for_log(
        r"Accepted publickey for root from 198\.18\.1\.1 port \d+ ssh2: ED25519 "
        + re.escape(testbed.key_fingerprint("gatekeeper")),
        since=mark,
    )


def test_openssh_reaches_mayu_kamakura_through_two_jumps(
    testbed: SshTestbed, tmp_path: Path
) -> None:
    config = write_openssh_config(testbed, tmp_path, PER_HOST_KEYS)
    assert testbed.mayu.sshd is not None
    mark = testbed.mayu.sshd.log_mark()
    result = ssh(config, "-J", "gatekeeper,yuka", "mayu.kamakura", "echo ok; hostname -I")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "198.18.3.2"]
    testbed.mayu.sshd.wait_for_log(
        r"Accepted publickey for root from 198\.18\.3\.1 port \d+ ssh2: ED25519 "
        + re.escape(testbed.key_fingerprint("mayu")),
        since=mark,
    )


def test_openssh_reaches_mayu_with_the_original_readme_chain(
    testbed: SshTestbed, tmp_path: Path
) -> None:
    readme = textwrap.dedent(
        """\
        Host yuka
            ProxyCommand ssh -F CONFIG -q -A -x gatekeeper 'nc -w1 %h 22'
        Host *.kamakura
            ProxyCommand ssh -F CONFIG -q -A -x yuka 'nc -w 1 %h 22'
        """
    ).replace("CONFIG", str(tmp_path / "ssh_config"))
    config = write_openssh_config(testbed, tmp_path, {"*": "all"}, extra=readme)
    result = ssh(config, "mayu.kamakura", "echo ok")
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_per_host_keys_are_authorized_on_their_own_host_only(
    testbed: SshTestbed, tmp_path: Path
) -> None:
    config = write_openssh_config(testbed, tmp_path, {"*": "gatekeeper"})
    assert ssh(config, "gatekeeper", "true").returncode == 0
    refused = ssh(config, "-J", "gatekeeper", "yuka", "true")
    assert refused.returncode == 255
    assert "Permission denied (publickey)" in refused.stderr


def test_gatekeeper_port_2222_refuses_forwarding(testbed: SshTestbed, tmp_path: Path) -> None:
    config = write_openssh_config(testbed, tmp_path, {"*": "all"})
    assert ssh(config, "-p", "2222", "gatekeeper", "echo ok").stdout == "ok\n"
    handle = testbed.gatekeeper_noforward
    mark = handle.log_mark()
    refused = ssh(config, "-J", "gatekeeper:2222", "yuka", "true")
    assert refused.returncode == 255
    assert "stdio forwarding failed" in refused.stderr, refused.stderr
    handle.wait_for_log(r"refused local port forward: .* target yuka port 22", since=mark)
    assert ssh(config, "-J", "gatekeeper", "yuka", "echo ok").stdout == "ok\n"


def test_inetd_sshd_as_proxycommand(testbed: SshTestbed, tmp_path: Path) -> None:
    command = testbed.sshd_inetd_command("proxied")
    config = write_openssh_config(testbed, tmp_path, {"*": "all"})
    with (tmp_path / "known_hosts").open("a") as f:
        f.write(testbed.known_hosts_line("proxied", "localhost-with-alias") + "\n")
    result = ssh(
        config,
        "-o",
        f"ProxyCommand={command}",
        "-o",
        "HostKeyAlias=localhost-with-alias",
        "somehost",
        "echo $SSH_CONNECTION",
    )
    assert (result.returncode, result.stdout) == (0, "UNKNOWN 65535 UNKNOWN 65535\n"), result.stderr
    assert "Accepted publickey for root" in testbed.inetd_log_path("proxied").read_text()
    assert testbed.inetd_known_hosts_line("x", "proxied") == testbed.known_hosts_line(
        "proxied", "x"
    )


def test_extra_sshd_variant_starts_and_stops(testbed: SshTestbed) -> None:
    handle = testbed.start_sshd("yuka", 2200, {"MaxStartups": "1", "Banner": None})
    try:
        assert handle.running
        assert "MaxStartups 1\n" in handle.config_path.read_text()
        proc = testbed.run_in(
            "gatekeeper",
            [sys.executable, "-I", "-S", "-c", _PROBE.replace(", 22", ", 2200"), "yuka"],
        )
        assert json.loads(proc.stdout)["yuka"] == "198.18.2.2 SSH", proc.stderr
    finally:
        handle.stop()
    assert handle.process.returncode is not None
    assert handle.pid not in testbed.yuka.namespace.pids()


def test_changed_host_key_is_refused_by_openssh(testbed: SshTestbed, tmp_path: Path) -> None:
    config = write_openssh_config(testbed, tmp_path, {"*": "all"})
    with (tmp_path / "known_hosts").open("a") as f:
        f.write(testbed.known_hosts_line("gatekeeper", "[198.18.1.2]:2201") + "\n")
    handle = testbed.start_sshd("gatekeeper", 2201, host_key=testbed.extra_host_key("changed"))
    try:
        result = ssh(config, "-p", "2201", "gatekeeper", "true")
        assert result.returncode == 255
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
        line = testbed.known_hosts_line("changed", "[198.18.1.2]:2201")
        (tmp_path / "known_hosts").write_text(line + "\n")
        assert ssh(config, "-p", "2201", "gatekeeper", "echo ok").stdout == "ok\n"
    finally:
        handle.stop()


def test_new_client_key_with_passphrase(testbed: SshTestbed) -> None:
    key = testbed.new_client_key("encrypted-yuka", passphrase="s3cret", authorize_on=["yuka"])
    assert key == testbed.key("encrypted-yuka")
    with pytest.raises(paramiko.PasswordRequiredException):
        paramiko.Ed25519Key.from_private_key_file(str(key))
    loaded = paramiko.Ed25519Key.from_private_key_file(str(key), password="s3cret")
    assert f"{loaded.get_name()} {loaded.get_base64()}" in testbed.yuka.authorized_keys.read_text()
    assert loaded.get_base64() not in testbed.gatekeeper.authorized_keys.read_text()


def test_kill_sessions_drops_connections_but_keeps_listening(
    testbed: SshTestbed, tmp_path: Path
) -> None:
    config = write_openssh_config(testbed, tmp_path, {"*": "all"})
    handle = testbed.start_sshd("gatekeeper", 2202)
    try:
        with (tmp_path / "known_hosts").open("a") as f:
            f.write(testbed.known_hosts_line("gatekeeper", "[198.18.1.2]:2202") + "\n")
        mark = handle.log_mark()
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        with subprocess.Popen(
            ["ssh", "-F", str(config), "-p", "2202", "gatekeeper", "sleep 60"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        ) as client:
            handle.wait_for_log(r"Starting session: command", since=mark)
            assert handle.session_pids()
            handle.kill_sessions()
            assert client.wait(10) == 255
        assert not handle.session_pids()
        assert ssh(config, "-p", "2202", "gatekeeper", "echo ok").stdout == "ok\n"
    finally:
        handle.stop()


def test_known_hosts_line_names_the_host_key(testbed: SshTestbed) -> None:
    line = testbed.known_hosts_line("mayu.kamakura", "mayu.kamakura,mayu")
    assert line == "mayu.kamakura,mayu " + testbed.mayu.host_public_key
    assert line.split()[1] == "ssh-ed25519"
    assert len({h.host_public_key for h in testbed.hosts.values()}) == 3
    with pytest.raises(KeyError):
        testbed.known_hosts_line("nosuchhost", "x")


def test_setup_is_fast(testbed: SshTestbed) -> None:
    assert testbed.setup_seconds < 10


# -- fixtures used by everybody ---------------------------------------------------------------


def test_ssh_home_is_private(ssh_home: SshHome) -> None:
    assert os.environ["HOME"] == str(ssh_home.path)
    assert "SSH_AUTH_SOCK" not in os.environ
    assert os.environ["SHELL"] == "/bin/sh"
    assert ssh_home.ssh_dir.stat().st_mode & 0o777 == 0o700
    config = ssh_home.write_config("Host x\n    HostName 198.18.1.2\n")
    assert config == Path(os.path.expanduser("~/.ssh/config"))
    assert config.stat().st_mode & 0o777 == 0o600
    assert ssh_home.write_known_hosts(["a b c"]).read_text() == "a b c\n"


def test_real_ssh_dir_is_refused() -> None:
    real = Path(os.path.expanduser("~")) / ".ssh" / "config"
    with pytest.raises(PermissionError):
        real.open()
    assert GUARD.violations
    GUARD.violations.clear()  # this one was on purpose


# -- teardown leaves nothing, whatever happens -----------------------------------------------

_CHILD = textwrap.dedent(
    f"""
    import json, sys, time
    sys.path.insert(0, {str(TESTS_DIR)!r})
    import testbed
    from testbed import sshd
    mode = sys.argv[1]
    if mode == "fail-setup":
        sshd.SSHD_DEFAULTS["NoSuchKeyword"] = "yes"
    with testbed.signals_interrupt(), testbed.build_testbed("198.19", lock_timeout=60) as bed:
        print(json.dumps({{
            "namespaces": [h.namespace.name for h in bed.hosts.values()],
            "pids": [p for h in bed.hosts.values() for p in h.namespace.pids()],
            "workdir": str(bed.workdir),
            "ifname": bed.root_ifname,
        }}), flush=True)
        if mode == "wait":
            time.sleep(60)
        elif mode == "raise":
            raise RuntimeError("a test failed")
    """
)


def _subreaper(on: bool) -> None:
    """Adopt (or stop adopting) orphaned descendants, so that no zombie goes to PID 1."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, int(on), 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


@pytest.fixture
def adopt_orphans() -> Iterator[None]:
    """Make the test process a child subreaper for one test, reaping what it adopted."""
    _subreaper(True)
    try:
        yield
    finally:
        _subreaper(False)

        def reaped() -> bool:
            try:
                return os.waitpid(-1, os.WNOHANG) == (0, 0)
            except ChildProcessError:
                return True

        wait_until(reaped, 5)


def run_child(mode: str, sig: int | None = None) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Build a test bed on 198.19 in a child process; optionally signal it once it is up."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    info: dict[str, Any] = json.loads(line) if line else {}
    if sig is not None and info:
        proc.send_signal(sig)
    proc.wait(30)
    proc.stdout.close()
    assert proc.stderr is not None
    info["stderr"] = proc.stderr.read()
    proc.stderr.close()
    return proc, info


def assert_nothing_left(pid: int, info: Mapping[str, Any]) -> None:
    """No namespace, veth, route, /etc/netns dir, temp dir or process of run ``pid`` remains."""
    tag = f"ppx-{pid}-"
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert tag not in netns.stdout
    assert not [p for p in Path("/etc/netns").glob(f"{tag}*")]
    assert not [p for p in Path("/tmp").glob(f"ppx-testbed-{pid}-*")]
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True)
    assert "198.19." not in routes.stdout
    if info.get("ifname"):
        links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True)
        assert info["ifname"] not in links.stdout
    if info.get("workdir"):
        assert not Path(info["workdir"]).exists()
    for child_pid in info.get("pids", []):
        assert wait_until(functools.partial(reaped, child_pid), 5), child_pid


def no_namespace(pid: int) -> bool:
    """Whether ``pid`` is dead (a zombie has no namespace any more)."""
    return not os.path.exists(f"/proc/{pid}/ns/net")


def reaped(pid: int) -> bool:
    """Whether ``pid`` is gone; reap it first if it is a zombie we adopted."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not os.path.exists(f"/proc/{pid}")


@pytest.mark.netns
@pytest.mark.parametrize(
    ("mode", "sig"),
    [("close", None), ("raise", None), ("wait", signal.SIGINT), ("wait", signal.SIGTERM)],
)
def test_teardown_leaves_nothing(mode: str, sig: int | None, adopt_orphans: None) -> None:
    proc, info = run_child(mode, sig)
    assert info.get("namespaces"), info
    assert len(info["pids"]) == 4  # three sshds on port 22, one on 2222
    if mode == "close":
        assert proc.returncode == 0, info["stderr"]
    assert_nothing_left(proc.pid, info)


@pytest.mark.netns
def test_failed_setup_leaves_nothing(adopt_orphans: None) -> None:
    proc, info = run_child("fail-setup")
    assert proc.returncode != 0
    assert "NoSuchKeyword" in info["stderr"]
    assert_nothing_left(proc.pid, info)


@pytest.mark.netns
def test_killed_run_is_cleaned_up_by_the_next(adopt_orphans: None) -> None:
    proc, info = run_child("wait", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    # The sshds die with their parent (PR_SET_PDEATHSIG)...
    for pid in info["pids"]:
        assert wait_until(functools.partial(no_namespace, pid), 5), pid
    # ...and the namespaces, files and routes go with the next run's cleanup.
    assert any(f"ppx-{proc.pid}-" in n for n in os.listdir("/run/netns"))
    removed = cleanup_stale()
    assert any(f"ppx-{proc.pid}-" in r for r in removed), removed
    assert_nothing_left(proc.pid, info)


# -- the leak checker ---------------------------------------------------------------------------


def test_leak_snapshot_sees_fds_threads_and_children() -> None:
    before = Snapshot.take()
    r, w = os.pipe()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="leaky-thread")
    thread.start()
    child = subprocess.Popen(["sleep", "30"])
    try:
        leaks = Snapshot.take().leaks_since(before)
        assert set(leaks.fds) == {r, w}
        assert [t.name for t in leaks.threads] == ["leaky-thread"]
        assert [c.pid for c in leaks.children] == [child.pid]
        text = leaks.describe()
        assert f"fd {r} -> pipe:" in text
        assert "'leaky-thread'" in text
        assert re.search(rf"pid {child.pid} \[[RSD]\] sleep 30", text), text
        child.kill()
        assert wait_until(lambda: "zombie" in Snapshot.take().leaks_since(before).describe(), 5)
    finally:
        child.kill()
        child.wait()
        stop.set()
        thread.join()
        os.close(r)
        os.close(w)
    assert not check_back_to(before, timeout=5)
