"""Tests for paraproxy._jumpspec: the ProxyJump grammar, checked against ``ssh -G``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from paraproxy._jumpspec import JumpHost, parse_jump_element, parse_proxy_jump

J = JumpHost

# (value, expected hops). Every row is also run through the real ssh -G below.
ACCEPTED: list[tuple[str, tuple[JumpHost, ...]]] = [
    # REFERENCE 1.7 table and regress/proxyjump.sh
    ("jump1", (J("jump1"),)),
    ("user@jump1", (J("jump1", "user"),)),
    ("jump1:2222", (J("jump1", None, 2222),)),
    (
        "user1@jump1:2221,user2@jump2:2222",
        (J("jump1", "user1", 2221), J("jump2", "user2", 2222)),
    ),
    ("ssh://u@j:2022", (J("j", "u", 2022),)),
    ("[2620:52:0::fed]:2222", (J("2620:52:0::fed", None, 2222),)),
    ("[2620:52:0::fed]", (J("2620:52:0::fed"),)),
    ("user@principal.com@jumpbox:22", (J("jumpbox", "user@principal.com", 22),)),
    ("jumpbox:", (J("jumpbox"),)),
    # hop order is left to right
    ("a,b,c", (J("a"), J("b"), J("c"))),
    ("root@gatekeeper:22,yuka", (J("gatekeeper", "root", 22), J("yuka"))),
    # comments and surrounding blanks; ssh uses only the first word
    ("a # comment", (J("a"),)),
    ("a#b", (J("a"),)),
    ("a:22 # c", (J("a", None, 22),)),
    ("  a  ", (J("a"),)),
    ("a\t", (J("a"),)),
    ("a b", (J("a"),)),
    ("a,b c", (J("a"), J("b"))),
    ("ssh://u@h:22#x", (J("h", "u", 22),)),
    # ports as strtonum reads them
    ("a:+22", (J("a", None, 22),)),
    ("a:022", (J("a", None, 22),)),
    ("a:00000000022", (J("a", None, 22),)),
    ("a:65535", (J("a", None, 65535),)),
    ("a:1", (J("a", None, 1),)),
    # brackets
    ("[a]", (J("a"),)),
    ("[a]:22", (J("a", None, 22),)),
    ("[::1]:", (J("::1"),)),
    ("[::]", (J("::"),)),
    ("u@[::1]:22", (J("::1", "u", 22),)),
    ("[fe80::1%eth0]", (J("fe80::1%eth0"),)),
    ("[a:22]", (J("a:22"),)),
    ("[a/b]:2", (J("a/b", None, 2),)),
    ("x[y]", (J("x[y]"),)),
    ("a]", (J("a]"),)),
    # config values are not name-validated by OpenSSH 9.2 (trusted file)
    ("u;x@h;y", (J("h;y", "u;x"),)),
    ("-oProxyCommand=id", (J("-oProxyCommand=id"),)),
    ("x/y@h", (J("h", "x/y"),)),
    ("x%2fy@h", (J("h", "x%2fy"),)),
    ("a=b", (J("a=b"),)),
    ("-", (J("-"),)),
    ("SSH://u@h", (J("h", "SSH://u"),)),  # the scheme is case-sensitive
    ("none,a", (J("none"), J("a"))),
    ("a,none", (J("a"), J("none"))),
    ("none#c", (J("none"),)),  # "none" is matched before the comment is cut
    ("%h", (J("%h"),)),
    ("%h:22", (J("%h", None, 22),)),
    ("a,%r@%h", (J("a"), J("%h", "%r"))),
    ("é@hé:22", (J("hé", "é", 22),)),
    # ssh:// URIs
    ("ssh://h", (J("h"),)),
    ("ssh://host:", (J("host"),)),
    ("ssh://host/", (J("host"),)),
    ("ssh://h:22/", (J("h", None, 22),)),
    ("ssh://u@h/", (J("h", "u"),)),
    ("ssh://h:022", (J("h", None, 22),)),
    ("ssh://h:+22", (J("h", None, 22),)),
    ("ssh://%41b@c", (J("c", "Ab"),)),
    ("ssh://u%20x@h", (J("h", "u x"),)),
    ("ssh://a+b@h", (J("h", "a b"),)),
    ("ssh://%40@c", (J("c", "@"),)),
    ("ssh://u%2c@h", (J("h", "u,"),)),
    ("ssh://U%3bx@h", (J("h", "U;x"),)),
    ("ssh://u:pw@h", (J("h", "u:pw"),)),
    ("ssh://u;fp=x@h", (J("h", "u"),)),
    ("ssh://u;@h", (J("h", "u"),)),
    ("ssh://u%c3%a9@h", (J("h", "ué"),)),
    ("ssh://h.", (J("h"),)),
    ("ssh://h.x.", (J("h.x"),)),
    ("ssh://h_", (J("h_"),)),
    ("ssh://h-", (J("h-"),)),
    ("ssh://h.-x", (J("h.-x"),)),
    ("ssh://0h", (J("0h"),)),
    ("ssh://1", (J("1"),)),
    ("ssh://1.2.3.4", (J("1.2.3.4"),)),
    ("ssh://Ab", (J("Ab"),)),
    ("ssh://a.b.c:99", (J("a.b.c", None, 99),)),
    ("ssh://[h]:22", (J("h", None, 22),)),
    ("ssh://u@[h]", (J("h", "u"),)),
    ("ssh://u@h:65535", (J("h", "u", 65535),)),
    ("ssh://a,b", (J("a"), J("b"))),  # commas split before URIs are parsed
]

REJECTED: list[str] = [
    # REFERENCE 1.7 table
    "ssh://u@j:2022/path",
    "jumpbox:22bad22",
    "jumpbox:65536",
    "a,b:0",
    "[::1",
    "[dead::beef]::22",
    "user@:22",
    "@host:22",
    # empty elements and values
    "",
    "   ",
    "a,,b",
    ",a",
    "a,",
    "#x",
    # unbracketed IPv6
    "::1",
    "::1:22",
    "fe80::1",
    "::",
    # ports
    "a:0",
    "a:-1",
    "a:-0",
    "a:+0",
    "a:%p",
    "%r@%h:%p",
    "a:1e2",
    "a:0x10",
    "a:22:33",
    "h:2:",
    "u@h:99999999999999999999",
    "a:b/c",
    "h:2/",
    "h:/",
    # brackets and slashes
    "[::1]x",
    "[a]b:2",
    "[a]:b",
    "[[a]]",
    "[a",
    "[::1]/22",
    "[a]/b",
    "a/22",
    "a/",
    "/a",
    # users
    "u@",
    "u@h@",
    # URIs
    "ssh://",
    "ssh://@host",
    "ssh://u@",
    "ssh://;x@h",
    "ssh://a%00b@c",
    "ssh://%00@h",
    "ssh://u%2@h",
    "ssh://u%zz@h",
    "ssh://u%4@h",
    "ssh://u%41%@h",
    "ssh://%",
    "ssh://[::1]:22",
    "ssh://u@[::1]:22",
    "ssh://::1",
    "ssh://h..x",
    "ssh://h..",
    "ssh://.h",
    "ssh://-x",
    "ssh://_h",
    "ssh://h;x",
    "ssh://u@h?x",
    "ssh://a@b@c",
    "ssh://u@@h",
    "ssh://@@h",
    "ssh://h@",
    "ssh://h%41",
    "ssh://u@%68",
    "ssh://h/x:22",
    "ssh://h/%zz",
    "ssh://h:22/p",
    "ssh://h:22x",
    "ssh://h::22",
    "ssh://h:/p",
    "ssh://h:/",
    "ssh://u@h:0",
    "ssh://u@h:x",
    "ssh:/h",
]

# Deliberately stricter than OpenSSH 9.2 (see the module docstring): ssh accepts these.
STRICTER: list[str] = [
    "a:ssh",
    "a:http",
    "ssh://u@h:ssh",
    "[]:22",
    "[]",
    "a\x01b@h",
    "u@h\x01",
    "ssh://a%0ab@c",
    "ssh://u%0d@h",
    "ssh://u%09@h",
    "ssh://u%1b@h",
    "ssh://u%7f@h",
    "ssh://u%ff@h",
]

NONE_VALUES = ["none", "NONE", "NoNe", "  none  "]
# OpenSSH 9.2 compares the whole rest of the line with "none", so with a comment or
# a second word it jumps through a host called "none"; we take these as "none".
NONE_UNLIKE_SSH = ["none #c", "none x"]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_accepted(value: str, expected: tuple[JumpHost, ...]) -> None:
    assert parse_proxy_jump(value) == expected


@pytest.mark.parametrize("value", REJECTED + STRICTER)
def test_rejected(value: str) -> None:
    with pytest.raises(ValueError, match=r"^Invalid ProxyJump ") as info:
        parse_proxy_jump(value)
    assert str(info.value).startswith(f'Invalid ProxyJump "{value}"')


@pytest.mark.parametrize("value", NONE_VALUES + NONE_UNLIKE_SSH)
def test_none(value: str) -> None:
    assert parse_proxy_jump(value) is None


def test_error_names_the_value_and_the_element() -> None:
    with pytest.raises(ValueError) as info:
        parse_proxy_jump("a,b:0")
    assert str(info.value) == 'Invalid ProxyJump "a,b:0": bad port in "b:0"'
    with pytest.raises(ValueError) as info:
        parse_proxy_jump("good,[::1,other")
    assert str(info.value).startswith('Invalid ProxyJump "good,[::1,other": ')
    assert str(info.value).endswith(' in "[::1"')


def test_error_is_a_plain_value_error() -> None:
    with pytest.raises(ValueError) as info:
        parse_jump_element("ssh://u%zz@h")
    assert type(info.value) is ValueError
    assert str(info.value).startswith('Invalid ProxyJump "ssh://u%zz@h": ')
    assert info.value.__cause__ is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("h", J("h")),
        ("u@h:2", J("h", "u", 2)),
        ("[::1]:2", J("::1", None, 2)),
        ("ssh://u@h:3", J("h", "u", 3)),
        ("h:", J("h")),
    ],
)
def test_parse_jump_element(text: str, expected: JumpHost) -> None:
    assert parse_jump_element(text) == expected


@pytest.mark.parametrize("text", ["", "a,b", "h:0", "[::1", "@h", "none x"])
def test_parse_jump_element_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r'^Invalid ProxyJump "'):
        parse_jump_element(text)


def test_element_none_is_a_host() -> None:
    # Only a whole ProxyJump value means "none"; as an element it is a name.
    assert parse_jump_element("none") == J("none")


@pytest.mark.parametrize(
    ("jump", "text"),
    [
        (J("h"), "h"),
        (J("h", "u"), "u@h"),
        (J("h", None, 22), "h:22"),
        (J("h", "u", 2222), "u@h:2222"),
        (J("::1", None, 22), "[::1]:22"),
        (J("::1", "u"), "u@[::1]"),
        (J("a/b"), "[a/b]"),
        (J("jumpbox", "user@principal.com", 22), "user@principal.com@jumpbox:22"),
    ],
)
def test_str(jump: JumpHost, text: str) -> None:
    assert str(jump) == text
    assert parse_jump_element(text) == jump


def test_frozen_and_defaults() -> None:
    jump = J("h")
    assert jump.user is None
    assert jump.port is None
    with pytest.raises(AttributeError):
        jump.host = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_round_trip(value: str, expected: tuple[JumpHost, ...]) -> None:
    # Each hop formats to an element that parses back to the same hop, when the
    # user has no character that a list or a config word would cut at.
    for hop in expected:
        if hop.user is not None and any(c in hop.user for c in ", \t#"):
            continue
        assert parse_jump_element(str(hop)) == hop


# --- the oracle: OpenSSH's own parser via ssh -G -------------------------------------

SSH = shutil.which("ssh")
needs_ssh = pytest.mark.skipif(SSH is None, reason="OpenSSH client not installed")


def _ssh_g(tmp_path: Path, value: str) -> tuple[int, str]:
    """Run ssh -G on a config file holding the ProxyJump; return (status, value or stderr)."""
    # A config file, not -o: OpenSSH (Debian 9.2 backport, upstream 10.3) also
    # validates names given with -o on the command line, but not those in files,
    # and parse_proxy_jump is fed from files.
    assert SSH is not None
    config = tmp_path / "config"
    config.write_bytes(f"Host somehost\n  ProxyJump {value}\n".encode())
    proc = subprocess.run(
        [SSH, "-G", "-F", str(config), "somehost"],
        capture_output=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        return proc.returncode, proc.stderr.decode("utf-8", "replace")
    for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.startswith("proxyjump "):
            return 0, line[len("proxyjump ") :]
    return 0, ""  # "none": no proxyjump line


def _last_hop_as_ssh_prints_it(value: str, printed: str) -> JumpHost:
    """Cut ssh's print of the value down to its last hop (it keeps the others raw)."""
    word = value.split(maxsplit=1)[0].split("#", maxsplit=1)[0]
    prefix = word.rsplit(",", 1)[0] + "," if "," in word else ""
    assert printed.startswith(prefix)
    last = printed[len(prefix) :]
    # ssh prints [user@]host[:port], bracketing hosts with ':' and IP addresses.
    user, _, rest = last.rpartition("@")
    if rest.startswith("[") and "]" in rest:
        host, _, after = rest[1:].partition("]")
        port = after[1:]
    else:
        match = re.fullmatch(r"(.*?)(?::([0-9]+))?", rest)
        assert match is not None
        host, port = match.group(1), match.group(2) or ""
    return JumpHost(host, user or None, int(port) if port else None)


@needs_ssh
@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_oracle_accepts(tmp_path: Path, value: str, expected: tuple[JumpHost, ...]) -> None:
    status, printed = _ssh_g(tmp_path, value)
    assert status == 0, printed
    # ssh re-prints only the last hop from its parsed fields; compare those.
    assert _last_hop_as_ssh_prints_it(value, printed) == expected[-1]


@needs_ssh
@pytest.mark.parametrize("value", [v for v in REJECTED if v.strip()])
def test_oracle_rejects(tmp_path: Path, value: str) -> None:
    status, message = _ssh_g(tmp_path, value)
    assert status == 255
    assert f'Invalid ProxyJump "{value}"' in message


@needs_ssh
@pytest.mark.parametrize("value", NONE_VALUES)
def test_oracle_none(tmp_path: Path, value: str) -> None:
    assert _ssh_g(tmp_path, value) == (0, "")


@needs_ssh
@pytest.mark.parametrize("value", NONE_UNLIKE_SSH)
def test_oracle_none_quirk(tmp_path: Path, value: str) -> None:
    assert _ssh_g(tmp_path, value) == (0, "none")


@needs_ssh
@pytest.mark.parametrize("value", STRICTER)
def test_oracle_is_more_lenient_on_purpose(tmp_path: Path, value: str) -> None:
    # If this starts failing, OpenSSH got stricter and STRICTER can shrink.
    status, _ = _ssh_g(tmp_path, value)
    assert status == 0


# --- fuzz ---------------------------------------------------------------------------

_ALPHABET = st.sampled_from([*"ab1:[]@,#/%+;. \t-_ssh:/x0", "ssh://", "%41", "%0a", "%00"])


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_fuzz_text(value: str) -> None:
    try:
        result = parse_proxy_jump(value)
    except ValueError as exc:
        assert str(exc).startswith("Invalid ProxyJump")
        return
    assert result is None or (len(result) >= 1 and all(isinstance(h, JumpHost) for h in result))


@settings(max_examples=1000, deadline=None)
@given(st.lists(_ALPHABET, max_size=12).map("".join))
@example("ssh://ssh://@a")  # a user that is the URI scheme itself
def test_fuzz_grammar(value: str) -> None:
    try:
        result = parse_proxy_jump(value)
    except ValueError as exc:
        assert str(exc).startswith(f'Invalid ProxyJump "{value}"')
        return
    for hop in result or ():
        assert hop.host
        assert hop.port is None or 0 < hop.port < 65536
        assert hop.user is None or hop.user
        if hop.user is None or not any(c in hop.user for c in ", \t#"):
            written = str(hop)
            # A user spelled like the URI scheme can only be written as a URI (the user
            # percent-encoded), whose host names are narrower: other such hops have no
            # spelling that parses back.
            if not (hop.user or "").startswith("ssh://") or written.startswith("ssh://ssh%3A"):
                assert parse_jump_element(written) == hop
