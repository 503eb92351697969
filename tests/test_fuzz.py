"""Fuzzing the parsers and the planner with hypothesis (issue 5 item 3).

Contracts:

* ``config.resolve(host, config_files=[file])`` returns a HostConfig or raises ConfigError /
  InvalidNameError, whatever the file says (never another exception, never a hang);
* ``_sshcmd.parse_ssh_command(command, expand)`` returns SshCommand or NotRecognised, or raises
  exactly what ``expand`` raises;
* ``_jumpspec.parse_proxy_jump(value)`` returns a tuple or None, or raises ValueError;
* ``_route.plan`` on generated configs returns a Route or raises a ParaproxyError (loops and
  over-long chains included: never RecursionError).

``Match exec`` runs under ``$SHELL``: the tests set ``SHELL=/bin/false`` so that nothing a
generated config says can run. Example counts are moderate: the whole file stays < 60 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraproxy import _route, config
from paraproxy._jumpspec import JumpHost, parse_proxy_jump
from paraproxy._sshcmd import NotRecognised, SshCommand, parse_ssh_command
from paraproxy.errors import ConfigError, InvalidNameError, ParaproxyError

pytest_plugins = ["fault_report"]

TABLE = "Fuzzing"
FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@contextmanager
def _inert_shell() -> Iterator[None]:
    """$SHELL=/bin/false while parsing: a generated ``Match exec`` can run nothing."""
    old = os.environ.get("SHELL")
    os.environ["SHELL"] = "/bin/false"
    try:
        yield
    finally:
        if old is None:
            del os.environ["SHELL"]
        else:
            os.environ["SHELL"] = old


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    path.chmod(0o600)
    return str(path)


KEYWORDS = [
    "Host", "Match", "HostName", "Port", "User", "ProxyCommand", "ProxyJump", "Include",
    "IdentityFile", "IgnoreUnknown", "CanonicalizeHostname", "CanonicalDomains",
    "ConnectTimeout", "HostKeyAlias", "ForwardAgent", "SendEnv", "SetEnv", "UserKnownHostsFile",
    "IdentitiesOnly", "ProxyUseFdpass", "Tag", "Bogus", "host", "PORT", "proxyjump",
]  # fmt: skip
VALUES = [
    "a", "b", "target", "*", "!a", "a*", "?", "none", "all", "final", "canonical", "exec",
    "host", "originalhost", "user", "localuser", "tagged", "localnetwork", "%h", "%p", "%r",
    "%n", "%%", "%x", "%", "${HOME}", "${UNDEFINED_PARAPROXY}", "~", "~/.ssh/x", "22", "0",
    "65536", "-1", "yes", "no", "\"quoted word\"", "\"", "=", ",", "a,b", "u@a:2", "[::1]",
    "[::1", "ssh://u@h:1", "ssh", "-W", "%h:%p", "nc", "|", ";", "#", "# c", "10.1.1.*",
    "\t", "é", "\x00", "\x1b",
]  # fmt: skip

_lines = st.tuples(
    st.sampled_from(["", "  ", "\t"]),
    st.sampled_from(KEYWORDS),
    st.sampled_from([" ", "=", " = ", "\t"]),
    st.lists(st.sampled_from(VALUES), max_size=4).map(" ".join),
    st.sampled_from(["\n", "\r\n"]),
).map("".join)
GRAMMAR_CONFIGS = st.lists(_lines, max_size=12).map("".join)


def _resolve_ok(path: str, host: str) -> None:
    try:
        with _inert_shell():
            hc = config.resolve(host, config_files=[path], exec_timeout=2)
    except (ConfigError, InvalidNameError):
        return
    assert isinstance(hc, config.HostConfig)
    assert 0 < hc.port < 65536


@pytest.fixture
def record(fault_case):  # type: ignore[no-untyped-def]
    def start(case: str, bound: str):  # type: ignore[no-untyped-def]
        item = fault_case(TABLE, case, bound)
        item.started = time.monotonic()
        return item

    return start


def test_config_text(ssh_home, tmp_path, record):
    case = record("config.resolve on random text (300 examples)", "returns, or ConfigError / "
                  "InvalidNameError")
    path = tmp_path / "cfg"

    @settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
    @given(st.text(max_size=300), st.sampled_from(["target", "a", "10.1.1.5"]))
    def check(text: str, host: str) -> None:
        _resolve_ok(_write(path, text), host)

    check()
    case.note(f"{time.monotonic() - case.started:.1f} s")


def test_config_grammar(ssh_home, tmp_path, record):
    case = record("config.resolve on generated ssh_config (500 examples)", "returns, or "
                  "ConfigError / InvalidNameError")
    path = tmp_path / "cfg"

    @settings(max_examples=500, deadline=None, suppress_health_check=FIXTURES)
    @given(GRAMMAR_CONFIGS, st.sampled_from(["target", "a", "b", "10.1.1.5"]))
    def check(text: str, host: str) -> None:
        _resolve_ok(_write(path, text), host)

    check()
    case.note(f"{time.monotonic() - case.started:.1f} s")


_HOSTS = ["a", "b", "c", "d", "target"]
_VIA = st.one_of(
    st.lists(st.sampled_from([*_HOSTS, "u@a", "b:2222", "none", "[::1]:22", "c:0"]),
             min_size=1, max_size=3).map(lambda hs: "ProxyJump " + ",".join(hs)),
    st.sampled_from(_HOSTS).map(lambda h: f"ProxyCommand ssh -W %h:%p {h}"),
    st.sampled_from(_HOSTS).map(lambda h: f"ProxyCommand ssh -q -A {h} 'nc -w1 %h %p'"),
    st.sampled_from(_HOSTS).map(lambda h: f"ProxyCommand ssh -J {h} -W %h:%p {h}"),
    st.just("ProxyCommand nc %h %p"),
    st.just("ProxyCommand none"),
)
_BLOCK = st.tuples(
    st.sampled_from([*_HOSTS, "*", "!a *", "a b"]),
    st.lists(st.one_of(_VIA, st.sampled_from(["HostName a", "HostName b", "Port 2222",
                                              "User u", "HostName 10.1.1.1"])), max_size=3),
).map(lambda b: f"Host {b[0]}\n" + "".join(f"    {line}\n" for line in b[1]))
ROUTE_CONFIGS = st.lists(_BLOCK, max_size=8).map("".join)


def test_plan_on_generated_chains(ssh_home, tmp_path, record):
    case = record("_route.plan on generated chains (500 examples)", "a Route or a "
                  "ParaproxyError: loops and depth caught, never RecursionError")
    path = tmp_path / "cfg"
    seen = {"routes": 0, "errors": 0}

    @settings(max_examples=500, deadline=None, suppress_health_check=FIXTURES)
    @given(ROUTE_CONFIGS, st.sampled_from(_HOSTS))
    def check(text: str, host: str) -> None:
        files = [_write(path, text)]
        try:
            with _inert_shell():
                route = _route.plan(config.resolve(host, config_files=files, exec_timeout=2),
                                    files)
        except ParaproxyError:
            seen["errors"] += 1
            return
        seen["routes"] += 1
        assert isinstance(route, _route.Route)
        assert 1 <= len(route.hops) <= _route.MAX_HOPS
        assert route.target.config.host == host
        keys = [h.key for h in route.hops]
        assert len(keys) == len(set(keys)), route.describe()  # no host twice

    check()
    case.note(f"{seen['routes']} routes, {seen['errors']} refusals, "
              f"{time.monotonic() - case.started:.1f} s")


class _SentinelError(Exception):
    pass


_SSH_PIECES = st.sampled_from([
    "ssh", "-W", "%h:%p", "-q", "-A", "-x", "-J", "a,b", "-p", "22", "-l", "u", "-o",
    "Port=2", "-F", "/dev/null", "nc", "-w1", "%h", "%p", "'nc %h %p'", '"', "'", "\\", "|",
    ";", "&&", "$(x)", "`x`", "%x", "%", "exec", "--", "-", "-oProxyCommand=x", "u@h",
    "[::1]:22", "h", "socat", "-", "TCP:%h:%p", "\n", "#",
])  # fmt: skip


def test_parse_ssh_command(ssh_home, tmp_path, record):
    case = record("_sshcmd.parse_ssh_command on generated commands (1000 examples)",
                  "SshCommand or NotRecognised, or what expand() raises")
    hc = config.resolve("target", config_files=[_write(tmp_path / "cfg", "")])

    def expand(word: str) -> str:
        if "%x" in word:
            raise _SentinelError(word)
        return hc.expand(word, "proxycommand")

    @settings(max_examples=1000, deadline=None, suppress_health_check=FIXTURES)
    @given(st.one_of(st.lists(_SSH_PIECES, max_size=10).map(" ".join), st.text(max_size=80)))
    def check(command: str) -> None:
        try:
            result = parse_ssh_command(command, expand)
        except (_SentinelError, ConfigError):
            return
        assert isinstance(result, (SshCommand, NotRecognised))

    check()
    case.note(f"{time.monotonic() - case.started:.1f} s")


def test_parse_proxy_jump(record):
    case = record("_jumpspec.parse_proxy_jump on generated values (1000 examples)",
                  "a tuple of hops, None, or ValueError")
    pieces = st.sampled_from([*"ab1:[]@,#/%+;. \t-_x0$`'\"\\\n\x00", "ssh://", "%00", "%0a",
                              "none", "::", "65536", "-oProxyCommand=x", "a;id", "$(id)"])

    @settings(max_examples=1000, deadline=None)
    @given(st.one_of(st.lists(pieces, max_size=12).map("".join), st.text(max_size=60)))
    def check(value: str) -> None:
        try:
            result = parse_proxy_jump(value)
        except ValueError:
            return
        assert result is None or all(isinstance(h, JumpHost) for h in result)

    check()
    case.note(f"{time.monotonic() - case.started:.1f} s")
