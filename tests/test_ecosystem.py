"""What users already run, unchanged, on top of paraproxy: Fabric 3, scp, sshtunnel.

The real packages from PyPI (the ``test`` extra) against the namespace test bed: the client
reaches only gatekeeper, yuka only through gatekeeper, mayu.kamakura only through yuka.

Fabric
    With its ssh_config loading on, Fabric builds its own gateway (a ``Connection`` per
    ProxyJump hop, or a ``paramiko.ProxyCommand``) and passes it to ``connect()`` as
    ``sock=``: paraproxy steps aside, so the chain is built exactly once (each sshd logs
    one login). With Fabric's loading off (``load_ssh_configs: False``), Fabric passes no
    ``sock=`` and paraproxy builds the chain.
scp
    ``scp.SCPClient(client.get_transport())`` on a client paraproxy connected through the
    chain: files go up and come back intact.
sshtunnel
    ``SSHTunnelForwarder`` never calls ``SSHClient.connect``: it opens a
    ``paramiko.Transport`` of its own (reading ``HostName``/``ProxyCommand`` with
    ``paramiko.SSHConfig``, ignoring ``ProxyJump``), so the hook can not see it. The
    supported way is to hand it, as ``ssh_proxy=``, a channel from a client paraproxy
    connected: then it forwards to a host behind the chain.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import socket
import textwrap

import fabric
import paramiko
import pytest
import scp
import sshtunnel
from testbed.clients import (
    GATEKEEPER,
    HOSTS,
    IDENTITIES,
    ORIGINAL,
    client_home,
    connected,
    logins,
)

from paraproxy.hook import chain_of

#: ProxyJump written the way Fabric 3 follows it: one hop per host, each hop's own
#: ProxyJump. Fabric 3.2.3 builds a comma list ``ProxyJump gatekeeper,yuka`` backwards
#: (fabric/connection.py get_gateway walks the list reversed, so yuka would be contacted
#: first, from here); with Fabric's loading off, paraproxy follows such lists as ssh does.
NESTED_JUMPS = "Host yuka\n    ProxyJump gatekeeper\nHost mayu.kamakura\n    ProxyJump yuka\n"


@pytest.fixture
def home(ssh_home, testbed):
    """HOME with one key per host and known_hosts naming each host as OpenSSH would."""
    return client_home(ssh_home, testbed)


def _all_logins(testbed) -> dict[str, int]:
    return {host: logins(testbed, host) for host in HOSTS}


def _gateways(conn: fabric.Connection) -> list[fabric.Connection]:
    """The gateway Connections Fabric made for ``conn``, nearest first."""
    found = []
    gateway = conn.gateway
    while isinstance(gateway, fabric.Connection):
        found.append(gateway)
        gateway = gateway.gateway
    return found


def _close_fabric(conn: fabric.Connection) -> None:
    """Close ``conn`` and its gateways: Fabric's ``Connection.close`` leaves them open."""
    gateways = _gateways(conn)
    transport = conn.transport
    proxy = transport.sock if transport is not None else None
    conn.close()
    for gateway in gateways:
        gateway.close()
    if isinstance(proxy, paramiko.ProxyCommand):
        # paramiko.ProxyCommand.close() sends SIGTERM and never reaps: once the transport's
        # thread has seen the end of the pipe, reap the command and close its pipes.
        transport.join(10)
        proxy.process.wait(10)
        for stream in (proxy.process.stdin, proxy.process.stdout, proxy.process.stderr):
            if stream is not None:
                stream.close()


def _on_mayu(conn: fabric.Connection) -> None:
    """Fabric's ``run`` really ran on mayu.kamakura, entered from yuka."""
    result = conn.run("hostname; echo $SSH_CONNECTION", hide=True, in_stream=False)
    assert result.ok and result.exited == 0
    lines = result.stdout.splitlines()
    assert lines[0].strip()  # hostname printed something
    conn_words = lines[1].split()
    assert conn_words[0] == "198.18.3.1" and conn_words[2] == "198.18.3.2", result.stdout


# -- Fabric 3 ----------------------------------------------------------------------------------


def test_fabric_is_version_3():
    assert int(fabric.__version__.split(".")[0]) == 3


def test_fabric_proxyjump_gateway_is_not_proxied_twice(home, testbed):
    home.write_config(NESTED_JUMPS + IDENTITIES)
    before = _all_logins(testbed)
    conn = fabric.Connection("mayu.kamakura")
    try:
        gateways = _gateways(conn)
        assert [g.original_host for g in gateways] == ["yuka", "gatekeeper"]
        _on_mayu(conn)
        # Fabric gave sock= (a direct-tcpip channel on its yuka Connection): paraproxy
        # stepped aside for the target and for yuka, and gatekeeper needed nothing from it.
        assert isinstance(conn.transport.sock, paramiko.Channel)
        assert chain_of(conn.client) is None
        assert all(chain_of(g.client) is None for g in gateways)
    finally:
        _close_fabric(conn)
    # One chain: every host logged in exactly once, with its own key.
    assert _all_logins(testbed) == {h: n + 1 for h, n in before.items()}


def test_fabric_proxycommand_gateway_is_not_proxied_twice(home, testbed):
    # Fabric runs a ProxyCommand itself, with paramiko.ProxyCommand (no shell, no ~): give
    # the real ssh it spawns absolute paths and a config of its own (-F), never ~/.ssh.
    ssh = home.ssh_dir
    own = home.write_file(".ssh/for_real_ssh", textwrap.dedent(f"""\
        Host *
            User root
            IdentitiesOnly yes
            BatchMode yes
            StrictHostKeyChecking yes
            UserKnownHostsFile {ssh}/known_hosts
            GlobalKnownHostsFile /dev/null
        Host gatekeeper
            HostName {GATEKEEPER}
            IdentityFile {ssh}/id_gatekeeper
        Host yuka
            IdentityFile {ssh}/id_yuka
            ProxyCommand ssh -F {ssh}/for_real_ssh -W %h:%p gatekeeper
        """))
    home.write_config(f"Host mayu.kamakura\n    ProxyCommand ssh -F {own} -W %h:%p yuka\n"
                      + IDENTITIES)
    before = _all_logins(testbed)
    conn = fabric.Connection("mayu.kamakura")
    try:
        assert isinstance(conn.gateway, str)  # Fabric's own ProxyCommand gateway
        _on_mayu(conn)
        assert isinstance(conn.transport.sock, paramiko.ProxyCommand)
        assert chain_of(conn.client) is None
    finally:
        _close_fabric(conn)
    assert _all_logins(testbed) == {h: n + 1 for h, n in before.items()}


@pytest.mark.parametrize("route", [ORIGINAL, "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n"],
                         ids=["original-readme", "proxyjump-list"])
def test_fabric_with_its_ssh_config_off_paraproxy_builds_the_chain(home, testbed, route):
    home.write_config(IDENTITIES + route)
    config = fabric.Config(overrides={"load_ssh_configs": False})
    before = _all_logins(testbed)
    conn = fabric.Connection("mayu.kamakura", user="root", config=config)
    try:
        # Fabric read no ssh_config (its lookup only echoes the name back) and built no gateway.
        assert conn.ssh_config == {"hostname": "mayu.kamakura"} and conn.gateway is None
        _on_mayu(conn)
        chain = chain_of(conn.client)
        assert chain is not None
        assert [h.config.host for h in chain.route.hops] == ["gatekeeper", "yuka",
                                                              "mayu.kamakura"]
    finally:
        _close_fabric(conn)
    assert chain_of(conn.client) is None
    assert _all_logins(testbed) == {h: n + 1 for h, n in before.items()}


def test_fabric_connection_context_manager_closes_the_chain(home):
    home.write_config(IDENTITIES + ORIGINAL)
    config = fabric.Config(overrides={"load_ssh_configs": False})
    with fabric.Connection("mayu.kamakura", user="root", config=config) as conn:
        assert conn.run("true", hide=True, in_stream=False).ok
        chain = chain_of(conn.client)
        assert chain is not None
    # no_leaks checks that the hops' transports, threads and sockets are gone.
    assert chain_of(conn.client) is None


# -- scp ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", [ORIGINAL, "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n"],
                         ids=["original-readme", "proxyjump"])
def test_scp_put_and_get_through_the_chain(home, tmp_path, route):
    home.write_config(IDENTITIES + route)
    payload = os.urandom(3 * 1024 * 1024 + 123)
    digest = hashlib.sha256(payload).hexdigest()
    local = tmp_path / "up.bin"
    local.write_bytes(payload)
    back = tmp_path / "down.bin"
    remote = f"/tmp/paraproxy-scp-{os.getpid()}-{os.urandom(4).hex()}.bin"
    client = connected("mayu.kamakura")
    try:
        assert chain_of(client) is not None
        with scp.SCPClient(client.get_transport()) as transfer:
            transfer.put(str(local), remote)
            _, out, _ = client.exec_command(f"sha256sum {remote}")
            assert out.read().decode().split()[0] == digest  # intact on mayu
            transfer.get(remote, str(back))
        _, out, _ = client.exec_command(f"rm -f {remote}")
        assert out.channel.recv_exit_status() == 0
    finally:
        client.close()
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest


# -- sshtunnel ---------------------------------------------------------------------------------


def _quiet_logger() -> logging.Logger:
    """sshtunnel's default logger adds a console handler; give it a plain one."""
    return logging.getLogger("tests.sshtunnel")


# paramiko.Transport((host, port)) does not close its socket when the connect fails
# (paramiko/transport.py, "Unable to connect"): paramiko's leak, not sshtunnel's or ours.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
def test_sshtunnel_does_not_use_ssh_client_connect(home, testbed, monkeypatch):
    # sshtunnel opens paramiko.Transport itself: the hook never sees that connection. It
    # reads HostName from the config (paramiko.SSHConfig) but ignores ProxyJump, so it
    # tries the target directly, which is unreachable from here.
    home.write_config("Host mayu.kamakura\n    HostName 198.18.3.2\n"
                      "    ProxyJump gatekeeper,yuka\n" + IDENTITIES)
    calls = []
    original = paramiko.SSHClient.connect
    monkeypatch.setattr(paramiko.SSHClient, "connect",
                        lambda self, *a, **k: calls.append(a) or original(self, *a, **k))
    tunnel = sshtunnel.SSHTunnelForwarder(
        "mayu.kamakura",
        ssh_pkey=str(home.ssh_dir / "id_mayu"),
        allow_agent=False,
        remote_bind_address=("127.0.0.1", 22),
        local_bind_address=("127.0.0.1", 0),
        logger=_quiet_logger(),
    )
    assert tunnel.ssh_host == "198.18.3.2" and tunnel.ssh_proxy is None
    reached = testbed.mayu.log_path.read_text().count("Connection from")
    with pytest.raises(sshtunnel.BaseSSHTunnelForwarderError):
        tunnel.start()
    tunnel.stop(force=True)
    gc.collect()  # the socket paramiko left behind goes now, under this test's filter
    assert calls == []  # SSHClient.connect was never called
    # Nothing reached mayu: from here the route to 198.18.3.0/24 is unreachable.
    assert testbed.mayu.log_path.read_text().count("Connection from") == reached


@pytest.mark.parametrize("route", [ORIGINAL, "Host yuka\n    ProxyJump gatekeeper\n"],
                         ids=["original-readme", "proxyjump"])
def test_sshtunnel_over_a_channel_from_a_paraproxy_client(home, testbed, route):
    # The supported way: paraproxy connects to the last hop (yuka, through gatekeeper);
    # a direct-tcpip channel from there to mayu.kamakura:22 is sshtunnel's ssh_proxy, and
    # sshtunnel forwards a local port to mayu's own sshd (127.0.0.1:22 seen from mayu).
    home.write_config(IDENTITIES + route)
    mayu_key = paramiko.HostKeys(str(home.known_hosts_path)).lookup("mayu.kamakura")
    assert mayu_key is not None
    before = logins(testbed, "mayu")
    hop = connected("yuka")
    try:
        assert chain_of(hop) is not None
        channel = hop.get_transport().open_channel(
            "direct-tcpip", ("mayu.kamakura", 22), ("127.0.0.1", 0), timeout=30)
        tunnel = sshtunnel.SSHTunnelForwarder(
            "mayu.kamakura",
            ssh_username="root",
            ssh_pkey=str(home.ssh_dir / "id_mayu"),
            ssh_host_key=mayu_key["ssh-ed25519"],  # sshtunnel checks nothing unless given
            ssh_proxy=channel,
            ssh_config_file=None,
            allow_agent=False,
            host_pkey_directories=[],
            remote_bind_address=("127.0.0.1", 22),
            local_bind_address=("127.0.0.1", 0),
            logger=_quiet_logger(),
        )
        tunnel.start()
        try:
            assert tunnel.is_active and tunnel.tunnel_is_up[tunnel.local_bind_address]
            for _ in range(2):  # two connections through the one tunnel
                with socket.create_connection(("127.0.0.1", tunnel.local_bind_port), 30) as s:
                    s.settimeout(30)
                    banner = s.makefile("rb").readline()
                assert banner.startswith(b"SSH-2.0-OpenSSH"), banner
        finally:
            tunnel.stop(force=True)
    finally:
        hop.close()
    assert logins(testbed, "mayu") == before + 1  # sshtunnel's own login on mayu
    log = testbed.mayu.log_path.read_text()
    assert "Connection from 127.0.0.1" in log  # the forwarded connections, seen on mayu
