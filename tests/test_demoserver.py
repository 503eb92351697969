"""The in-process DemoServer and the _relay netcat, exercised with plain paramiko (no hook)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import paramiko
import pytest
from paramiko.hostkeys import HostKeyEntry

from paraproxy import demo
from paraproxy._demoserver import DemoServer, new_ed25519_key, parse_relay_command


def wait_until(condition, timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return bool(condition())
        time.sleep(interval)


def _fds() -> set[str]:
    """The names in /proc/self/fd (this test process's open descriptors)."""
    return set(os.listdir("/proc/self/fd"))


def _our_threads() -> list[threading.Thread]:
    """Demo-server threads and paramiko transports still running."""
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("paraproxy-demo[") or isinstance(t, paramiko.Transport)
    ]


@pytest.fixture(autouse=True)
def plain_paramiko(monkeypatch) -> None:
    """These tests are about the servers: paramiko without the paraproxy hook."""
    monkeypatch.setenv("PARAPROXY_DISABLE", "1")


@pytest.fixture(scope="module")
def key() -> paramiko.PKey:
    """The client's key, authorized on every server of a test."""
    return new_ed25519_key()


@pytest.fixture
def make_server(key) -> Iterator:
    """Start DemoServers authorizing ``key``; all are closed when the test ends."""
    servers: list[DemoServer] = []

    def make(name: str, **kwargs) -> DemoServer:
        kwargs.setdefault("authorized_keys", [key])
        server = DemoServer(name, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def clients() -> Iterator:
    """SSHClients of a test, closed last first (a hop after what runs through it)."""
    made: list[paramiko.SSHClient] = []

    def connect(server: DemoServer, *, sock=None, name=None, **kwargs) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        made.append(client)
        # Strict checking, as paraproxy does: the key must be known under the name used.
        hostname = name or "127.0.0.1"
        port = 22 if sock is not None else server.port
        known_as = hostname if port == 22 else f"[{hostname}]:{port}"
        entry = HostKeyEntry.from_line(server.known_hosts_line(known_as))
        assert entry is not None
        client.get_host_keys().add(known_as, entry.key.get_name(), entry.key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        kwargs.setdefault("username", "demo")
        kwargs.setdefault("look_for_keys", False)
        kwargs.setdefault("allow_agent", False)
        client.connect(hostname, port=port, sock=sock, timeout=10, **kwargs)
        return client

    yield connect
    for client in reversed(made):
        transport = client.get_transport()
        client.close()
        # The transport thread of a client whose socket is a channel closes that channel
        # as it ends: let it, before the hop carrying the channel goes (paramiko#156).
        if transport is not None and transport.ident is not None:
            transport.join(10)


def run(client: paramiko.SSHClient, command: str, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    """Run ``command``; return exit status, stdout and stderr."""
    chan_in, out, err = client.exec_command(command, timeout=10)

    def feed() -> None:
        """Write stdin while the caller reads stdout, or both windows fill (paramiko#1778)."""
        chan_in.write(stdin)
        chan_in.channel.shutdown_write()

    writer = threading.Thread(target=feed, name="test-stdin", daemon=True)
    writer.start()
    output = out.read()
    errors = err.read()
    writer.join(10)
    return out.channel.recv_exit_status(), output, errors


# -- one server ----------------------------------------------------------------------


def test_exec_hostname_with_key(make_server, clients, key):
    server = make_server("gatekeeper")
    client = clients(server, pkey=key)
    assert run(client, "hostname") == (0, b"gatekeeper\n", b"")
    kinds = [event.kind for event in server.events()]
    assert kinds[:3] == ["CONNECT", "SSHAUTH", "EXEC"]


def test_builtin_commands_run_without_a_shell(make_server, clients, key):
    client = clients(make_server("yuka"), pkey=key, username="root")
    assert run(client, "whoami") == (0, b"root\n", b"")
    assert run(client, "echo hello   'big world'") == (0, b"hello big world\n", b"")
    assert run(client, "echo -n x") == (0, b"x", b"")
    assert run(client, "true")[0] == 0
    assert run(client, "false")[0] == 1
    assert run(client, "cat", stdin=b"abc" * 1000) == (0, b"abc" * 1000, b"")
    # No shell: the separator is just an argument, nothing else runs.
    assert run(client, "echo a; hostname") == (0, b"a; hostname\n", b"")
    status, out, err = run(client, "rm -rf /")
    assert (status, out, err) == (127, b"", b"sh: rm: command not found\n")


def test_wrong_key_is_rejected(make_server, clients):
    server = make_server("gatekeeper")
    with pytest.raises(paramiko.AuthenticationException):
        clients(server, pkey=new_ed25519_key())
    assert "AUTHFAIL" in [event.kind for event in server.events()]


def test_password_auth_when_configured(make_server, clients):
    server = make_server("gatekeeper", authorized_keys=[], password=("alice", "s3cret"))
    client = clients(server, username="alice", password="s3cret")
    assert run(client, "whoami") == (0, b"alice\n", b"")
    with pytest.raises(paramiko.AuthenticationException):
        clients(server, username="alice", password="wrong")
    with pytest.raises(paramiko.AuthenticationException):
        clients(make_server("nopw"), username="alice", password="s3cret")


def test_known_hosts_line_matches_the_served_key(make_server, tmp_path, key):
    server = make_server("gatekeeper")
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line() + "\n")
    with paramiko.SSHClient() as client:
        client.load_host_keys(str(known))  # RejectPolicy is the default
        client.connect(
            "127.0.0.1",
            server.port,
            username="u",
            pkey=key,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        assert run(client, "hostname")[1] == b"gatekeeper\n"
    assert server.known_hosts_line("gk").startswith("gk ssh-ed25519 AAAA")
    assert server.host_key.get_name() == "ssh-ed25519"


def test_many_concurrent_connections(make_server, key):
    server = make_server("gatekeeper")

    def one(i: int) -> bytes:
        with paramiko.SSHClient() as client:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect(
                "127.0.0.1",
                server.port,
                username=f"u{i}",
                pkey=key,
                look_for_keys=False,
                allow_agent=False,
                timeout=20,
            )
            return run(client, "whoami")[1]

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(32)))
    assert sorted(results) == sorted(f"u{i}\n".encode() for i in range(32))
    assert server.connection_count() == 32


# -- chains by hand: what paraproxy will build ----------------------------------------


@pytest.fixture
def topology(make_server):
    """gatekeeper -> yuka -> mayu.kamakura, "behind" through the servers' hosts maps."""
    mayu = make_server("mayu.kamakura")
    yuka = make_server("yuka", hosts={"mayu.kamakura": mayu.address})
    gatekeeper = make_server("gatekeeper", hosts={"yuka": yuka.address})
    return gatekeeper, yuka, mayu


def test_two_hops_through_direct_tcpip(topology, clients, key):
    gatekeeper, yuka, _ = topology
    hop = clients(gatekeeper, pkey=key)
    channel = hop.get_transport().open_channel("direct-tcpip", ("yuka", 22), ("", 0), timeout=10)
    target = clients(yuka, sock=channel, name="yuka", pkey=key)
    assert run(target, "hostname") == (0, b"yuka\n", b"")
    assert any(
        e.kind == "DIRECT-TCPIP" and e.detail.startswith("to yuka:22") for e in gatekeeper.events()
    )


@pytest.mark.parametrize("relay", ["nc -w1 {} 22", "nc -w 1 {} 22", "socat - TCP:{}:22"])
def test_three_hops_through_exec_relays(topology, clients, key, relay):
    gatekeeper, yuka, mayu = topology
    hop1 = clients(gatekeeper, pkey=key)
    channel1 = hop1.get_transport().open_session(timeout=10)
    channel1.exec_command(relay.format("yuka"))
    hop2 = clients(yuka, sock=channel1, name="yuka", pkey=key)
    channel2 = hop2.get_transport().open_session(timeout=10)
    channel2.exec_command(relay.format("mayu.kamakura"))
    target = clients(mayu, sock=channel2, name="mayu.kamakura", pkey=key)
    assert run(target, "hostname") == (0, b"mayu.kamakura\n", b"")
    # Bulk data both ways through both relays, intact.
    payload = os.urandom(3 * 1024 * 1024)
    status, out, _ = run(target, "cat", stdin=payload)
    assert status == 0
    assert hashlib.sha256(out).digest() == hashlib.sha256(payload).digest()
    assert ("EXEC", relay.format("yuka")) in [(e.kind, e.detail) for e in gatekeeper.events()]


def test_relay_exit_status_when_the_target_closes(topology, clients, key):
    gatekeeper, yuka, _ = topology
    hop = clients(gatekeeper, pkey=key)
    channel = hop.get_transport().open_session(timeout=10)
    channel.exec_command("nc yuka 22")
    channel.settimeout(10)
    assert channel.recv(100).startswith(b"SSH-2.0-")
    yuka.close()  # the relayed connection ends: its EOF comes through
    while channel.recv(100):
        pass
    channel.shutdown_write()  # and once ours ends too, nc exits 0
    assert channel.recv_exit_status() == 0


def test_forwarding_disabled_refuses_direct_tcpip(make_server, clients, key):
    yuka = make_server("yuka")
    gatekeeper = make_server("gatekeeper", hosts={"yuka": yuka.address}, allow_forwarding=False)
    hop = clients(gatekeeper, pkey=key)
    with pytest.raises(paramiko.ChannelException) as caught:
        hop.get_transport().open_channel("direct-tcpip", ("yuka", 22), ("", 0), timeout=10)
    assert caught.value.code == 1  # administratively prohibited
    # The exec relay still works, as with OpenSSH's AllowTcpForwarding no.
    channel = hop.get_transport().open_session(timeout=10)
    channel.exec_command("nc yuka 22")
    assert clients(yuka, sock=channel, name="yuka", pkey=key) is not None


def test_unknown_or_closed_target_fails_like_a_connect(topology, clients, key):
    gatekeeper, _, _ = topology
    hop = clients(gatekeeper, pkey=key)
    transport = hop.get_transport()
    for target in [("mayu.kamakura", 22), ("yuka", 2222)]:
        with pytest.raises(paramiko.ChannelException) as caught:
            transport.open_channel("direct-tcpip", target, ("", 0), timeout=10)
        assert caught.value.code == 2  # connect failed
    status, out, err = run(hop, "nc -w1 mayu.kamakura 22")
    assert (status, out) == (1, b"")
    assert err.startswith(b"nc: connect to mayu.kamakura port 22 (tcp) failed:")


def test_exec_relay_disabled_is_command_not_found(make_server, clients, key):
    yuka = make_server("yuka")
    gatekeeper = make_server("gatekeeper", hosts={"yuka": yuka.address}, allow_exec_relay=False)
    status, _, err = run(clients(gatekeeper, pkey=key), "nc -w1 yuka 22")
    assert (status, err) == (127, b"sh: nc: command not found\n")


def test_nc_idle_timeout_when_asked(make_server, clients, key):
    yuka = make_server("yuka")
    gatekeeper = make_server("gatekeeper", hosts={"yuka": yuka.address}, nc_idle_timeout=True)
    hop = clients(gatekeeper, pkey=key)
    channel = hop.get_transport().open_session(timeout=10)
    channel.exec_command("nc -w1 yuka 22")
    started = time.monotonic()
    channel.settimeout(10)
    assert channel.recv(100).startswith(b"SSH-2.0-")
    assert channel.recv_exit_status() == 0  # idle for a second: dropped, as netcat does
    assert time.monotonic() - started < 5


def test_parse_relay_command():
    assert parse_relay_command("nc -w1 yuka 22") == ("yuka", 22, 1.0)
    assert parse_relay_command("/bin/nc -w 1 -q0 %h 22") == ("%h", 22, 1.0)
    assert parse_relay_command("ncat host 2222") == ("host", 2222, None)
    assert parse_relay_command("socat - TCP:yuka:22") == ("yuka", 22, None)
    assert parse_relay_command("socat STDIO tcp4:10.0.0.1:22") == ("10.0.0.1", 22, None)
    for command in [
        "nc -z yuka 22",
        "nc yuka",
        "nc yuka 99999",
        "socat - TCP:yuka:22,fork",
        "ssh yuka",
        "nc 'unterminated",
        "",
        "socat - UNIX:/x",
    ]:
        assert parse_relay_command(command) is None, command


# -- the _relay netcat ---------------------------------------------------------------


def _relay_argv(server: DemoServer) -> list[str]:
    """Run the relay on this interpreter toward ``server``."""
    return [sys.executable, "-m", "paraproxy._relay", "127.0.0.1", str(server.port)]


def test_relay_over_a_socketpair_carries_ssh(make_server, clients, key):
    server = make_server("gatekeeper")
    ours, theirs = socket.socketpair()
    with theirs:
        child = subprocess.Popen(
            _relay_argv(server), stdin=theirs, stdout=theirs, stderr=subprocess.PIPE
        )
    try:
        client = clients(server, sock=ours, name="gatekeeper", pkey=key)
        assert run(client, "hostname") == (0, b"gatekeeper\n", b"")
        client.close()  # closes ours: the relay sees EOF on stdin and ends
        assert child.wait(10) == 0
        assert child.stderr.read() == b""
    finally:
        child.kill()
        child.wait()
        child.stderr.close()


def test_relay_over_pipes_passes_eof_both_ways(make_server):
    server = make_server("gatekeeper")
    with subprocess.Popen(
        _relay_argv(server), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as child:
        assert child.stdout.readline().startswith(b"SSH-2.0-")
        child.stdin.write(b"not ssh\r\n")
        child.stdin.close()  # EOF to the server, which hangs up: EOF on our stdout
        assert child.stdout.read() == b""
        assert child.wait(10) == 0
        assert child.stderr.read() == b""


def test_relay_reports_a_failed_connect(make_server):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    result = subprocess.run(
        [sys.executable, "-m", "paraproxy._relay", "127.0.0.1", str(port)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(b"paraproxy._relay: connect to 127.0.0.1 port")
    usage = subprocess.run(
        [sys.executable, "-m", "paraproxy._relay", "x"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert usage.returncode == 2


# -- lifecycle -----------------------------------------------------------------------


def test_close_with_live_connections_leaves_nothing(topology, clients, key):
    gatekeeper, yuka, mayu = topology
    fds_before = _fds()
    hop = clients(gatekeeper, pkey=key)
    channel = hop.get_transport().open_session(timeout=10)
    channel.exec_command("nc yuka 22")
    target = clients(yuka, sock=channel, name="yuka", pkey=key)
    sleeper = target.get_transport().open_session(timeout=10)
    sleeper.exec_command("sleep 60")
    started = time.monotonic()
    # Innermost first, letting the client side notice each time: a paramiko client whose
    # sock is a channel closes that channel as its thread ends, and raises if the hop's
    # transport died meanwhile (a paramiko limitation, not the server's).
    for server, client in [(mayu, None), (yuka, target), (gatekeeper, hop)]:
        server.close()
        if client is not None:
            transport = client.get_transport()
            assert wait_until(lambda t=transport: not t.is_alive())
    assert time.monotonic() - started < 5
    assert not [t for t in threading.enumerate() if t.name.startswith("paraproxy-demo[")]
    gatekeeper.close()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(mayu.address, timeout=2).close()
    target.close()
    hop.close()
    assert wait_until(lambda: not _our_threads()), _our_threads()
    assert wait_until(lambda: _fds() <= fds_before), sorted(_fds() - fds_before)


def test_context_manager_closes(key):
    with DemoServer("gatekeeper", [key]) as server:
        assert repr(server).endswith("open>")
    assert repr(server).endswith("closed>")
    server.close()


# -- the demo ------------------------------------------------------------------------


@pytest.mark.parametrize(("hops", "target"), [(1, "gatekeeper"), (3, "mayu.kamakura")])
def test_demo_reaches_the_target(capsys, hops, target):
    environ = dict(os.environ)
    assert demo.main(["--quiet", "--hops", str(hops)]) == 0
    out = capsys.readouterr().out
    assert f"$ hostname        # on {target}\n{target}\n" in out
    assert f"{target} was reached through" in out
    if hops == 3:
        assert "EXEC nc -w1 yuka 22" in out
        assert "no ssh was spawned" in out
    assert dict(os.environ) == environ  # the demo's environment was undone


def test_demo_as_a_program_shows_the_steps():
    result = subprocess.run(
        [sys.executable, "-m", "paraproxy.demo"], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"mayu.kamakura\n" in result.stdout
    assert b"nc -w1 yuka 22" in result.stderr  # paraproxy's verbose log


def test_demo_failure_is_reported(capsys, monkeypatch):
    # A client key no server accepts: the first hop refuses it.
    real_start = demo._start_servers

    def start_then_forget_key(stack, workdir):
        servers = real_start(stack, workdir)
        for server in servers.values():
            server.authorized_keys.clear()
        return servers

    monkeypatch.setattr(demo, "_start_servers", start_then_forget_key)
    assert demo.main(["--quiet"]) == 1
    err = capsys.readouterr().err
    assert "paraproxy demo failed:" in err
    assert "authentication failed" in err.lower()
