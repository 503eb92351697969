"""The hook against in-process SSH servers: install/uninstall, pass-through, config at connect.

The real-sshd end-to-end tests are in test_proxycommand_sshd.py and test_chain_sshd.py.
"""

from __future__ import annotations

import gc
import inspect
import shlex
import socket
import sys
import warnings
from collections.abc import Iterator

import paramiko
import pytest

import paraproxy
from paraproxy._demoserver import DemoServer, new_ed25519_key
from paraproxy.errors import (
    ChainError,
    ConfigError,
    HopAuthenticationError,
    HopChannelError,
    HopHostKeyError,
    InvalidNameError,
    ParaproxyWarning,
    ProxyCommandError,
)

RELAY = f"{shlex.quote(sys.executable)} -m paraproxy._relay %h %p"


@pytest.fixture
def client_key(ssh_home) -> paramiko.PKey:
    """The client's key, saved as ~/.ssh/id_test."""
    return new_ed25519_key(ssh_home.path / ".ssh" / "id_test")


@pytest.fixture
def servers(client_key) -> Iterator[dict[str, DemoServer]]:
    """gatekeeper -> yuka -> mayu.kamakura, each reachable only through the previous one."""
    mayu = DemoServer("mayu.kamakura", [client_key], password=("root", "s3cret"))
    yuka = DemoServer("yuka", [client_key], hosts={"mayu.kamakura": mayu.address})
    gate = DemoServer("gatekeeper", [client_key], hosts={"yuka": yuka.address})
    try:
        yield {"gatekeeper": gate, "yuka": yuka, "mayu.kamakura": mayu}
    finally:
        for server in (gate, yuka, mayu):
            server.close()


def _known_hosts(ssh_home, servers: dict[str, DemoServer]) -> None:
    """known_hosts with every server under its alias."""
    ssh_home.write_known_hosts([s.known_hosts_line(name) for name, s in servers.items()])


def _client(ssh_home) -> paramiko.SSHClient:
    """A client that trusts exactly ~/.ssh/known_hosts (RejectPolicy, paramiko's default)."""
    client = paramiko.SSHClient()
    client.load_system_host_keys(str(ssh_home.path / ".ssh" / "known_hosts"))
    return client


def _run(client: paramiko.SSHClient, command: str) -> str:
    """Run a command and return its stdout."""
    _, stdout, _ = client.exec_command(command)
    return stdout.read().decode().strip()


def _chain_config(servers: dict[str, DemoServer]) -> str:
    """The original paraproxy README's config, with loopback addresses."""
    gate = servers["gatekeeper"]
    return f"""
Host gatekeeper
    HostName 127.0.0.1
    Port {gate.port}
    User root
    HostKeyAlias gatekeeper
    IdentityFile ~/.ssh/id_test

Host yuka
    HostKeyAlias yuka
    User root
    IdentityFile ~/.ssh/id_test
    ProxyCommand ssh -q -A -x gatekeeper 'nc -w1 %h 22'

Host *.kamakura
    HostKeyAlias mayu.kamakura
    User root
    IdentityFile ~/.ssh/id_test
    ProxyCommand ssh -q -A -x yuka 'nc -w 1 %h 22'
"""


# -- install / uninstall -----------------------------------------------------------


def test_import_installs_and_install_is_idempotent():
    assert paraproxy.is_installed()
    assert paraproxy.install() is False
    assert paraproxy.is_installed()


def test_uninstall_restores_paramiko_exactly_and_reinstall_works():
    wrapped = paramiko.SSHClient.__dict__["connect"]
    wrapped_close = paramiko.SSHClient.__dict__["close"]
    assert paraproxy.uninstall() is True
    try:
        assert not paraproxy.is_installed()
        assert paramiko.SSHClient.__dict__["connect"] is wrapped.__wrapped__
        assert paramiko.SSHClient.__dict__["close"] is wrapped_close.__wrapped__
        assert not hasattr(paramiko.SSHClient.__dict__["connect"], "__paraproxy_wrapper__")
        assert paraproxy.uninstall() is False
    finally:
        assert paraproxy.install() is True
    assert paraproxy.is_installed()


def test_uninstall_leaves_a_wrapper_installed_on_top_of_ours():
    ours = paramiko.SSHClient.__dict__["connect"]

    def theirs(self, *args, **kwargs):
        return ours(self, *args, **kwargs)

    paramiko.SSHClient.connect = theirs
    try:
        with pytest.warns(ParaproxyWarning, match="wrapped again"):
            assert paraproxy.uninstall() is False
        assert paramiko.SSHClient.__dict__["connect"] is theirs
    finally:
        paramiko.SSHClient.connect = ours
    assert paraproxy.is_installed()


def test_wrapper_keeps_paramikos_signature_and_name():
    wrapped = paramiko.SSHClient.connect
    assert wrapped.__name__ == "connect"
    assert inspect.signature(wrapped) == inspect.signature(wrapped.__wrapped__)


def test_wrong_arguments_fail_as_in_paramiko():
    with pytest.raises(TypeError):
        paramiko.SSHClient().connect("host", no_such_argument=1)


# -- pass-through ------------------------------------------------------------------


def test_host_without_config_connects_as_plain_paramiko(ssh_home, servers, client_key):
    ssh_home.write_config("Host unrelated\n    Port 1\n")
    gate = servers["gatekeeper"]
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=gate.port, username="u", pkey=client_key)
    try:
        assert _run(client, "hostname") == "gatekeeper"
        assert "_paraproxy_chain" not in client.__dict__
    finally:
        client.close()


def test_sock_given_by_caller_is_never_proxied(ssh_home, servers, client_key):
    ssh_home.write_config("Host *\n    ProxyCommand false\n")
    gate = servers["gatekeeper"]
    sock = socket.create_connection(gate.address)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect("anything", username="u", pkey=client_key, sock=sock)
        assert _run(client, "hostname") == "gatekeeper"
        assert "_paraproxy_chain" not in client.__dict__
    finally:
        client.close()
        sock.close()


def test_disable_variable_passes_through(ssh_home, servers, client_key, monkeypatch):
    ssh_home.write_config("Host gk\n    HostName 192.0.2.1\n")
    monkeypatch.setenv("PARAPROXY_DISABLE", "1")
    client = paramiko.SSHClient()
    with pytest.raises(OSError):  # "gk" is not a resolvable name without the config
        client.connect("gk", username="u", pkey=client_key, timeout=2)
    client.close()


# -- one host through a ProxyCommand ----------------------------------------------------


def test_proxycommand_from_config_reaches_the_server(ssh_home, servers, client_key):
    gate = servers["gatekeeper"]
    _known_hosts(ssh_home, servers)
    ssh_home.write_config(f"""
Host gatekeeper
    HostName 127.0.0.1
    Port {gate.port}
    User root
    HostKeyAlias gatekeeper
    IdentityFile ~/.ssh/id_test
    ProxyCommand {RELAY}
""")
    client = _client(ssh_home)
    client.connect("gatekeeper")
    try:
        assert _run(client, "hostname") == "gatekeeper"
        assert _run(client, "whoami") == "root"
    finally:
        client.close()


def test_config_edited_after_import_is_honoured(ssh_home, servers, client_key):
    gate = servers["gatekeeper"]
    _known_hosts(ssh_home, servers)
    ssh_home.write_config("Host gatekeeper\n    HostName 192.0.2.1\n    ConnectTimeout 1\n")
    ssh_home.write_config(
        f"Host gatekeeper\n    HostName 127.0.0.1\n    Port {gate.port}\n"
        "    HostKeyAlias gatekeeper\n    IdentityFile ~/.ssh/id_test\n"
    )
    client = _client(ssh_home)
    client.connect("gatekeeper")
    client.close()


def test_explicit_arguments_beat_the_config(ssh_home, servers, client_key):
    gate = servers["gatekeeper"]
    _known_hosts(ssh_home, servers)
    ssh_home.write_config(f"""
Host gatekeeper
    HostName 127.0.0.1
    Port 1
    User nobody
    HostKeyAlias gatekeeper
    ProxyCommand {RELAY}
""")
    client = _client(ssh_home)
    client.connect("gatekeeper", port=gate.port, username="alice", pkey=client_key)
    try:
        assert _run(client, "whoami") == "alice"
    finally:
        client.close()


def test_proxycommand_that_fails_raises_proxy_error_at_once(ssh_home):
    ssh_home.write_config(
        "Host broken\n    ProxyCommand echo 'no route to broken' >&2; exit 3\n"
    )
    client = paramiko.SSHClient()
    with pytest.raises(ProxyCommandError) as info:
        client.connect("broken", username="u", password="x", timeout=30)
    error = info.value
    assert isinstance(error, paramiko.ProxyCommandFailure)
    # `exec echo ...; exit 3`: exec replaces the shell, as under ssh, so status 0.
    assert error.exit_status == 0
    assert "before the SSH banner" in str(error)
    assert "no route to broken" in error.stderr_tail
    client.close()


def test_password_never_reaches_the_log(ssh_home, caplog):
    ssh_home.write_config("Host broken\n    ProxyCommand exit 1\n")
    caplog.set_level("DEBUG", logger="paraproxy")
    client = paramiko.SSHClient()
    with pytest.raises(ProxyCommandError):
        client.connect("broken", username="u", password="hunter2-secret")
    client.close()
    assert "hunter2-secret" not in caplog.text
    assert "plan:" in caplog.text


@pytest.mark.parametrize("hostname", ["a;id", "a`id`", "a$(id)", "a|b", "a b", "-oProxyCommand=x",
                                      "a\nb", "host,evil"])
def test_hostile_hostname_is_refused_before_anything_runs(ssh_home, tmp_path, hostname):
    marker = tmp_path / "ran"
    ssh_home.write_config(f"Host *\n    ProxyCommand touch {marker}; nc %h %p\n")
    client = paramiko.SSHClient()
    with pytest.raises(InvalidNameError):
        client.connect(hostname, username="u", password="x")
    client.close()
    assert not marker.exists()


@pytest.mark.parametrize("username", ["a;id", "x\nid", "-oProxyCommand=x", "u$(id)", "u`id`"])
def test_hostile_username_is_refused(ssh_home, tmp_path, username):
    marker = tmp_path / "ran"
    ssh_home.write_config(f"Host *\n    ProxyCommand touch {marker}; nc %h %p %r\n")
    client = paramiko.SSHClient()
    with pytest.raises(InvalidNameError):
        client.connect("host", username=username, password="x")
    client.close()
    assert not marker.exists()


def test_bad_config_names_file_and_line(ssh_home):
    path = ssh_home.write_config("Host x\n    Port notaport\n")
    client = paramiko.SSHClient()
    with pytest.raises(ConfigError) as info:
        client.connect("x")
    assert isinstance(info.value, paramiko.ConfigParseError)
    assert f"{path} line 2" in str(info.value)
    client.close()


# -- chains of in-process servers -----------------------------------------------


def test_original_readme_chain_reaches_the_third_host(ssh_home, servers):
    _known_hosts(ssh_home, servers)
    ssh_home.write_config(_chain_config(servers))
    client = _client(ssh_home)
    client.connect("mayu.kamakura")
    try:
        assert _run(client, "hostname") == "mayu.kamakura"
    finally:
        client.close()
    # Exactly one relay per hop, and one connection into each server.
    for name, relay in (("gatekeeper", "nc -w1 yuka 22"), ("yuka", "nc -w 1 mayu.kamakura 22")):
        execs = [e.detail for e in servers[name].events() if e.kind == "EXEC"]
        assert execs == [relay]
    assert [s.connection_count() for s in servers.values()] == [1, 1, 1]


def test_proxyjump_chain_and_password_only_for_the_target(ssh_home, servers):
    _known_hosts(ssh_home, servers)
    gate = servers["gatekeeper"]
    ssh_home.write_config(f"""
Host gatekeeper
    HostName 127.0.0.1
    Port {gate.port}
    HostKeyAlias gatekeeper
    IdentityFile ~/.ssh/id_test
Host yuka
    HostKeyAlias yuka
    IdentityFile ~/.ssh/id_test
Host mayu.kamakura
    HostKeyAlias mayu.kamakura
    ProxyJump root@gatekeeper,yuka
""")
    client = _client(ssh_home)
    client.connect("mayu.kamakura", username="root", password="s3cret",
                   look_for_keys=False, allow_agent=False)
    try:
        assert _run(client, "hostname") == "mayu.kamakura"
    finally:
        client.close()


def test_unknown_hop_key_fails_closed_naming_the_hop(ssh_home, servers):
    servers_known = {k: v for k, v in servers.items() if k != "yuka"}
    _known_hosts(ssh_home, servers_known)
    ssh_home.write_config(_chain_config(servers))
    client = _client(ssh_home)
    with pytest.raises(HopHostKeyError) as info:
        client.connect("mayu.kamakura")
    client.close()
    text = str(info.value)
    assert text.startswith("hop 2/3 yuka (root@yuka:22)")
    assert "SHA256:" in text
    assert all(e.kind != "SSHAUTH" for e in servers["yuka"].events())


def test_hop_auth_failure_names_the_hop(ssh_home, servers):
    _known_hosts(ssh_home, servers)
    other = new_ed25519_key(ssh_home.path / ".ssh" / "id_other")
    del other
    config = _chain_config(servers).replace(
        "Host yuka\n    HostKeyAlias yuka\n    User root\n    IdentityFile ~/.ssh/id_test",
        "Host yuka\n    HostKeyAlias yuka\n    User root\n    IdentityFile ~/.ssh/id_other",
    )
    ssh_home.write_config(config)
    client = _client(ssh_home)
    with pytest.raises(HopAuthenticationError) as info:
        client.connect("mayu.kamakura", look_for_keys=False, allow_agent=False)
    client.close()
    assert isinstance(info.value, paramiko.AuthenticationException)
    assert str(info.value).startswith("hop 2/3 yuka (root@yuka:22): authentication failed")


def test_hop_refusing_forwarding_is_named(ssh_home, servers):
    servers["gatekeeper"].allow_forwarding = False
    _known_hosts(ssh_home, servers)
    gate = servers["gatekeeper"]
    ssh_home.write_config(f"""
Host gatekeeper
    HostName 127.0.0.1
    Port {gate.port}
    HostKeyAlias gatekeeper
    IdentityFile ~/.ssh/id_test
Host yuka
    HostKeyAlias yuka
    ProxyJump gatekeeper
""")
    client = _client(ssh_home)
    with pytest.raises(HopChannelError) as info:
        client.connect("yuka", username="root", pkey=None)
    client.close()
    assert "hop 1/2 gatekeeper" in str(info.value)
    assert "administratively prohibited" in str(info.value)


def test_loop_is_refused_before_connecting(ssh_home):
    ssh_home.write_config("Host a\n    ProxyJump b\nHost b\n    ProxyJump a\n")
    client = paramiko.SSHClient()
    with pytest.raises(ChainError, match="loop"):
        client.connect("a")
    client.close()


def test_self_jump_is_a_loop_like_openssh(ssh_home):
    ssh_home.write_config("Host a\n    ProxyJump a\n")
    client = paramiko.SSHClient()
    with pytest.raises(ChainError, match="jumphost loop via a"):
        client.connect("a")
    client.close()


def test_garbage_collected_client_closes_its_chain(ssh_home, servers):
    _known_hosts(ssh_home, servers)
    ssh_home.write_config(_chain_config(servers))
    client = _client(ssh_home)
    client.connect("mayu.kamakura")
    transport = client.get_transport()
    assert transport is not None
    finalizer = client.__dict__["_paraproxy_chain"]
    del client
    gc.collect()
    assert not finalizer.alive
    transport.close()


def test_reconnect_closes_the_previous_chain(ssh_home, servers):
    _known_hosts(ssh_home, servers)
    ssh_home.write_config(_chain_config(servers))
    client = _client(ssh_home)
    client.connect("mayu.kamakura")
    first = client.__dict__["_paraproxy_chain"]
    client.connect("mayu.kamakura")
    assert not first.alive
    client.close()


def test_no_warning_escapes_a_normal_connect(ssh_home, servers):
    _known_hosts(ssh_home, servers)
    ssh_home.write_config(_chain_config(servers))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = _client(ssh_home)
        client.connect("mayu.kamakura")
        client.close()


def test_first_hop_behind_a_proxycommand_names_itself_on_auth_failure(ssh_home, servers):
    _known_hosts(ssh_home, servers)
    new_ed25519_key(ssh_home.path / ".ssh" / "id_other")
    config = _chain_config(servers).replace(
        "    HostKeyAlias gatekeeper\n    IdentityFile ~/.ssh/id_test",
        f"    HostKeyAlias gatekeeper\n    IdentityFile ~/.ssh/id_other\n    ProxyCommand {RELAY}",
    )
    ssh_home.write_config(config)
    client = _client(ssh_home)
    with pytest.raises(HopAuthenticationError) as info:
        client.connect("mayu.kamakura", look_for_keys=False, allow_agent=False)
    client.close()
    assert str(info.value).startswith("hop 1/3 gatekeeper (root@127.0.0.1:")


def test_paraproxy_config_file_is_used_for_every_hop(ssh_home, servers, tmp_path, monkeypatch):
    _known_hosts(ssh_home, servers)
    elsewhere = tmp_path / "cfg"
    elsewhere.write_text(_chain_config(servers))
    elsewhere.chmod(0o600)
    ssh_home.write_config("Host *\n    ProxyCommand false\n")  # must not be read
    monkeypatch.setenv("PARAPROXY_CONFIG", str(elsewhere))
    client = _client(ssh_home)
    client.connect("mayu.kamakura")
    try:
        assert _run(client, "hostname") == "mayu.kamakura"
    finally:
        client.close()
