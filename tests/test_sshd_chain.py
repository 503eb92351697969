"""Multi-hop chains against real OpenSSH on the namespace test bed.

gatekeeper (198.18.1.2) is the only host the client can reach; yuka is reachable only from
gatekeeper and mayu.kamakura only from yuka. Each host has its own client key (id_gatekeeper,
id_yuka, id_mayu authorized there only), so a chain that logs in proves each hop used its own
credentials.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading

import paramiko
import pytest
from testbed.clients import (
    GATEKEEPER,
    IDENTITIES,
    ORIGINAL,
    client_home,
    connected,
    known_hosts_lines,
    logins,
    run,
)

import paraproxy
from paraproxy.errors import (
    ChainError,
    HopAuthenticationError,
    HopChannelError,
    HopConnectError,
    HopHostKeyError,
)
from paraproxy.hook import chain_of


@pytest.fixture
def home(ssh_home, testbed):
    """HOME with one key per host and known_hosts naming each host as OpenSSH would."""
    return client_home(ssh_home, testbed)


def _assert_on_mayu(client: paramiko.SSHClient) -> None:
    """The session really is on mayu.kamakura, entered from yuka."""
    # SSH_CONNECTION: client address as mayu sees it is yuka's 198.18.3.1.
    conn = run(client, "echo $SSH_CONNECTION").split()
    assert conn[0] == "198.18.3.1" and conn[2] == "198.18.3.2", conn


# -- the forms that must reach mayu.kamakura ------------------------------------------


def test_without_paraproxy_mayu_is_unreachable(home):
    paraproxy.uninstall()
    try:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        with pytest.raises((OSError, socket.timeout)):
            client.connect("198.18.3.2", username="root", timeout=3)
        client.close()
    finally:
        paraproxy.install()


def test_original_readme_config_verbatim(home, testbed):
    home.write_config(IDENTITIES + "\n" + ORIGINAL)
    before = {h: logins(testbed, h, h) for h in ("gatekeeper", "yuka", "mayu")}
    spawned = _ssh_processes()
    client = connected("mayu.kamakura")
    try:
        _assert_on_mayu(client)
        assert _ssh_processes() == spawned  # no ssh was spawned: the chain is in-process
        chain = chain_of(client)
        assert chain is not None and chain.bridge is None
        assert [h.config.host for h in chain.route.hops] == ["gatekeeper", "yuka",
                                                              "mayu.kamakura"]
    finally:
        client.close()
    # Each hop logged in once, with its own key.
    for host in ("gatekeeper", "yuka", "mayu"):
        assert logins(testbed, host, host) == before[host] + 1


@pytest.mark.parametrize("jump", ["gatekeeper,yuka", "root@gatekeeper:22,yuka",
                                  "ssh://root@gatekeeper:22,yuka"])
def test_proxyjump_forms(home, jump):
    home.write_config(f"Host mayu.kamakura\n    ProxyJump {jump}\n" + IDENTITIES)
    client = connected("mayu.kamakura")
    try:
        _assert_on_mayu(client)
    finally:
        client.close()


def test_ssh_dash_w_proxycommands(home):
    home.write_config(textwrap.dedent("""\
        Host yuka
            ProxyCommand ssh -W %h:%p gatekeeper
        Host mayu.kamakura
            ProxyCommand ssh -q -W %h:%p yuka
        """) + IDENTITIES)
    client = connected("mayu.kamakura")
    try:
        _assert_on_mayu(client)
    finally:
        client.close()


@pytest.mark.parametrize("front", ["nc %h %p", "socat - TCP:%h:%p"])
def test_non_ssh_proxycommand_in_front_of_the_first_hop(home, front):
    home.write_config(f"Host gatekeeper\n    ProxyCommand {front}\n" + IDENTITIES + ORIGINAL)
    client = connected("mayu.kamakura")
    try:
        _assert_on_mayu(client)
        chain = chain_of(client)
        assert chain is not None and chain.bridge is not None
        assert chain.bridge.exit_status is None
    finally:
        client.close()
    assert chain.bridge.exit_status is not None


def test_nested_proxyjump_of_a_jump_host_is_followed(home):
    home.write_config("Host yuka\n    ProxyJump gatekeeper\n"
                      "Host mayu.kamakura\n    ProxyJump yuka\n" + IDENTITIES)
    client = connected("mayu.kamakura")
    try:
        _assert_on_mayu(client)
    finally:
        client.close()


def test_relay_as_forward_setting_uses_direct_tcpip(home, monkeypatch):
    monkeypatch.setenv("PARAPROXY_RELAY", "forward")
    home.write_config(IDENTITIES + ORIGINAL)
    client = connected("mayu.kamakura")
    try:
        _assert_on_mayu(client)
    finally:
        client.close()


def test_password_is_for_the_target_only(home, testbed):
    # A wrong password for the target must not be tried on the hops; they use keys.
    home.write_config(IDENTITIES + ORIGINAL)
    client = connected("mayu.kamakura", password="wrong-for-everyone")
    client.close()
    for host in ("gatekeeper", "yuka"):
        log = testbed.host(host).log_path.read_text()
        assert "Failed password" not in log


def test_sftp_through_the_chain_keeps_files_intact(home, tmp_path):
    home.write_config(IDENTITIES + "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n")
    payload = os.urandom(6 * 1024 * 1024)
    local = tmp_path / "up.bin"
    local.write_bytes(payload)
    back = tmp_path / "down.bin"
    client = connected("mayu.kamakura")
    try:
        sftp = client.open_sftp()
        remote = f"/tmp/paraproxy-sftp-{os.getpid()}.bin"
        sftp.put(str(local), remote)
        sftp.get(remote, str(back))
        sftp.remove(remote)
        sftp.close()
    finally:
        client.close()
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("route", [
    "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n",
    # No `-w 1` here: under this load an idle second during a handshake is likely, and
    # netcat-openbsd would drop the relay (as it would under OpenSSH).
    "Host yuka\n    ProxyCommand ssh gatekeeper nc %h %p\n"
    "Host *.kamakura\n    ProxyCommand ssh yuka nc %h %p\n",
])
def test_sixteen_concurrent_connections_through_the_chain(home, route):
    home.write_config(IDENTITIES + route)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            client = connected("mayu.kamakura")
            try:
                _, out, err = client.exec_command("echo $SSH_CONNECTION")
                text = out.read().decode()
                status = out.channel.recv_exit_status()
                words = text.split()
                assert len(words) == 4, (text, status, err.read().decode())
                results.append(words[2])
            finally:
                client.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"test-worker-{i}") for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert results == ["198.18.3.2"] * 16


def test_verbose_log_draws_the_chain_like_the_original(home):
    home.write_config(IDENTITIES + ORIGINAL)
    program = (
        "import paraproxy, paramiko\n"
        "c = paramiko.SSHClient(); c.load_system_host_keys(); c.connect('mayu.kamakura')\n"
        "c.close()\n"
    )
    env = {**os.environ, "PARAMIKO_SSH_HOOK_VERBOSE": "1"}
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    expected = [
        "plan: local -> gatekeeper -> yuka -> mayu.kamakura",
        f"hop 1/3 gatekeeper (root@{GATEKEEPER}:22): CONNECT {GATEKEEPER}:22",
        "hop 1/3 gatekeeper (root@198.18.1.2:22): SSHAUTH root@gatekeeper",
        "hop 1/3 gatekeeper (root@198.18.1.2:22): --> EXEC 'nc -w1 yuka 22'",
        "hop 2/3 yuka (root@yuka:22): SSHAUTH root@yuka",
        "hop 2/3 yuka (root@yuka:22): --> EXEC 'nc -w 1 mayu.kamakura 22'",
        "hop 3/3 mayu.kamakura (root@mayu.kamakura:22): SSHAUTH root@mayu.kamakura",
    ]
    positions = [err.find(step) for step in expected]
    assert all(p >= 0 for p in positions), err
    assert positions == sorted(positions), err
    assert "idle timeout" in err  # nc -w1 drops idle connections: said once per hop


# -- failures name the hop, and close what was opened ------------------------------------


def test_unreachable_first_hop(home):
    home.write_config(IDENTITIES.replace(f"HostName {GATEKEEPER}", f"HostName {GATEKEEPER}\n"
                                         "    Port 2999") + ORIGINAL)
    with pytest.raises(HopConnectError) as info:
        connected("mayu.kamakura")
    text = str(info.value)
    assert text.startswith(f"hop 1/3 gatekeeper (root@{GATEKEEPER}:2999)")
    assert "Connection refused" in text


def test_unreachable_second_hop_names_the_hop_that_refused(home):
    home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka:2999\n" + IDENTITIES)
    with pytest.raises(HopChannelError) as info:
        connected("mayu.kamakura")
    text = str(info.value)
    assert text.startswith(f"hop 1/3 gatekeeper (root@{GATEKEEPER}:22)")
    assert "yuka:2999" in text
    assert "Connection refused" in text  # sshd's own words, not only paramiko's code


def test_relay_failing_on_the_hop_reports_its_status_and_stderr(home):
    home.write_config(IDENTITIES + "Host yuka\n    ProxyCommand ssh gatekeeper nc nosuchhost 22\n")
    with pytest.raises(HopConnectError) as info:
        connected("yuka")
    text = str(info.value)
    assert text.startswith("hop 2/2 yuka (root@yuka:22)")
    assert "nc nosuchhost 22" in text


@pytest.mark.parametrize("where", ["first", "second"])
def test_unknown_host_key(home, testbed, where):
    lines = known_hosts_lines(testbed)
    del lines[0 if where == "first" else 1]
    home.write_known_hosts(lines)
    home.write_config(IDENTITIES + ORIGINAL)
    before = logins(testbed, "yuka", "yuka")
    with pytest.raises(HopHostKeyError) as info:
        connected("mayu.kamakura")
    label = f"hop 1/3 gatekeeper (root@{GATEKEEPER}:22)" if where == "first" else \
        "hop 2/3 yuka (root@yuka:22)"
    assert str(info.value).startswith(label)
    assert "SHA256:" in str(info.value)
    assert logins(testbed, "yuka", "yuka") == before  # never authenticated to an unknown key


@pytest.mark.parametrize("where", ["first", "second"])
def test_changed_host_key(home, testbed, where):
    wrong = testbed.host_public_key("mayu")
    lines = [f"{GATEKEEPER} {testbed.host_public_key('gatekeeper')}",
             f"yuka {testbed.host_public_key('yuka')}",
             testbed.known_hosts_line("mayu", "mayu.kamakura")]
    lines[0 if where == "first" else 1] = (GATEKEEPER if where == "first" else "yuka") + \
        " " + wrong
    home.write_known_hosts(lines)
    home.write_config(IDENTITIES + ORIGINAL)
    with pytest.raises(HopHostKeyError) as info:
        connected("mayu.kamakura")
    assert "HAS CHANGED" in str(info.value)


@pytest.mark.parametrize("where", ["first", "second"])
def test_authentication_failure(home, where):
    hop = "gatekeeper" if where == "first" else "yuka"
    other = "yuka" if where == "first" else "mayu"
    home.write_config(IDENTITIES.replace(f"~/.ssh/id_{hop}", f"~/.ssh/id_{other}") + ORIGINAL)
    with pytest.raises(HopAuthenticationError) as info:
        connected("mayu.kamakura", look_for_keys=False, allow_agent=False)
    label = f"hop 1/3 gatekeeper (root@{GATEKEEPER}:22)" if where == "first" else \
        "hop 2/3 yuka (root@yuka:22)"
    assert str(info.value).startswith(f"{label}: authentication failed")


def test_hop_refusing_forwarding(home, testbed):
    # gatekeeper's second sshd (port 2222) has AllowTcpForwarding no.
    home.write_known_hosts([testbed.known_hosts_line("gatekeeper", f"[{GATEKEEPER}]:2222"),
                            testbed.known_hosts_line("yuka", "yuka")])
    home.write_config("Host yuka\n    ProxyJump gatekeeper:2222\n" + IDENTITIES)
    with pytest.raises(HopChannelError) as info:
        connected("yuka")
    text = str(info.value)
    assert text.startswith(f"hop 1/2 gatekeeper (root@{GATEKEEPER}:2222)")
    assert "administratively prohibited" in text


def test_loop_is_refused_before_any_connection(home, testbed):
    home.write_config("Host gatekeeper\n    ProxyJump yuka\nHost yuka\n    ProxyJump gatekeeper\n"
                      + IDENTITIES)
    before = testbed.gatekeeper.log_path.read_text().count("Connection from")
    with pytest.raises(ChainError, match="loop"):
        connected("yuka")
    assert testbed.gatekeeper.log_path.read_text().count("Connection from") == before


def test_chain_deeper_than_the_limit_is_refused(home):
    lines = [f"Host h{i}\n    ProxyJump h{i + 1}\n" for i in range(12)]
    home.write_config("".join(lines) + IDENTITIES)
    with pytest.raises(ChainError, match="longer than 10 hops"):
        connected("h0")


def _ssh_processes() -> set[int]:
    """PIDs of `ssh` client processes this test process started (to prove none was)."""
    out = subprocess.run(["pgrep", "-x", "-P", str(os.getpid()), "ssh"], capture_output=True,
                         text=True, check=False)
    return {int(p) for p in out.stdout.split()}


def test_second_hop_refusing_forwarding(home, testbed):
    sshd = testbed.start_sshd("yuka", 2222, {"AllowTcpForwarding": "no", "PermitOpen": "none"})
    try:
        home.write_known_hosts([testbed.known_hosts_line("gatekeeper", GATEKEEPER),
                                testbed.known_hosts_line("yuka", "[yuka]:2222"),
                                testbed.known_hosts_line("mayu", "mayu.kamakura")])
        home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka:2222\n" + IDENTITIES)
        with pytest.raises(HopChannelError) as info:
            connected("mayu.kamakura")
        text = str(info.value)
        assert text.startswith("hop 2/3 yuka (root@yuka:2222)")
        assert "refused channel to mayu.kamakura:22: administratively prohibited" in text
    finally:
        sshd.stop()


def test_relay_failing_on_the_second_hop(home):
    home.write_config(IDENTITIES + "Host yuka\n    ProxyCommand ssh gatekeeper nc %h %p\n"
                      "Host mayu.kamakura\n    ProxyCommand ssh yuka nc nosuchhost 22\n")
    with pytest.raises(HopConnectError) as info:
        connected("mayu.kamakura")
    text = str(info.value)
    assert text.startswith("hop 3/3 mayu.kamakura (root@mayu.kamakura:22)")
    assert "relay 'nc nosuchhost 22' exited with status 1" in text
    assert "nosuchhost" in text.split("its stderr:", 1)[1]


def test_import_order_does_not_matter(home):
    home.write_config(IDENTITIES + ORIGINAL)
    program = ("import paraproxy\nimport paramiko\n"
               "c = paramiko.SSHClient(); c.load_system_host_keys(); c.connect('mayu.kamakura')\n"
               "print(c.exec_command('echo $SSH_CONNECTION')[1].read().decode().split()[2])\n"
               "c.close()\n")
    for source in (program, program.replace("import paraproxy\nimport paramiko\n",
                                            "import paramiko\nimport paraproxy\n")):
        done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "198.18.3.2"


def test_a_transfer_ending_during_a_rekey_does_not_stall(home, monkeypatch):
    # paramiko's transport thread used to wait for its own re-exchange when the server
    # closed a channel during it: a 30 s stall, then "Key-exchange timed out". A 1 GiB
    # download meets it at paramiko's 512 MiB rekey limit; 4 MiB brings it into every run.
    monkeypatch.setattr(paramiko.packet.Packetizer, "REKEY_BYTES", 2**22)
    monkeypatch.setattr(paramiko.packet.Packetizer, "REKEY_BYTES_OVERFLOW_MAX", 2**22)
    home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n" + IDENTITIES)
    for _ in range(3):
        client = connected("mayu.kamakura")
        try:
            _, out, _ = client.exec_command("head -c 100000000 /dev/zero")
            out.channel.settimeout(20)
            total = 0
            while True:
                data = out.read(1 << 20)
                if not data:
                    break
                total += len(data)
            assert total == 100_000_000
            assert out.channel.recv_exit_status() == 0
        finally:
            client.close()


def test_a_hop_is_entered_only_once_sshd_has_opened_the_session(home, caplog):
    # sshd follows a login with a global request (hostkeys-00@openssh.com). A channel
    # opened before it arrives has its confirmation held by Nagle behind it until a
    # delayed ACK, 40 ms per hop; opened after, the channel open carries that ACK.
    caplog.set_level(logging.INFO, logger="paraproxy")
    caplog.set_level(logging.DEBUG, logger="paramiko.transport")  # last: handler at DEBUG
    home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n" + IDENTITIES)
    with connected("mayu.kamakura") as client:
        assert run(client, "echo ok") == "ok"
    events = [r.getMessage() for r in caplog.records
              if "Received global request" in r.getMessage() or "--> JUMP" in r.getMessage()]
    assert [("JUMP" in e) for e in events][:4] == [False, True, False, True], events
