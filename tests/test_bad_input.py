"""Bad input through ``SSHClient.connect()``: REFERENCE 3.1 (config), 3.2 (chains), 3.4 (names).

The unit tests (test_config*.py, test_jumpspec.py, test_tokens.py, test_sshcmd.py) check the
parsers' verdicts. Here every row goes through the hook as an application would meet it, and
each test also proves that nothing ran that should not have: the config's ProxyCommand (and,
where relevant, a ``Match exec``) would create a marker file, and the marker must not exist.
No server is needed: nothing may get as far as connecting.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import paramiko
import pytest

from paraproxy import _route, config
from paraproxy._route import Forward, ProxyCommand, Tcp
from paraproxy.errors import ChainError, ConfigError, InvalidNameError, ParaproxyError

pytest_plugins = ["fault_report"]


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "ran"


def _connect(host: str, **kwargs) -> BaseException | None:  # type: ignore[no-untyped-def]
    """connect() with a bogus password; return what it raised (None: it connected)."""
    client = paramiko.SSHClient()
    try:
        client.connect(host, password="x", **kwargs)
    except BaseException as exc:
        return exc
    finally:
        client.close()
    return None


def _trap(marker: Path) -> str:
    """A last block whose ProxyCommand would leave ``marker`` if it ever ran."""
    return f"\nHost *\n    ProxyCommand touch {marker}; exit 1\n"


# -- 3.1 config: errors, each citing file and line, nothing run --------------------------------

CONFIG_ERRORS = [
    ("ProxyCommand with no value", "Host target\n    ProxyCommand\n", 2, "no argument"),
    ("unknown keyword", "Host target\n    Bogus yes\n", 2, "Bad configuration option: bogus"),
    ("unbalanced quote", 'Host target\n    HostName "abc\n', 2, "quote"),
    ("HostName a b", "Host target\n    HostName a b\n", 2, "xtra argument"),
    ("Port xxx", "Host target\n    Port xxx\n", 2, "Bad port"),
    ("Port 0", "Host target\n    Port 0\n", 2, "Bad port"),
    ("Port 65536", "Host target\n    Port 65536\n", 2, "Bad port"),
    ("bad bool (IdentitiesOnly maybe)", "Host target\n    IdentitiesOnly maybe\n", 2,
     "unsupported option"),
    ("bad line in a non-matching block", "Host other\n    Port nope\n", 2, "Bad port"),
    ("unknown Match criterion", "Match tagged x bogus y\n    Port 2\n", 1, "Bad Match condition"),
    ("unknown %x in ProxyCommand", "Host target\n    ProxyCommand nc %x %p\n", 2, "%x"),
    ("trailing % in ProxyCommand", "Host target\n    ProxyCommand nc %h %\n", 2,
     "invalid format"),
    ("${UNDEFINED} in IdentityFile",
     "Host target\n    IdentityFile ${PARAPROXY_SURELY_UNDEFINED}/id\n", 2, "UNDEFINED"),
    ("ProxyCommand -", "Host target\n    ProxyCommand -\n", 2, "ProxyCommand -"),
    ("malformed ProxyJump element", "Host target\n    ProxyJump jumpbox:22bad22\n", 2,
     "jumpbox:22bad22"),
    ("malformed ProxyJump, 2nd element", "Host target\n    ProxyJump localhost,[::1\n", 2,
     "[::1"),
    ("ProxyJump user@:22", "Host target\n    ProxyJump user@:22\n", 2, "user@:22"),
]


@pytest.mark.parametrize(("case", "text", "line", "words"), CONFIG_ERRORS,
                         ids=[c[0] for c in CONFIG_ERRORS])
def test_config_errors_cite_file_and_line_and_run_nothing(ssh_home, marker, fault_case, case,
                                                          text, line, words):
    record = fault_case("Bad input: config", case, "ConfigError citing file and line; nothing "
                        "runs")
    path = ssh_home.write_config(text + _trap(marker))
    exc = _connect("target")
    record.seen(exc or "connected")
    assert isinstance(exc, ConfigError), repr(exc)
    assert isinstance(exc, paramiko.ConfigParseError)
    assert str(exc).startswith(f"{path} line {line}: "), str(exc)
    assert words.lower() in str(exc).lower(), str(exc)
    assert not marker.exists()


def test_ignore_unknown_is_honoured(ssh_home, marker, fault_case):
    record = fault_case("Bad input: config", "unknown keyword listed in IgnoreUnknown",
                        "ignored, as OpenSSH does")
    path = ssh_home.write_config("IgnoreUnknown Bogus*\nHost target\n    BogusOption yes\n"
                                 "    Port 2201\n")
    hc = config.resolve("target", config_files=[str(path)])
    record.seen(f"resolved: port {hc.port}")
    assert hc.port == 2201


def test_self_include_is_bounded(ssh_home, marker, fault_case):
    record = fault_case("Bad input: config", "self-Include and A -> B -> A Include",
                        "'Too many recursive configuration includes', at once")
    a = ssh_home.write_file(".ssh/a.conf", "Include ~/.ssh/b.conf\n")
    ssh_home.write_file(".ssh/b.conf", f"Include {a}\n")
    for text in ("Include ~/.ssh/config\n", "Include ~/.ssh/a.conf\n"):
        ssh_home.write_config(text + _trap(marker))
        start = time.monotonic()
        exc = _connect("target")
        assert time.monotonic() - start < 5
        record.seen(exc or "connected")
        assert isinstance(exc, ConfigError), repr(exc)
        assert "Too many recursive configuration includes" in str(exc)
    assert not marker.exists()


def test_include_missing_file_and_empty_glob_are_ignored(ssh_home, fault_case):
    record = fault_case("Bad input: config", "Include of a missing file / empty glob",
                        "ignored")
    path = ssh_home.write_config("Include ~/.ssh/nope.conf\nInclude ~/.ssh/none.d/*\n"
                                 "Host target\n    Port 2202\n")
    hc = config.resolve("target", config_files=[str(path)])
    record.seen(f"resolved: port {hc.port}")
    assert hc.port == 2202


@pytest.mark.parametrize("kind", ["FIFO without a writer", "/dev/zero", "17 MiB file"])
def test_include_of_non_regular_or_huge_file_is_refused_without_hanging(ssh_home, tmp_path,
                                                                        marker, fault_case,
                                                                        kind):
    record = fault_case("Bad input: config", f"Include of a {kind}", "refused at once (a FIFO "
                        "must not block the open)")
    if kind.startswith("FIFO"):
        target = tmp_path / "fifo"
        os.mkfifo(target)
    elif kind == "/dev/zero":
        target = Path("/dev/zero")
    else:
        target = tmp_path / "big"
        with open(target, "wb") as f:
            f.truncate(17 * 2**20)
    ssh_home.write_config(f"Include {target}\n" + _trap(marker))
    start = time.monotonic()
    exc = _connect("target")
    seconds = time.monotonic() - start
    record.seen(exc or "connected")
    record.note(f"{seconds:.2f} s")
    assert isinstance(exc, ConfigError), repr(exc)
    assert seconds < 5
    assert not marker.exists()


def test_bad_line_in_included_file_is_fatal_even_in_a_non_matching_block(ssh_home, marker,
                                                                       fault_case):
    record = fault_case("Bad input: config", "bad line in an included file, non-matching "
                        "block", "fatal, citing the included file and line")
    inc = ssh_home.write_file(".ssh/inc.conf", "Host elsewhere\n    Junk yes\n")
    ssh_home.write_config(f"Include {inc}\n" + _trap(marker))
    exc = _connect("target")
    record.seen(exc or "connected")
    assert isinstance(exc, ConfigError), repr(exc)
    assert str(exc).startswith(f"{inc} line 2: ")
    assert not marker.exists()


def test_host_block_in_include_does_not_leak(ssh_home, fault_case):
    record = fault_case("Bad input: config", "Host/Match inside an included file",
                        "no leak into the parent")
    inc = ssh_home.write_file(".ssh/inc.conf", "Host other\n    Port 2299\n")
    path = ssh_home.write_config(f"Host target\n    Include {inc}\n    User leaky\n")
    hc = config.resolve("target", config_files=[str(path)])
    record.seen(f"port {hc.port}, user {hc.user}")
    assert hc.port == 22
    assert hc.user == "leaky"  # the parent's Host block continues after the Include


def test_pathological_host_pattern_is_linear(ssh_home, fault_case):
    record = fault_case("Bad input: config", "Host *a*a*a...*b against a 4096-char name",
                        "linear time (< 1 s)")
    pattern = "*a" * 200 + "*b"
    path = ssh_home.write_config(f"Host {pattern}\n    Port 2203\n")
    start = time.monotonic()
    hc = config.resolve("a" * 4096, config_files=[str(path)])
    seconds = time.monotonic() - start
    record.note(f"{seconds:.3f} s")
    assert hc.port == 22
    assert seconds < 1.0


@pytest.mark.parametrize(("case", "text"), [
    ("CRLF", "Host target\r\n    Port 2204\r\n"),
    ("tabs", "Host\ttarget\n\tPort\t2204\n"),
    ("Key=Value", "Host=target\n    Port=2204\n"),
    ("Key = Value", "Host = target\n    Port = 2204\n"),
])
def test_line_syntax_variants_parse(ssh_home, fault_case, case, text):
    record = fault_case("Bad input: config", f"{case}", "parsed like OpenSSH")
    path = ssh_home.write_config(text)
    hc = config.resolve("target", config_files=[str(path)])
    record.seen(f"port {hc.port}")
    assert hc.port == 2204


@pytest.mark.parametrize(("case", "text", "port"), [
    ("Match Host x (case-insensitive criterion)", "Match Host target\n    Port 2205\n", 2205),
    ("Match host=x", "Match host=target\n    Port 2206\n", 2206),
    ("Match final all", "Match final all\n    Port 2207\n", 2207),
])
def test_match_variants(ssh_home, fault_case, case, text, port):
    record = fault_case("Bad input: config", case, "accepted")
    path = ssh_home.write_config(text)
    hc = config.resolve("target", config_files=[str(path)])
    record.seen(f"port {hc.port}")
    assert hc.port == port


@pytest.mark.parametrize(("case", "text", "expect"), [
    ("ProxyCommand before ProxyJump", "Host target\n    ProxyCommand nc %h %p\n"
     "    ProxyJump j\n", "command"),
    ("ProxyJump before ProxyCommand", "Host target\n    ProxyJump j\n"
     "    ProxyCommand nc %h %p\n", "jump"),
    ("ProxyCommand none masks Host *", "Host target\n    ProxyCommand none\n"
     "Host *\n    ProxyCommand nc %h %p\n    ProxyJump j\n", None),
    ("ProxyJump none masks Host * ProxyJump", "Host target\n    ProxyJump none\n"
     "Host *\n    ProxyJump j\n", None),
    ("ProxyJump none quirk: a later ProxyCommand still applies", "Host target\n"
     "    ProxyJump none\nHost *\n    ProxyCommand nc %h %p\n", "command"),
])
def test_first_of_proxyjump_and_proxycommand_wins(ssh_home, fault_case, case, text, expect):
    record = fault_case("Bad input: config", case, "as OpenSSH 9.2 (first wins)")
    path = ssh_home.write_config(text)
    hc = config.resolve("target", config_files=[str(path)])
    got = "command" if hc.proxy_command else "jump" if hc.proxy_jump else None
    record.seen(f"{got or 'direct'}")
    assert got == expect


def test_group_writable_config_is_refused(ssh_home, marker, fault_case):
    record = fault_case("Bad input: config", "config writable by others",
                        "'Bad owner or permissions', nothing runs")
    path = ssh_home.write_config(_trap(marker))
    path.chmod(0o664)
    exc = _connect("target")
    record.seen(exc or "connected")
    assert isinstance(exc, ConfigError), repr(exc)
    assert "Bad owner or permissions" in str(exc)
    assert not marker.exists()


def test_hanging_match_exec_is_bounded(ssh_home, marker, fault_case):
    record = fault_case("Bad input: config", "Match exec that hangs (sleep 60)",
                        "bounded (10 s per command), a ConfigError; nothing else runs")
    path = ssh_home.write_config("Match exec \"sleep 60\"\n    Port 2208\n" + _trap(marker))
    start = time.monotonic()
    exc = _connect("target")
    seconds = time.monotonic() - start
    record.seen(exc or "connected")
    record.note(f"{seconds:.1f} s")
    assert isinstance(exc, ConfigError), repr(exc)
    assert str(exc).startswith(f"{path} line 1"), str(exc)
    assert seconds < 15
    assert not marker.exists()


# -- 3.2 chains --------------------------------------------------------------------------------


def _plan(ssh_home, text: str, host: str) -> _route.Route:
    path = ssh_home.write_config(text)
    return _route.plan(config.resolve(host, config_files=[str(path)]), [str(path)])


@pytest.mark.parametrize(("case", "text", "host"), [
    ("Host a + ProxyJump a", "Host a\n    ProxyJump a\n", "a"),
    ("Host b / HostName realb / ProxyJump realb", "Host b\n    HostName realb\n"
     "    ProxyJump realb\n", "b"),
    ("A -> B -> A", "Host a\n    ProxyJump b\nHost b\n    ProxyJump a\n", "a"),
    ("A -> B -> A via ssh -W", "Host a\n    ProxyCommand ssh -W %h:%p b\n"
     "Host b\n    ProxyCommand ssh b2 nc %h %p\nHost b2\n    ProxyJump a\n", "a"),
])
def test_loops_are_refused_naming_the_cycle(ssh_home, marker, fault_case, case, text, host):
    record = fault_case("Bad input: chains", f"loop: {case}", "ChainError 'jumphost loop via "
                        "X' naming the cycle, before connecting")
    ssh_home.write_config(text + _trap(marker))
    exc = _connect(host)
    record.seen(exc or "connected")
    assert isinstance(exc, ChainError), repr(exc)
    assert "loop via" in str(exc)
    assert not marker.exists()


def test_host_matches_the_original_name_not_the_hostname(ssh_home, fault_case):
    record = fault_case("Bad input: chains", "Host 10.1.1.* matching a hop's HostName",
                        "no jump (libssh infinite_loop fuzz case)")
    route = _plan(ssh_home, "Host 10.1.1.*\n    ProxyJump ssh-host\n"
                  "Host ssh-host\n    HostName 10.1.1.1\n", "ssh-host")
    record.seen(route.describe())
    assert len(route.hops) == 1 and isinstance(route.hops[0].via, Tcp)


@pytest.mark.parametrize(("case", "command"), [
    ("pipe after the ssh hop", "ssh gw nc %h %p | cat"),
    ("unknown ssh flag", "ssh -Z gw nc %h %p"),
    ("ssh -o with an option paraproxy does not model", "ssh -o RemoteCommand=x -W %h:%p gw"),
    ("compound command", "ssh gw nc %h %p; echo done"),
    ("redirect", "ssh gw nc %h %p 2>/dev/null"),
    ("command substitution", "ssh $(echo gw) nc %h %p"),
])
def test_unrecognised_ssh_shapes_run_as_real_proxycommands(ssh_home, fault_case, case, command):
    record = fault_case("Bad input: chains", f"ProxyCommand not exactly an ssh hop: {case}",
                        "runs as a real ProxyCommand, never a lossy in-process translation")
    route = _plan(ssh_home, f"Host target\n    ProxyCommand {command}\n", "target")
    via = route.hops[0].via
    record.seen(f"{route.describe()} ({getattr(via, 'why', '')})")
    assert len(route.hops) == 1 and isinstance(via, ProxyCommand), route.describe()


def test_recognised_shapes_are_in_process(ssh_home, fault_case):
    record = fault_case("Bad input: chains", "ProxyCommand ssh -W %h:%p hop / ssh hop nc %h %p",
                        "in-process hop")
    route = _plan(ssh_home, "Host target\n    ProxyCommand ssh -W %h:%p gw\n", "target")
    record.seen(route.describe())
    assert [h.config.host for h in route.hops] == ["gw", "target"]
    assert isinstance(route.hops[1].via, Forward)


def test_malformed_jump_from_ssh_command_line_in_proxycommand(ssh_home, marker, fault_case):
    record = fault_case("Bad input: chains", "ProxyCommand ssh -J 'bad;name' -W %h:%p gw",
                        "an error or a real command; nothing injected runs")
    ssh_home.write_config(f"Host target\n    ProxyCommand ssh -J 'x;touch {marker}' -W %h:%p gw\n"
                          + _trap(marker))
    exc = _connect("target", timeout=5)
    record.seen(exc or "connected")
    assert isinstance(exc, (ParaproxyError, OSError)), repr(exc)
    assert not marker.exists()


# -- 3.4 names from the caller -----------------------------------------------------------------

HOSTNAMES = [
    "a;id", "a`id`", "a$(id)", "a|b", "a&b", "a b", "-oProxyCommand=x", "a\nb", "a\x07b",
    "host,evil", "x'$(id)'y", "", "`", "{", "&", "|", '"', " ", '*the+giant&"rooks".c0m',
    "--.--", "a\tb", "a\rb", "a\x00b", "a<b", "a>b", "a(b)", "a\\b",
]  # fmt: skip
USERNAMES = [
    "a;id", "a`id`", "a$(id)", "a|b", "a&b", "-oProxyCommand=x", "x\nid", "x\n$(id)",
    "alice&bob", "backslash\\", " -", "me and -", "los -santos", "- who?", "",
    "x'$(id)'y", "a\x07b", "a\x00b", "$USER",
]  # fmt: skip


def _inject(kind: str, value: str, marker: Path) -> str:
    """Make the injection vector create ``marker`` if a shell ever ran it."""
    return value.replace("id", f"touch {marker}") if "id" in value else value


@pytest.mark.parametrize("name", HOSTNAMES, ids=[repr(n) for n in HOSTNAMES])
def test_hostile_hostnames_are_refused_and_nothing_runs(ssh_home, marker, fault_case, name):
    record = fault_case("Bad input: names", f"hostname {name!r}", "InvalidNameError before "
                        "any expansion; nothing runs")
    ssh_home.write_config(
        f"Match exec \"touch {marker}\"\n    Port 2\n"
        f"Host *\n    ProxyCommand touch {marker}; nc %h %p\n")
    value = _inject("hostname", name, marker)
    exc = _connect(value, username="u")
    record.seen(exc or "connected")
    assert isinstance(exc, InvalidNameError), repr(exc)
    assert exc.kind == "hostname"
    assert not marker.exists()


@pytest.mark.parametrize("name", USERNAMES, ids=[repr(n) for n in USERNAMES])
def test_hostile_usernames_are_refused_and_nothing_runs(ssh_home, marker, fault_case, name):
    record = fault_case("Bad input: names", f"username {name!r}", "InvalidNameError before "
                        "any expansion (%r, %u, Match exec); nothing runs")
    ssh_home.write_config(
        f"Match exec \"touch {marker}; echo %r\"\n    Port 2\n"
        f"Host *\n    ProxyCommand touch {marker}; nc %h %p %r\n")
    value = _inject("username", name, marker)
    exc = _connect("host", username=value)
    record.seen(exc or "connected")
    assert isinstance(exc, InvalidNameError), repr(exc)
    assert exc.kind in ("user", "username"), exc.kind
    assert not marker.exists()


@pytest.mark.parametrize("port", ["22; touch MARKER", "22 ", 0, 65536, -1, 2.5])
def test_bad_ports_from_the_caller(ssh_home, marker, fault_case, port):
    record = fault_case("Bad input: names", f"port {port!r}", "an error before anything runs")
    if isinstance(port, str):
        port = port.replace("MARKER", str(marker))
    ssh_home.write_config(f"Host *\n    ProxyCommand touch {marker}; nc %h %p\n")
    exc = _connect("host", username="u", port=port)
    record.seen(exc or "connected")
    assert exc is not None and not isinstance(exc, (AssertionError, TypeError)), repr(exc)
    assert not marker.exists()
