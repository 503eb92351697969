"""Evaluation of ``Match`` lines (``readconf.c:match_cfg_line``).

Criteria are case-insensitive; ``all``, ``canonical``, ``final``, ``exec``,
``host``, ``originalhost``, ``user``, ``localuser`` (OpenSSH 9.2),
``localnetwork`` and ``tagged`` (9.4) and ``command``, ``sessiontype``,
``version`` (10.0) are known; anything else is an error, never a match.
``criterion=value`` is accepted, as OpenSSH 9.2 and 10.0+ do.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

from paraproxy._pattern import match_hostname, match_pattern_list
from paraproxy._tokens import TOKENS_BY_KEYWORD, expand_tokens
from paraproxy.errors import ConfigError

__all__ = ["MatchContext", "evaluate_match", "local_addresses"]

logger = logging.getLogger(__name__)

_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
_Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

#: What ``Match version`` compares with: the newest OpenSSH whose config syntax paraproxy reads.
EMULATED_VERSION = "OpenSSH_10.5p1"
_NO_ARGUMENT = ("canonical", "final")
_INLINE = (
    "host", "originalhost", "user", "localuser", "localnetwork", "version", "tagged",
    "command", "exec",
)  # fmt: skip
_WITH_ARGUMENT = (
    "host", "originalhost", "user", "localuser", "exec",
    "localnetwork", "tagged", "command", "sessiontype", "version",
)  # fmt: skip


@dataclass
class MatchContext:
    """What a Match line is evaluated against, as known at that point of the parse."""

    host: str  # HostName-substituted name (first pass) or the final hostname
    original_host: str
    user: str  # remote user known so far (command line, config, else local)
    local_user: str
    final: bool
    tokens: Mapping[str, str]  # token values for Match exec
    tag: str = ""
    exec_timeout: float = 10.0
    nevermatch: bool = False
    session_type: str = "shell"  # SessionType so far, else "exec"/"shell" by RemoteCommand
    want_final: bool = field(default=False)


def _criteria(args: Sequence[str]) -> Iterator[tuple[str, bool, str, str | None]]:
    """Yield (token as written, negated, lowercase name, inline ``=value``) per criterion."""
    for arg in args:
        negated = arg.startswith("!")
        name = arg[1:] if negated else arg
        inline: str | None = None
        # Only these take key=value (readconf.c keeps this list by hand).
        key, sep, value = name.partition("=")
        if sep and key.lower() in _INLINE:
            name, inline = key, value
        yield arg, negated, name.lower(), inline


def _error(reason: str, where: tuple[str, int]) -> ConfigError:
    """Build the ``Bad Match condition`` error OpenSSH reports, with the detail."""
    return ConfigError(f"{reason}; Bad Match condition", *where)


def evaluate_match(args: Sequence[str], ctx: MatchContext, where: tuple[str, int]) -> bool:
    """Evaluate a Match line's arguments; sets ``ctx.want_final`` on a non-negated ``final``.

    :raises ConfigError: unknown criterion, missing argument, misplaced ``all``,
        a bad ``localnetwork`` list, or a failing ``exec``.
    """
    result = True
    attributes = 0
    items = list(_criteria(args))
    index = 0
    while index < len(items):
        written, negated, name, inline = items[index]
        index += 1
        if name == "all":
            if attributes > 1 or index < len(items):
                raise _error(f"'{written}' cannot be combined with other Match attributes", where)
            return result and not negated
        attributes += 1
        if name in _NO_ARGUMENT:
            ctx.want_final = ctx.want_final or (name == "final" and not negated)
            if ctx.final == negated:
                result = False
            continue
        if inline is None:
            if index >= len(items):
                raise _error(f"missing argument for Match '{written}'", where)
            inline = items[index][0]
            index += 1
        if inline == "" and name not in ("tagged", "command"):
            raise _error(f"Missing Match criteria for {name}", where)
        if name not in _WITH_ARGUMENT:
            raise _error(f"Unsupported Match attribute {name}", where)
        if name == "exec":
            if _match_exec(inline, ctx, where, skip=not result) == negated:
                result = False
        elif _criterion(name, inline, ctx, where) == negated:
            result = False
    if attributes == 0:
        raise _error("One or more attributes required for Match", where)
    return result


def _empty_or_list(criteria: str, arg: str) -> bool:
    """``tagged``/``command``: an empty value matches only the empty argument."""
    return arg == "" if criteria == "" else match_pattern_list(criteria, arg) == 1


def _criterion(name: str, arg: str, ctx: MatchContext, where: tuple[str, int]) -> bool:
    """Evaluate one criterion (not exec) with its argument, before negation."""
    if name == "host":
        return match_hostname(ctx.host, arg) == 1
    if name == "originalhost":
        return match_hostname(ctx.original_host, arg) == 1
    if name == "user":
        return match_pattern_list(ctx.user, arg) == 1
    if name == "localuser":
        return match_pattern_list(ctx.local_user, arg) == 1
    if name == "tagged":
        return _empty_or_list(ctx.tag, arg)
    if name == "version":
        return match_pattern_list(EMULATED_VERSION, arg) == 1
    if name == "localnetwork":
        return _match_localnetwork(arg, where)
    if name == "sessiontype":
        return match_pattern_list(ctx.session_type, arg) == 1
    # command: connect() has no remote command, so it is the empty string.
    return _empty_or_list("", arg)


def _parse_cidr_list(text: str, where: tuple[str, int]) -> list[_Network]:
    """Parse a comma-separated CIDR list as ``addr_match_cidr_list`` accepts it."""
    networks = []
    for item in text.split(","):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise _error(f'Invalid network list entry "{item}"', where) from None
    return networks


def _match_localnetwork(arg: str, where: tuple[str, int]) -> bool:
    """Tell whether an address of an up local interface lies in one of the CIDRs."""
    networks = _parse_cidr_list(arg, where)
    return any(addr in net for addr in local_addresses() for net in networks if
               addr.version == net.version)  # fmt: skip


def _ipv4_from_fib_trie(path: str = "/proc/net/fib_trie") -> Iterator[_Address]:
    """Yield the host's IPv4 addresses: ``/32 host LOCAL`` leaves of the kernel FIB."""
    try:
        with open(path, encoding="ascii", errors="replace") as trie:
            lines = trie.read().splitlines()
    except OSError:
        return
    for previous, current in zip(lines, lines[1:]):
        if current.strip() == "/32 host LOCAL" and "|--" in previous:
            yield ipaddress.ip_address(previous.split("|--")[1].strip())


def _ipv6_from_proc(path: str = "/proc/net/if_inet6") -> Iterator[_Address]:
    """Yield the host's IPv6 addresses from ``/proc/net/if_inet6``."""
    try:
        with open(path, encoding="ascii", errors="replace") as table:
            rows = table.read().splitlines()
    except OSError:
        return
    for row in rows:
        hexaddr = row.split()[0] if row.split() else ""
        if len(hexaddr) == 32:
            yield ipaddress.IPv6Address(int(hexaddr, 16))


def local_addresses() -> list[_Address]:
    """Return the addresses of the local interfaces (Linux /proc; elsewhere none)."""
    return sorted(set(_ipv4_from_fib_trie())) + sorted(set(_ipv6_from_proc()))


def _shell() -> str:
    """Return ``$SHELL``, or /bin/sh when it is unset or empty (as OpenSSH)."""
    return os.environ.get("SHELL") or "/bin/sh"


def _match_exec(arg: str, ctx: MatchContext, where: tuple[str, int], *, skip: bool) -> bool:
    """Expand and run a Match exec command through the shell; exit 0 is a match."""
    command = expand_tokens(
        arg, ctx.tokens, TOKENS_BY_KEYWORD["match exec"], keyword="Match exec",
        path=where[0], line=where[1],
    )  # fmt: skip
    if skip:
        # OpenSSH expands, then skips exec once an earlier criterion failed.
        logger.debug("%s line %d: skipped exec %r", *where, command)
        return False
    if ctx.nevermatch:
        # A block that can never apply: do not run commands for nothing.
        logger.debug("%s line %d: not running exec in a never-matching include", *where)
        return False
    logger.debug("%s line %d: running Match exec %r", *where, command)
    try:
        # stdin/stdout to /dev/null and stderr inherited, as execute_in_shell does.
        proc = subprocess.Popen(
            [_shell(), "-c", command], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"match exec '{command}' error: {exc.strerror}", *where) from None
    try:
        return proc.wait(timeout=ctx.exec_timeout) == 0
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ConfigError(
            f"match exec '{command}' timed out after {ctx.exec_timeout:g} s", *where
        ) from None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a timed-out exec's whole process group and reap it."""
    if proc.pid > 0:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()
