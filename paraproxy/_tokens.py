"""Caller-name validation and single-pass ``%`` token / ``${ENV}`` expansion.

The name rules are OpenSSH HEAD's ``ssh_valid_hostname``/``ssh_valid_ruser``
(``readconf.c``), plus the 10.6 ban on ``$`` and any ``\\`` in user names.
Expansion follows ``misc.c:vdollar_percent_expand``: one left-to-right scan,
substituted text is never looked at again, ``%%`` is a literal ``%``, an
unknown token or a trailing ``%`` is an error, and so is an unset ``${VAR}``.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Mapping

from paraproxy.errors import ConfigError, InvalidNameError

__all__ = [
    "COMMON_TOKENS",
    "ENV_KEYWORDS",
    "TOKENS_BY_KEYWORD",
    "UnsetVariableError",
    "check_caller_names",
    "connection_hash",
    "expand_env",
    "expand_tokens",
    "valid_hostname",
    "valid_ruser",
]

logger = logging.getLogger(__name__)

# Shell metacharacters banned from names the caller gives (OpenSSH 9.6+,
# commit 7ef3787c8; ',' since 10.0, commit 487cf4c18).
_HOST_BANNED = frozenset("'`\"$\\;&<>|(){},")
# ssh_valid_ruser's list, plus '$' and '\' anywhere (OpenSSH 10.6).
_USER_BANNED = frozenset("'`\";&<>|(){}$\\")

#: ``%C %d %h %i %j %k %L %l %n %p %r %u`` (ssh_config(5) TOKENS).
COMMON_TOKENS = "CdhijkLlnpru"

#: Allowed token letters per lowercase keyword; ``%%`` is always allowed.
TOKENS_BY_KEYWORD: Mapping[str, str] = {
    # sshconnect.c:expand_proxy_command also expands %k, beyond the man page.
    "proxycommand": "hknpr",
    "proxyjump": "hnpr",
    "hostname": "h",
    # OpenSSH 10.0+: the common set minus %r and %C.
    "user": "dhijkLlnpu",
    "certificatefile": COMMON_TOKENS,
    "controlpath": COMMON_TOKENS,
    "identityagent": COMMON_TOKENS,
    "identityfile": COMMON_TOKENS,
    "include": COMMON_TOKENS,
    "knownhostscommand": COMMON_TOKENS,
    "localcommand": COMMON_TOKENS,
    "localforward": COMMON_TOKENS,
    "remotecommand": COMMON_TOKENS,
    "remoteforward": COMMON_TOKENS,
    "revokedhostkeys": COMMON_TOKENS,
    "userknownhostsfile": COMMON_TOKENS,
    "versionaddendum": COMMON_TOKENS,
    "match exec": COMMON_TOKENS,
}

#: Keywords whose values get ``${VAR}`` expansion (ssh_config(5) ENVIRONMENT VARIABLES).
ENV_KEYWORDS = frozenset(
    {
        "certificatefile",
        "controlpath",
        "identityagent",
        "identityfile",
        "include",
        "knownhostscommand",
        "localforward",
        "remoteforward",
        "user",
        "userknownhostsfile",
    }
)


class UnsetVariableError(ConfigError):
    """A ``${VAR}`` whose variable is not set (some callers skip the value instead)."""


def connection_hash(values: Mapping[str, str]) -> str:
    """``%C``: hex SHA-1 of ``%l%h%p%r%j``, as OpenSSH 9.6+ computes it."""
    text = values["l"] + values["h"] + values["p"] + values["r"] + values["j"]
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def _is_control(char: str) -> bool:
    """Tell whether ``char`` is a control character (C0, DEL or C1)."""
    return unicodedata.category(char) == "Cc"


def valid_hostname(name: str) -> bool:
    """Check a caller-supplied host name against OpenSSH HEAD's ``ssh_valid_hostname``.

    Stricter than OpenSSH in one respect: the empty name is refused.
    """
    if not name or name[0] == "-":
        return False
    return not any(c in _HOST_BANNED or c.isspace() or _is_control(c) for c in name)


def valid_ruser(name: str) -> bool:
    """Check a caller-supplied user name against ``ssh_valid_ruser`` with the 10.6 rules."""
    if not name or name[0] == "-":
        return False
    for index, char in enumerate(name):
        if char in _USER_BANNED or _is_control(char):
            return False
        # Whitespace followed by '-' could start an option in a shell command.
        if char.isspace() and name[index + 1 : index + 2] == "-":
            return False
    return True


def check_caller_names(hostname: str, username: str | None) -> None:
    """Refuse a host or user name from the caller that could inject shell or options."""
    if not valid_hostname(hostname):
        raise InvalidNameError("hostname", hostname)
    if username is not None and not valid_ruser(username):
        raise InvalidNameError("user", username)


def _expand(
    text: str,
    *,
    values: Mapping[str, str] | None,
    allowed: str,
    environ: Mapping[str, str] | None,
    keyword: str,
    where: tuple[str | None, int | None],
) -> str:
    """Scan ``text`` once, replacing ``${VAR}`` (if environ) and ``%x`` (if values)."""
    out: list[str] = []
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if environ is not None and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise ConfigError(f"{keyword}: environment variable missing closing '}}'", *where)
            name = text[i + 2 : end]
            if not name:
                raise ConfigError(f"{keyword}: zero-length environment variable", *where)
            if name not in environ:
                raise UnsetVariableError(f"{keyword}: env var ${{{name}}} has no value", *where)
            out.append(environ[name])
            i = end + 1
            continue
        if values is None or char != "%":
            out.append(char)
            i += 1
            continue
        if i + 1 >= size:
            raise ConfigError(f"{keyword}: invalid format", *where)
        key = text[i + 1]
        if key == "%":
            out.append("%")
        elif key in allowed and key in values:
            out.append(values[key])
        else:
            raise ConfigError(f"{keyword}: unknown key %{key}", *where)
        i += 2
    return "".join(out)


def expand_tokens(
    text: str,
    values: Mapping[str, str],
    allowed: str,
    *,
    keyword: str,
    environ: Mapping[str, str] | None = None,
    path: str | None = None,
    line: int | None = None,
) -> str:
    """Expand ``%`` tokens in one pass; with ``environ``, ``${VAR}`` in the same pass.

    :raises ConfigError: ``KEYWORD: unknown key %x``, ``KEYWORD: invalid format``
        for a trailing ``%``, or an unset variable; cites ``path``/``line`` if given.
    """
    return _expand(
        text, values=values, allowed=allowed, environ=environ, keyword=keyword, where=(path, line)
    )


def expand_env(
    text: str,
    environ: Mapping[str, str],
    *,
    keyword: str,
    path: str | None = None,
    line: int | None = None,
) -> str:
    """Expand ``${VAR}`` references only; an unset variable is a ConfigError."""
    return _expand(
        text, values=None, allowed="", environ=environ, keyword=keyword, where=(path, line)
    )
