"""Caller-name validation (REFERENCE 1.9, 3.4) and single-pass token expansion (1.5)."""

from __future__ import annotations

import pytest

from paraproxy._tokens import (
    TOKENS_BY_KEYWORD,
    check_caller_names,
    expand_env,
    expand_tokens,
    valid_hostname,
    valid_ruser,
)
from paraproxy.errors import ConfigError, InvalidNameError

GOOD_HOSTS = [
    "duckduckgo.com", "Some-Thing.com", "localhost", "a", "a-0.b-b", "libssh.",
    "x" * 63 + ".com", "xn--bcher-kva.tld", "10.0.0.1", "::1", "fe80::1%eth0", "host_name",
    "[web]", "web*",
]  # fmt: skip
BAD_HOSTS = [
    "", "a;id", "a`id`", "a$(id)", "a|b", "a&b", "a b", "-oProxyCommand=x", "a\nb", "a\x07b",
    "host,evil", "x'$(id)'y", '"', " ", "a\\b", "a<b", "a>b", "a(b", "a{b}", "a\tb",
    "a\x7fb", "a\x85b",
]  # fmt: skip
GOOD_USERS = ["username", "Alice and Bob", "n4me?", "user@realm", "first.last", "ünïcode"]
BAD_USERS = [
    "", "alice&bob", "backslash\\", " -", "me and -", "los -santos", "- who?", "a;id",
    "a`id`", "a$(id)", "a|b", "a\nb", "a\rb", "a\x00b", "$USER", "back\\slash", "a'b",
    'a"b', "a(b)", "-l",
]  # fmt: skip


@pytest.mark.parametrize("name", GOOD_HOSTS)
def test_good_hostnames(name: str) -> None:
    """Ordinary names, addresses and even glob characters pass (OpenSSH rules)."""
    assert valid_hostname(name)


@pytest.mark.parametrize("name", BAD_HOSTS)
def test_bad_hostnames(name: str) -> None:
    """Shell metacharacters, whitespace, controls, ',' and a leading '-' are refused."""
    assert not valid_hostname(name)


@pytest.mark.parametrize("name", GOOD_USERS)
def test_good_users(name: str) -> None:
    """Spaces and '?' are fine in user names."""
    assert valid_ruser(name)


@pytest.mark.parametrize("name", BAD_USERS)
def test_bad_users(name: str) -> None:
    """Metacharacters, controls, ' -', a trailing '\\' and (10.6) '$' or any '\\' are refused."""
    assert not valid_ruser(name)


def test_check_caller_names_raises_with_kind() -> None:
    """The error says which name was refused."""
    with pytest.raises(InvalidNameError) as info:
        check_caller_names("a;b", None)
    assert info.value.kind == "hostname"
    with pytest.raises(InvalidNameError) as info:
        check_caller_names("ok", "bad\nuser")
    assert info.value.kind == "user"
    check_caller_names("ok", None)
    check_caller_names("ok", "fine")


VALUES = {"h": "real5", "p": "2200", "r": "alice", "n": "t5", "k": "t5", "u": "me"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('echo "h=%h p=%p r=%r n=%n k=%k pct=%%"', 'echo "h=real5 p=2200 r=alice n=t5 k=t5 pct=%"'),
        ("%%h", "%h"),
        ("%%%h", "%real5"),
        ("no tokens", "no tokens"),
        ("${HOME} ~", "${HOME} ~"),  # not in ProxyCommand
    ],
)
def test_expand_proxycommand(text: str, expected: str) -> None:
    """ProxyCommand tokens expand in one pass, %% is a literal %."""
    got = expand_tokens(text, VALUES, TOKENS_BY_KEYWORD["proxycommand"], keyword="proxycommand")
    assert got == expected


def test_single_pass_never_reexpands() -> None:
    """A substituted value containing %h is not expanded again."""
    values = dict(VALUES, r="%h")
    assert expand_tokens("%r", values, "hr", keyword="proxycommand") == "%h"


@pytest.mark.parametrize(
    ("text", "keyword", "message"),
    [
        ("nc %u", "proxycommand", "proxycommand: unknown key %u"),
        ("nc %x", "proxycommand", "proxycommand: unknown key %x"),
        ("nc %", "proxycommand", "proxycommand: invalid format"),
        ("%p", "hostname", "hostname: unknown key %p"),
    ],
)
def test_expand_errors(text: str, keyword: str, message: str) -> None:
    """Unknown or disallowed tokens and a trailing % are errors."""
    with pytest.raises(ConfigError) as info:
        expand_tokens(text, VALUES, TOKENS_BY_KEYWORD[keyword], keyword=keyword)
    assert str(info.value) == message


def test_expand_error_cites_file_and_line() -> None:
    """With a path and line the error reads like OpenSSH's."""
    with pytest.raises(ConfigError) as info:
        expand_tokens("%x", {}, "", keyword="proxycommand", path="/cfg", line=3)
    assert str(info.value) == "/cfg line 3: proxycommand: unknown key %x"


def test_expand_env() -> None:
    """${VAR} expands; an unset one, an unclosed one or an empty name is an error."""
    env = {"A": "x%hy", "B": "2"}
    assert expand_env("${A}/${B}", env, keyword="identityfile") == "x%hy/2"
    for bad in ("${NOPE}", "${A", "${}"):
        with pytest.raises(ConfigError):
            expand_env(bad, env, keyword="identityfile")


def test_env_and_tokens_in_one_pass() -> None:
    """An environment value is not token-expanded afterwards."""
    got = expand_tokens("${A}-%h", VALUES, "h", keyword="identityfile", environ={"A": "%p"})
    assert got == "%p-real5"
