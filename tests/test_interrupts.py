"""Interrupts in the middle of connect() leave nothing behind (issue 5 item 5).

The route: a ProxyCommand (``nc``) in front of gatekeeper, then ProxyJump gatekeeper,yuka to
mayu.kamakura, so one connect() goes through every phase: spawn, then for each of the three
hosts banner, key exchange and authentication, and a channel open on each hop.

Two ways to interrupt:

* in the main thread, where connect() runs: a paramiko call made there (``start_client``,
  ``auth_publickey``, ``open_channel``, ``Popen``) raises on its Nth call;
* as Ctrl-C does: while paramiko's transport thread is in a phase (reading the banner,
  negotiating keys), SIGINT is sent to the main thread, whose handler raises
  KeyboardInterrupt wherever connect() is waiting.

The exception must come out unchanged (a KeyboardInterrupt stays one, and is the same
object), and the autouse ``no_leaks`` check and the sshds' session counts prove nothing stayed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import paramiko
import pytest
from _faults import IDENTITIES, chain_home, connected, run
from paramiko import auth_handler
from testbed.leaks import wait_until

from paraproxy import proxycommand

pytest_plugins = ["fault_report"]

TABLE = "Interrupts"
CONFIG = ("Host gatekeeper\n    ProxyCommand nc %h %p\n"
          "Host mayu.kamakura\n    ProxyJump gatekeeper,yuka\n" + IDENTITIES)
HOSTS = {1: "hop 1 gatekeeper", 2: "hop 2 yuka", 3: "target mayu.kamakura"}


@pytest.fixture
def home(ssh_home, testbed):
    home = chain_home(ssh_home, testbed)
    home.write_config(CONFIG)
    return home


@pytest.fixture
def sessions(testbed):
    handles = [testbed.gatekeeper.sshd, testbed.yuka.sshd, testbed.mayu.sshd]
    before = {h.label: len(h.session_pids()) for h in handles}

    def closed() -> None:
        for h in handles:
            assert wait_until(lambda h=h: len(h.session_pids()) <= before[h.label], 5), (
                f"{h.label}: a session of ours is still open")

    return closed


class _BoomError(RuntimeError):
    pass


def _raise_on(monkeypatch, owner, name: str, nth: int, exc: BaseException,
              after: bool = False) -> list[int]:
    """Make ``owner.name`` raise ``exc`` on its ``nth`` call (from the main thread)."""
    original = getattr(owner, name)
    calls = [0]
    lock = threading.Lock()

    def wrapper(*args, **kwargs):
        with lock:
            calls[0] += 1
            hit = calls[0] == nth
        if hit and not after:
            raise exc
        result = original(*args, **kwargs)
        if hit:
            raise exc
        return result

    monkeypatch.setattr(owner, name, wrapper)
    return calls


@pytest.fixture
def ctrl_c():
    """SIGINT raises KeyboardInterrupt here, as in a terminal (a shell's background job starts
    with SIGINT ignored, and Python then installs no handler)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _sigint_during(monkeypatch, owner, name: str, nth: int) -> list[int]:
    """When the transport thread enters ``owner.name`` for the ``nth`` time, Ctrl-C the main
    thread, and give it time to act before the phase goes on."""
    original = getattr(owner, name)
    calls = [0]
    lock = threading.Lock()
    main = threading.main_thread().ident

    def wrapper(*args, **kwargs):
        with lock:
            calls[0] += 1
            hit = calls[0] == nth
        if hit:
            signal.pthread_kill(main, signal.SIGINT)
            time.sleep(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def _expect(exc_type, case: str, fault_case, sessions, same: BaseException | None = None):
    record = fault_case(TABLE, case, f"{exc_type.__name__} propagates unchanged; nothing "
                        "left (processes, threads, fds, sessions)")
    start = time.monotonic()
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    try:
        client.connect("mayu.kamakura")
    except BaseException as exc:  # the interrupt, as the caller sees it
        err = exc
    else:
        client.close()
        pytest.fail("connect() succeeded: the interruption never happened")
    finally:
        client.close()
    record.note(f"after {time.monotonic() - start:.2f} s")
    record.seen(err)
    if exc_type is KeyboardInterrupt:
        assert type(err) is KeyboardInterrupt, repr(err)
        if same is not None:
            assert err is same
    else:
        chain = [err, err.__cause__, err.__context__]
        assert same in chain, f"{err!r} hides the exception raised inside connect()"
    sessions()


# -- main-thread calls -------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["before the fork", "after the fork, inside Popen",
                                  "after Popen returned"])
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, _BoomError])
def test_spawn(home, fault_case, sessions, monkeypatch, when, exc_type):
    # "after the fork": the proxy exists, but Popen() never returned it to paraproxy.
    exc = exc_type("interrupt at spawn")
    if when == "after Popen returned":
        _raise_on(monkeypatch, proxycommand.ProxyCommandBridge, "_spawn", 1, exc, after=True)
    else:
        _raise_on(monkeypatch, subprocess.Popen, "_execute_child", 1, exc,
                  after=when.startswith("after"))
    _expect(exc_type, f"{exc_type.__name__} at spawn ({when})", fault_case, sessions, exc)


@pytest.mark.parametrize("nth", [1, 2, 3])
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, _BoomError])
def test_start_client(home, fault_case, sessions, monkeypatch, nth, exc_type):
    exc = exc_type("interrupt at start_client")
    _raise_on(monkeypatch, paramiko.Transport, "start_client", nth, exc)
    _expect(exc_type, f"{exc_type.__name__} entering the handshake of {HOSTS[nth]}",
            fault_case, sessions, exc)


@pytest.mark.parametrize("nth", [1, 2, 3])
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, _BoomError])
def test_auth(home, fault_case, sessions, monkeypatch, nth, exc_type):
    exc = exc_type("interrupt at auth")
    _raise_on(monkeypatch, paramiko.Transport, "auth_publickey", nth, exc)
    _expect(exc_type, f"{exc_type.__name__} in authentication of {HOSTS[nth]}", fault_case,
            sessions, exc)


@pytest.mark.parametrize("nth", [1, 2])
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, _BoomError])
def test_channel_open(home, fault_case, sessions, monkeypatch, nth, exc_type):
    exc = exc_type("interrupt at channel open")
    _raise_on(monkeypatch, paramiko.Transport, "open_channel", nth, exc)
    _expect(exc_type, f"{exc_type.__name__} opening the channel on {HOSTS[nth]}", fault_case,
            sessions, exc)


@pytest.mark.parametrize("nth", [1, 2])
def test_channel_open_after_it_succeeded(home, fault_case, sessions, monkeypatch, nth):
    # The channel is open on the hop, but the caller of open_channel never got it.
    exc = KeyboardInterrupt("interrupt after channel open")
    _raise_on(monkeypatch, paramiko.Transport, "open_channel", nth, exc, after=True)
    _expect(KeyboardInterrupt, f"KeyboardInterrupt just after the channel on {HOSTS[nth]} "
            "opened", fault_case, sessions, exc)


# -- Ctrl-C while the transport thread works --------------------------------------------------


@pytest.mark.parametrize("nth", [1, 2, 3])
@pytest.mark.parametrize(("phase", "method"), [("banner", "_check_banner"),
                                               ("kex", "_negotiate_keys")])
def test_sigint_during(home, fault_case, sessions, monkeypatch, ctrl_c, nth, phase,
                       method):
    calls = _sigint_during(monkeypatch, paramiko.Transport, method, nth)
    _expect(KeyboardInterrupt, f"SIGINT (Ctrl-C) during {phase} of {HOSTS[nth]}", fault_case,
            sessions)
    assert calls[0] >= nth


def test_sigint_during_auth_of_the_target(home, fault_case, sessions, monkeypatch, ctrl_c):
    _sigint_during(monkeypatch, auth_handler.AuthHandler, "_parse_service_accept", 3)
    _expect(KeyboardInterrupt, f"SIGINT (Ctrl-C) during authentication of {HOSTS[3]}",
            fault_case, sessions)


def test_sigint_with_a_timer_at_random_points(home, fault_case, sessions):
    # signal.setitimer: KeyboardInterrupt at 20 points spread over a whole connect().
    record = fault_case(TABLE, "SIGINT by timer at 20 points across connect()",
                        "KeyboardInterrupt or success each time; nothing left")
    start = time.monotonic()
    client = connected("mayu.kamakura")
    client.close()
    full = time.monotonic() - start
    old = signal.getsignal(signal.SIGALRM)

    def interrupt(signum, frame):
        raise KeyboardInterrupt("timer")

    # A signal landing in a weakref callback or __del__ can not propagate: Python reports
    # it as "unraisable" and goes on. That is the interpreter's rule, not a fault of ours;
    # only our own timer's interrupts are counted here, anything else goes to pytest.
    previous_hook = sys.unraisablehook

    def unraisable(info):
        if isinstance(info.exc_value, KeyboardInterrupt) and info.exc_value.args == ("timer",):
            outcomes["swallowed"] += 1
        else:
            previous_hook(info)

    signal.signal(signal.SIGALRM, interrupt)
    sys.unraisablehook = unraisable
    outcomes = {"interrupted": 0, "connected": 0, "swallowed": 0}
    try:
        for i in range(20):
            client = paramiko.SSHClient()
            client.load_system_host_keys()
            signal.setitimer(signal.ITIMER_REAL, full * (i + 0.5) / 20)
            try:
                try:
                    client.connect("mayu.kamakura")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt:
                outcomes["interrupted"] += 1
                client.close()
                continue
            try:
                outcomes["connected"] += 1
                assert run(client, "echo ok") == "ok"
            finally:
                client.close()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        sys.unraisablehook = previous_hook
    record.note(f"connect() takes {full:.2f} s; {outcomes}")
    sessions()
