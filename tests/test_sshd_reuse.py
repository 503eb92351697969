"""Hop reuse against real OpenSSH: one login per hop, shared, counted, closed by the last user."""

from __future__ import annotations

import contextlib
import logging
import re

import paramiko
import pytest
from testbed.clients import GATEKEEPER, client_home, connected, identities, logins
from testbed.leaks import wait_until

from paraproxy._pool import POOL
from paraproxy.errors import HopHostKeyError
from paraproxy.hook import chain_of

CONFIG = identities(yuka="ProxyJump gatekeeper", mayu="ProxyJump gatekeeper,yuka")


@pytest.fixture
def home(ssh_home, testbed):
    """HOME with one key per host and every host key known."""
    return client_home(ssh_home, testbed, gatekeeper_as=(GATEKEEPER, f"[{GATEKEEPER}]:2223"),
                      config=CONFIG)


def _echo(client: paramiko.SSHClient) -> str:
    """Where the session runs, as its sshd sees it."""
    _, out, _ = client.exec_command("echo $SSH_CONNECTION")
    return out.read().decode().split()[2]


def test_connections_through_one_bastion_log_into_it_once(home, testbed):
    marks = {h: testbed.host(h).sshd.log_mark() for h in ("gatekeeper", "yuka", "mayu")}
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connected("mayu.kamakura")) for _ in range(6)]
        assert [_echo(c) for c in clients] == ["198.18.3.2"] * 6
        segment = chain_of(clients[0]).segment
        assert segment is not None and segment.users == 6
        assert all(chain_of(c).segment is segment for c in clients)
        assert len(POOL) == 2  # gatekeeper and yuka, each open once
    assert logins(testbed, "gatekeeper", "gatekeeper", marks["gatekeeper"], user="root") == 1
    assert logins(testbed, "yuka", "yuka", marks["yuka"], user="root") == 1
    assert logins(testbed, "mayu", "mayu", marks["mayu"], user="root") == 6
    assert len(POOL) == 0  # the last close closed the shared hops


def test_the_hop_stays_open_until_its_last_user_closes(home):
    first = connected("mayu.kamakura")
    second = connected("mayu.kamakura")
    try:
        hop = chain_of(first).segment
        hop_transport = hop.client.get_transport()
        first.close()
        assert hop_transport.is_active()
        assert hop.users == 1
        assert _echo(second) == "198.18.3.2"  # still carried by the shared hops
    finally:
        second.close()
    assert not hop_transport.is_active()


def test_different_hosts_behind_one_bastion_share_it(home, testbed):
    mark = testbed.gatekeeper.sshd.log_mark()
    yuka = connected("yuka")
    mayu = connected("mayu.kamakura")
    try:
        assert _echo(yuka) == "198.18.2.2"
        assert _echo(mayu) == "198.18.3.2"
    finally:
        mayu.close()
        yuka.close()
    assert logins(testbed, "gatekeeper", "gatekeeper", mark, user="root") == 1


def test_reuse_can_be_turned_off(home, testbed, monkeypatch):
    monkeypatch.setenv("PARAPROXY_REUSE", "0")
    mark = testbed.gatekeeper.sshd.log_mark()
    with connected("yuka") as one, connected("yuka") as two:
        assert chain_of(one).segment is not chain_of(two).segment
    assert logins(testbed, "gatekeeper", "gatekeeper", mark, user="root") == 2
    assert len(POOL) == 0


def test_refused_channel_on_a_shared_hop_falls_back_to_a_new_connection(home, testbed):
    # MaxSessions 1: the shared gatekeeper runs one `nc` relay, and refuses a second.
    sshd = testbed.start_sshd("gatekeeper", 2223, {"MaxSessions": "1"})
    try:
        home.write_config(f"Host gk1\n    HostName {GATEKEEPER}\n    Port 2223\n"
                          "    IdentityFile ~/.ssh/id_gatekeeper\n"
                          "Host yuka\n    ProxyCommand ssh gk1 nc %h %p\n" + CONFIG)
        mark = sshd.log_mark()
        with connected("yuka") as one, connected("yuka") as two:
            assert _echo(one) == _echo(two) == "198.18.2.2"
            assert chain_of(one).segment is not chain_of(two).segment
        fp = re.escape(testbed.key_fingerprint("gatekeeper"))
        assert len(re.findall(rf"Accepted publickey .*{fp}", sshd.log_text(since=mark))) == 2
    finally:
        sshd.stop()


def test_a_dead_hop_fails_its_users_and_is_replaced(home, testbed):
    one = connected("mayu.kamakura")
    two = connected("mayu.kamakura")
    try:
        testbed.gatekeeper.sshd.kill_sessions()
        # Both users notice: their transports run over the dead hop and close.
        assert wait_until(lambda: not any(c.get_transport().is_active() for c in (one, two)),
                          10)
        three = connected("mayu.kamakura")  # a new gatekeeper connection, not the dead one
        try:
            assert _echo(three) == "198.18.3.2"
            assert chain_of(three).segment is not chain_of(one).segment
        finally:
            three.close()
    finally:
        one.close()
        two.close()
    assert len(POOL) == 0


def test_a_reused_hop_is_checked_against_the_new_callers_known_hosts(home, testbed):
    trusting = connected("yuka")
    try:
        stranger = paramiko.SSHClient()  # knows no host key at all: RejectPolicy
        with pytest.raises(HopHostKeyError) as info:
            stranger.connect("yuka")
        stranger.close()
        assert str(info.value).startswith(f"hop 1/2 gatekeeper (root@{GATEKEEPER}:22)")
        assert _echo(trusting) == "198.18.2.2"  # the refusal did not disturb the hop
    finally:
        trusting.close()


def test_verbose_log_says_when_a_hop_is_reused(home, caplog):
    caplog.set_level(logging.INFO, logger="paraproxy")
    with connected("yuka"), connected("yuka"):
        pass
    assert re.search(r"hop 1/2 gatekeeper .*: reusing the open connection \(2 users\)",
                     caplog.text)


def test_data_racing_a_channel_close_never_reaches_the_shared_hop(home, testbed):
    # paramiko checks that a channel is open, then sends its data outside the channel's
    # lock; a close in between puts the data after the CLOSE. sshd then disconnects
    # ("packet referred to nonexistent channel"), which on a shared hop cuts every user.
    # Replay that interleaving on the hop: a channel's data message built while it was
    # open, sent after its close handshake.
    mark = testbed.gatekeeper.sshd.log_mark()
    with connected("yuka") as user:
        hop = chain_of(user).segment.client.get_transport()
        channel = hop.open_channel("direct-tcpip", ("yuka", 22), ("", 0))
        assert channel.recv(64).startswith(b"SSH-2.0-")
        stale = paramiko.Message()
        stale.add_byte(paramiko.common.cMSG_CHANNEL_DATA)
        stale.add_int(channel.remote_chanid)
        stale.add_string(b"late")
        channel.close()
        channels = hop._channels  # paramiko frees the id once both sides have closed
        assert wait_until(lambda: channels.get(channel.chanid) is None, 10)
        hop._send_user_message(stale)
        assert _echo(user) == "198.18.2.2"  # the shared hop is still up
        assert hop.is_active()
    assert "nonexistent channel" not in testbed.gatekeeper.sshd.log_text(since=mark)
