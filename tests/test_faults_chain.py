"""Chain faults against real OpenSSH (REFERENCE 3.2; issue 5 item 2).

The test bed: gatekeeper (198.18.1.2) is the only host reachable from here, yuka only from
gatekeeper, mayu.kamakura only from yuka. Each fault must fail fast, name the hop, and close the
hops already opened: the hop's sshd has no session process of ours left afterwards, and the
autouse ``no_leaks`` check proves the client side kept nothing either.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess

import pytest
from _faults import (
    GATEKEEPER,
    IDENTITIES,
    chain_home,
    connected,
    cpu_during,
    run,
    timed,
)
from testbed.leaks import wait_until

from paraproxy import _route
from paraproxy.errors import (
    ChainError,
    HopAuthenticationError,
    HopChannelError,
    HopConnectError,
    HopError,
    HopHostKeyError,
)

pytest_plugins = ["fault_report"]

TABLE = "Chain faults"
HOP1 = f"hop 1/3 gatekeeper (root@{GATEKEEPER}:22)"


@pytest.fixture
def home(ssh_home, testbed):
    return chain_home(ssh_home, testbed)


@pytest.fixture
def sessions(testbed):
    """Check that the hops' sshds end up with no more session processes than before."""
    handles = [testbed.gatekeeper.sshd, testbed.yuka.sshd, testbed.mayu.sshd]
    before = {h.label: len(h.session_pids()) for h in handles}

    def closed(*extra) -> None:
        for handle in [*handles, *extra]:
            base = before.get(handle.label, 0)
            assert wait_until(lambda h=handle, b=base: len(h.session_pids()) <= b, 5), (
                f"{handle.label}: a session of ours is still open "
                f"({len(handle.session_pids())} > {base})"
            )

    return closed


def _fails(fault_case, case: str, bound: str, limit: float, host: str = "mayu.kamakura",
           **kwargs) -> tuple[BaseException, object]:
    record = fault_case(TABLE, case, bound)
    seconds, exc = timed(lambda: connected(host, **kwargs).close())
    record.note(f"failed after {seconds:.2f} s")
    assert exc is not None, "connect() succeeded"
    record.seen(exc)
    assert seconds < limit, f"took {seconds:.1f} s, bound {limit} s: {exc!r}"
    return exc, record


# -- unreachable hops ------------------------------------------------------------------------


def test_first_hop_refused(home, fault_case, sessions):
    home.write_config(IDENTITIES.replace(f"HostName {GATEKEEPER}",
                                         f"HostName {GATEKEEPER}\n    Port 2999")
                      + "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n")
    exc, _ = _fails(fault_case, "hop 1 unreachable: connection refused", "at once, hop 1 "
                    "named", 3)
    assert isinstance(exc, HopConnectError), repr(exc)
    assert str(exc).startswith(f"hop 1/3 gatekeeper (root@{GATEKEEPER}:2999)")
    assert "Connection refused" in str(exc)
    sessions()


def test_first_hop_times_out(home, fault_case, sessions):
    # 198.18.1.99 is on the client's link, but nobody answers: the SYN goes nowhere.
    home.write_config(IDENTITIES.replace(f"HostName {GATEKEEPER}",
                                         "HostName 198.18.1.99\n    ConnectTimeout 1")
                      + "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n")
    exc, _ = _fails(fault_case, "hop 1 unreachable: no answer (ConnectTimeout 1)",
                    "ConnectTimeout + 1 s, hop 1 named", 2.5)
    assert isinstance(exc, HopConnectError), repr(exc)
    assert str(exc).startswith("hop 1/3 gatekeeper (root@198.18.1.99:22)")
    assert "timed out" in str(exc).lower()
    sessions()


@pytest.mark.parametrize(("second", "words"), [
    ("yuka:2999", "Connection refused"),
    ("nosuchhost.invalid", "nosuchhost.invalid"),
])
def test_second_hop_unreachable(home, fault_case, sessions, second, words):
    home.write_config(f"Host mayu.kamakura\n    ProxyJump gatekeeper,{second}\n" + IDENTITIES)
    exc, _ = _fails(fault_case, f"hop 2 unreachable from hop 1 ({second})", "at once, the hop "
                    "that could not reach it named, hop 1 closed", 5)
    assert isinstance(exc, HopChannelError), repr(exc)
    text = str(exc)
    assert text.startswith(HOP1), text
    assert second.split(":")[0] in text and words in text, text
    sessions()


@contextlib.contextmanager
def _blackhole(testbed, host: str = "gatekeeper"):
    """An address that swallows SYNs without an error, seen from ``host``'s namespace.

    10.254.77.0/24 is routed out of gatekeeper's link to yuka, with a permanent neighbour
    entry for a MAC address nobody has: the frames leave, yuka's interface drops them, and no
    ICMP or ARP failure ever comes back (this kernel has no dummy interfaces or netfilter).
    """
    ns = testbed.host(host).namespace.name
    dead = "10.254.77.9"
    steps = [["route", "add", "10.254.77.0/24", "dev", "to-yuka"],
             ["neigh", "add", dead, "lladdr", "02:00:5e:fe:77:09", "dev", "to-yuka",
              "nud", "permanent"]]
    try:
        for argv in steps:
            subprocess.run(["ip", "-n", ns, *argv], check=True, capture_output=True, timeout=10)
        yield dead
    finally:
        for argv in (["neigh", "del", dead, "dev", "to-yuka"],
                     ["route", "del", "10.254.77.0/24", "dev", "to-yuka"]):
            subprocess.run(["ip", "-n", ns, *argv], capture_output=True, timeout=10, check=False)


_MUTE = ("import socket,sys,time;s=socket.socket();"
         "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('0.0.0.0',2225));"
         "s.listen(8);print('ready',flush=True);c=[]\n"
         "while True: c.append(s.accept()[0])")


def test_second_hop_accepts_but_never_speaks(home, testbed, fault_case, sessions):
    # yuka:2225 accepts TCP connections and never sends a byte (a hung sshd).
    mute = subprocess.Popen(testbed.yuka.namespace.exec_argv(["python3", "-c", _MUTE]),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert mute.stdout is not None and mute.stdout.readline().strip() == b"ready"
        home.write_known_hosts([testbed.known_hosts_line("gatekeeper", GATEKEEPER),
                                testbed.known_hosts_line("yuka", "[yuka]:2225")])
        home.write_config("Host target\n    HostName yuka\n    Port 2225\n"
                          "    ProxyJump gatekeeper\n    ConnectTimeout 2\n" + IDENTITIES)
        exc, _ = _fails(fault_case, "hop answers TCP but never sends a banner (ConnectTimeout "
                        "2)", "ConnectTimeout + 1 s, the silent host named, hop 1 closed", 3.5,
                        host="target")
        assert isinstance(exc, HopError), repr(exc)
        text = str(exc)
        assert text.startswith("hop 2/2 target (root@yuka:2225)"), text
        assert "timed out after 2 s" in text, text
    finally:
        mute.kill()
        mute.wait(5)
        if mute.stdout is not None:
            mute.stdout.close()
    sessions()


@pytest.mark.parametrize("how", ["ConnectTimeout 2", "timeout=2"])
def test_hop_never_answers_the_channel_open(home, testbed, fault_case, sessions, how):
    # gatekeeper's sshd connects to the target before it confirms the channel; the target's
    # address is routed into a dummy interface, so the channel open is never answered.
    with _blackhole(testbed) as dead:
        kwargs = {}
        extra = ""
        if how.startswith("ConnectTimeout"):
            extra = f"Host *\n    {how}\n"
        else:
            kwargs["timeout"] = 2
        home.write_config(extra + f"Host target\n    HostName {dead}\n    ProxyJump gatekeeper\n"
                          + IDENTITIES)
        exc, _ = _fails(fault_case, f"hop never answers the channel open ({how})",
                        "2 s + 1 s (paramiko alone: 3600 s), hop named", 3.5, host="target",
                        **kwargs)
        assert isinstance(exc, HopError), repr(exc)
        text = str(exc)
        assert text.startswith(f"hop 1/2 gatekeeper (root@{GATEKEEPER}:22)"), text
        assert dead in text, text
        # Clear: it says the hop did not answer in time, not how paramiko noticed.
        assert "timed out" in text.lower() or "timeout" in text.lower(), text
        sessions()


def test_hop_never_answers_the_channel_open_without_any_timeout(home, testbed, fault_case,
                                                             sessions):
    # No ConnectTimeout, no timeout=: paramiko alone would wait an hour for the open.
    with _blackhole(testbed) as dead:
        home.write_config(f"Host target\n    HostName {dead}\n    ProxyJump gatekeeper\n"
                          + IDENTITIES)
        exc, _ = _fails(fault_case, "hop never answers the channel open (no timeout set)",
                        "paraproxy's 30 s channel-open bound + 3 s (paramiko alone: 3600 s)",
                        33, host="target")
        assert isinstance(exc, HopChannelError), repr(exc)
        text = str(exc)
        assert text.startswith(f"hop 1/2 gatekeeper (root@{GATEKEEPER}:22)"), text
        assert dead in text and ("timed out" in text.lower() or "timeout" in text.lower()), text
        sessions()


def test_hop_refuses_forwarding(home, testbed, fault_case, sessions):
    home.write_known_hosts([testbed.known_hosts_line("gatekeeper", f"[{GATEKEEPER}]:2222"),
                            testbed.known_hosts_line("yuka", "yuka")])
    home.write_config("Host yuka\n    ProxyJump gatekeeper:2222\n" + IDENTITIES)
    exc, _ = _fails(fault_case, "hop refuses forwarding (AllowTcpForwarding no)",
                    "at once: 'administratively prohibited', hop named, hop closed", 3,
                    host="yuka")
    assert isinstance(exc, HopChannelError), repr(exc)
    assert str(exc).startswith(f"hop 1/2 gatekeeper (root@{GATEKEEPER}:2222)")
    assert "administratively prohibited" in str(exc)
    sessions(testbed.gatekeeper_noforward)


# -- MaxStartups -----------------------------------------------------------------------------


def test_first_hop_maxstartups_exhausted(home, testbed, fault_case, sessions):
    sshd = testbed.start_sshd("gatekeeper", 2223, {"MaxStartups": "1:100:1"})
    hold = socket.create_connection((GATEKEEPER, 2223), timeout=5)
    try:
        assert hold.recv(64).startswith(b"SSH-")  # one unauthenticated connection, held
        home.write_known_hosts([testbed.known_hosts_line("gatekeeper", f"[{GATEKEEPER}]:2223"),
                                testbed.known_hosts_line("yuka", "yuka"),
                                testbed.known_hosts_line("mayu", "mayu.kamakura")])
        home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper:2223,yuka\n"
                          + IDENTITIES)
        exc, _ = _fails(fault_case, "hop 1 MaxStartups exhausted", "at once, a clear error "
                        "naming hop 1 (not an assertion)", 5)
        assert isinstance(exc, HopConnectError), repr(exc)
        text = str(exc)
        assert text.startswith(f"hop 1/3 gatekeeper (root@{GATEKEEPER}:2223)"), text
        assert any(w in text.lower() for w in ("closed", "reset", "eof")), text
    finally:
        hold.close()
        sshd.stop()
    sessions()


def test_second_hop_maxstartups_exhausted(home, testbed, fault_case, sessions):
    sshd = testbed.start_sshd("yuka", 2223, {"MaxStartups": "1:100:1"})
    home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka:2223\n" + IDENTITIES)
    holder = connected("gatekeeper")
    try:
        hold = holder.get_transport().open_channel("direct-tcpip", ("yuka", 2223),
                                                    ("127.0.0.1", 0), timeout=5)
        hold.settimeout(5)
        assert hold.recv(64).startswith(b"SSH-")
        home.write_known_hosts([testbed.known_hosts_line("gatekeeper", GATEKEEPER),
                                testbed.known_hosts_line("yuka", "[yuka]:2223"),
                                testbed.known_hosts_line("mayu", "mayu.kamakura")])
        home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka:2223\n"
                          + IDENTITIES)
        exc, _ = _fails(fault_case, "hop 2 MaxStartups exhausted", "at once, a clear error "
                        "naming hop 2, hop 1 closed", 5)
        assert isinstance(exc, HopConnectError), repr(exc)
        text = str(exc)
        assert text.startswith("hop 2/3 yuka (root@yuka:2223)"), text
        assert any(w in text.lower() for w in ("closed", "reset", "eof")), text
    finally:
        holder.close()
        sshd.stop()
    sessions()


# -- a hop drops mid-session -----------------------------------------------------------------


@pytest.mark.parametrize("hop", ["gatekeeper", "yuka"])
def test_hop_drops_mid_session(home, testbed, fault_case, hop):
    record = fault_case(TABLE, f"hop drops mid-session ({hop}'s sshd session killed)",
                        "channel EOF, target transport inactive within 1 s, no busy loop")
    home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n" + IDENTITIES)
    client = connected("mayu.kamakura")
    try:
        transport = client.get_transport()
        chan = transport.open_session()
        chan.exec_command("sleep 60")
        testbed.host(hop).sshd.kill_sessions()
        wall, cpu = cpu_during(1.0, lambda: not transport.is_active())
        record.note(f"target transport inactive after {wall:.3f} s")
        assert not transport.is_active(), "target transport still active 1 s after the drop"
        chan.settimeout(5)
        assert chan.recv(1) == b""
        idle_wall, idle_cpu = cpu_during(1.0)
        record.note(f"CPU {cpu + idle_cpu:.3f} s over {wall + idle_wall:.2f} s")
        assert (cpu + idle_cpu) / (wall + idle_wall) < 0.5, "busy loop after the drop"
        seconds, exc = timed(client.close)
        record.note(f"close() took {seconds:.2f} s")
        assert exc is None and seconds < 3
    finally:
        client.close()
    # And the next connection works again (no dead hop handed out).
    client = connected("mayu.kamakura")
    try:
        assert run(client, "echo $SSH_CONNECTION").split()[2] == "198.18.3.2"
    finally:
        client.close()


def test_shared_hop_drops_under_two_clients(home, testbed, fault_case, sessions):
    record = fault_case(TABLE, "shared hop drops under two connected clients",
                        "both see EOF within 1 s; the dead hop is never handed out again")
    home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n" + IDENTITIES)
    clients = [connected("mayu.kamakura") for _ in range(2)]
    try:
        transports = [c.get_transport() for c in clients]
        testbed.gatekeeper.sshd.kill_sessions()
        wall, _ = cpu_during(1.0, lambda: not any(t.is_active() for t in transports))
        record.note(f"both inactive after {wall:.3f} s")
        assert not any(t.is_active() for t in transports)
    finally:
        for client in clients:
            client.close()
    client = connected("mayu.kamakura")
    try:
        assert run(client, "echo $SSH_CONNECTION").split()[2] == "198.18.3.2"
    finally:
        client.close()
    sessions()


# -- host keys -------------------------------------------------------------------------------


def test_hop_host_key_changed(home, testbed, fault_case, sessions):
    # yuka:2224 is a real sshd with a new host key; known_hosts still has the old one.
    sshd = testbed.start_sshd("yuka", 2224, host_key=testbed.extra_host_key("yuka-new"))
    try:
        before = _logins(sshd)
        home.write_known_hosts([testbed.known_hosts_line("gatekeeper", GATEKEEPER),
                                testbed.known_hosts_line("yuka", "[yuka]:2224"),
                                testbed.known_hosts_line("mayu", "mayu.kamakura")])
        home.write_config("Host mayu.kamakura\n    ProxyJump gatekeeper,yuka:2224\n"
                          + IDENTITIES)
        exc, _ = _fails(fault_case, "hop 2 host key changed", "fail closed before auth; hop, "
                        "name and both fingerprints named; hop 1 closed", 5)
        assert isinstance(exc, HopHostKeyError), repr(exc)
        text = str(exc)
        assert text.startswith("hop 2/3 yuka (root@yuka:2224)"), text
        assert "HAS CHANGED" in text and "[yuka]:2224" in text
        assert text.count("SHA256:") == 2, text
        assert _logins(sshd) == before  # never authenticated to the changed key
        sessions(sshd)
    finally:
        sshd.stop()


def _logins(sshd) -> int:
    return sshd.log_text().count("Accepted publickey")


def test_hop_authentication_failure_closes_hop_one(home, fault_case, sessions):
    home.write_config(IDENTITIES.replace("~/.ssh/id_yuka", "~/.ssh/id_mayu")
                      + "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n")
    exc, _ = _fails(fault_case, "authentication failure at hop 2", "hop 2 named, hop 1 closed",
                    10, look_for_keys=False, allow_agent=False)
    assert isinstance(exc, HopAuthenticationError), repr(exc)
    assert str(exc).startswith("hop 2/3 yuka (root@yuka:22): authentication failed")
    sessions()


# -- loops and over-long chains --------------------------------------------------------------


def _connections(testbed) -> int:
    return testbed.gatekeeper.sshd.log_text().count("Connection from")


@pytest.mark.parametrize(("case", "config", "host"), [
    ("self-jump (Host a / ProxyJump a)", "Host gatekeeper\n    ProxyJump gatekeeper\n",
     "gatekeeper"),
    ("A -> B -> A (ProxyJump)", "Host gatekeeper\n    ProxyJump yuka\n"
     "Host yuka\n    ProxyJump gatekeeper\n", "yuka"),
    ("A -> B -> A (ssh -W ProxyCommands)", "Host gatekeeper\n    ProxyCommand ssh -W %h:%p "
     "yuka\nHost yuka\n    ProxyCommand ssh -W %h:%p gatekeeper\n", "yuka"),
    ("A -> B -> C -> A (mixed)", "Host gatekeeper\n    ProxyCommand ssh mayu.kamakura nc %h "
     "%p\nHost yuka\n    ProxyJump gatekeeper\nHost mayu.kamakura\n    ProxyJump yuka\n",
     "mayu.kamakura"),
])
def test_loops_are_refused_before_connecting(home, testbed, fault_case, case, config, host):
    home.write_config(config + IDENTITIES)
    before = _connections(testbed)
    exc, _ = _fails(fault_case, f"loop: {case}", "refused before any connection, the cycle "
                    "named", 2, host=host)
    assert isinstance(exc, ChainError), repr(exc)
    assert "loop" in str(exc)
    assert _connections(testbed) == before


@pytest.mark.parametrize("length", [11, 50])
def test_over_long_chains_are_refused(home, testbed, fault_case, length):
    lines = [f"Host h{i}\n    HostName {GATEKEEPER}\n    Port {2000 + i}\n"
             f"    ProxyJump h{i + 1}\n" for i in range(length)]
    home.write_config("".join(lines) + IDENTITIES)
    before = _connections(testbed)
    exc, _ = _fails(fault_case, f"{length + 1}-hop chain (cap {_route.MAX_HOPS})", "refused "
                    "before any connection, the cap and PARAPROXY_MAX_HOPS named", 2, host="h0")
    assert isinstance(exc, ChainError), repr(exc)
    assert f"longer than {_route.MAX_HOPS} hops" in str(exc)
    assert "PARAPROXY_MAX_HOPS" in str(exc)
    assert _connections(testbed) == before


def test_cap_can_be_raised(home, testbed, fault_case, monkeypatch):
    record = fault_case(TABLE, "12-hop chain with the cap raised to 20", "planned, then "
                        "built from hop 1 (fails at the first unreachable hop, named)")
    monkeypatch.setattr(_route, "MAX_HOPS", 20)
    lines = [f"Host h{i}\n    HostName {GATEKEEPER}\n    Port {2000 + i}\n"
             f"    ProxyJump h{i + 1}\n" for i in range(11)]
    home.write_config("".join(lines) + f"Host h11\n    HostName {GATEKEEPER}\n" + IDENTITIES)
    seconds, exc = timed(lambda: connected("h0").close())
    record.note(f"failed after {seconds:.2f} s")
    assert exc is not None
    record.seen(exc)
    assert isinstance(exc, HopError), repr(exc)
    assert str(exc).startswith(f"hop 1/12 h11 (root@{GATEKEEPER}:22)"), str(exc)
