"""One pass over the config files: Host/Match blocks, Include, first-value-wins.

:class:`Reader` is the state ``readconf.c`` keeps in its ``Options`` struct
plus the per-file ``activep`` flag.  ``config.resolve`` runs one or two passes
(the second for ``Match final`` / ``CanonicalizeHostname``) with the same
Reader, so values found on the first pass keep winning.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable

from paraproxy._cfgfile import Line, argv_split, read_config
from paraproxy._jumpspec import parse_proxy_jump
from paraproxy._keywords import (
    CHOICES,
    KEYWORDS,
    Kind,
    canonical_keyword,
    check_special,
    parse_port,
    parse_time,
)
from paraproxy._match import MatchContext, evaluate_match
from paraproxy._pattern import host_line_matches, match_pattern, match_pattern_list
from paraproxy._tokens import (
    TOKENS_BY_KEYWORD,
    UnsetVariableError,
    connection_hash,
    expand_tokens,
)
from paraproxy.errors import ConfigError

__all__ = ["COMMAND_LINE", "MAX_DEPTH", "Reader", "Source"]

logger = logging.getLogger(__name__)

COMMAND_LINE = "<command line>"
#: readconf.c READCONF_MAX_DEPTH.
MAX_DEPTH = 16
_SINGLE_ARG = (Kind.FLAG, Kind.STRING, Kind.INT, Kind.PORT, Kind.TIME, Kind.ACCUM, Kind.CHOICE)
_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class Source:
    """Where lines come from and how they are treated (readconf.c's SSHCONF_* flags)."""

    path: str
    user_conf: bool  # relative Include under ~/.ssh, '~' allowed
    nevermatch: bool = False  # included from an inactive block: parse only
    depth: int = 0


@dataclass
class Reader:
    """Accumulates values over files and passes; one Reader per lookup."""

    host_arg: str
    local_user: str
    home: str
    environ: Mapping[str, str]
    token_values: Callable[[], dict[str, str]]  # for Match exec and Include, current state
    exec_timeout: float = 10.0
    final: bool = False
    final_host: str | None = None
    want_final: bool = False
    hostname_locked: bool = False
    values: dict[str, list[str]] = field(default_factory=dict)
    origins: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    jump_host: str | None = None  # ProxyJump as taken ("none" included)

    # -- values ------------------------------------------------------------

    def _set(self, key: str, items: Sequence[str], where: tuple[str, int]) -> None:
        """Store a value first-wins, or append for accumulating keywords."""
        kind = KEYWORDS.get(key)
        if key in self.values and kind not in (Kind.ACCUM, Kind.ACCUM_LIST, Kind.FORWARD):
            return
        if kind in (Kind.ACCUM, Kind.FORWARD):
            # add_identity_file() and friends skip duplicates (second pass included).
            items = [item for item in items if item not in self.values.get(key, ())]
        self.values.setdefault(key, []).extend(items)
        self.origins.setdefault(key, []).extend([where] * len(items))

    def first(self, key: str) -> str | None:
        """Return the first value stored for ``key``, or None."""
        found = self.values.get(key)
        return found[0] if found else None

    # -- files -------------------------------------------------------------

    def read_file(self, source: Source, *, check_perm: bool, active: bool = True) -> bool:
        """Process one file; False if it does not exist."""
        if source.depth > MAX_DEPTH:
            raise ConfigError("Too many recursive configuration includes", source.path)
        lines = read_config(source.path, check_perm=check_perm, regular_only=source.depth > 0)
        if lines is None:
            return False
        logger.debug("reading configuration data %s", source.path)
        state = [active]
        for line in lines:
            if line.keyword:
                self.process(source, line, state)
        return True

    def process(self, source: Source, line: Line, state: list[bool]) -> None:
        """Process one line; ``state[0]`` is the activep flag it may change."""
        where = (source.path, line.number)
        if not line.rest:
            raise ConfigError(f'no argument after keyword "{line.keyword}"', *where)
        if line.args is None:
            raise ConfigError("invalid quotes", *where)
        kind = KEYWORDS.get(line.keyword)
        if kind is None:
            self._unknown(line.keyword, where)
        elif line.keyword == "host":
            state[0] = self._host(source, line.args, where)
        elif line.keyword == "match":
            state[0] = self._match(source, line.args, where)
        elif line.keyword == "include":
            self._include(source, line.args, where, state)
        elif line.keyword == "proxyjump":
            self._proxy_jump(line.rest, where, state[0])
        else:
            self._keyword(line, kind, where, state[0])

    def _unknown(self, keyword: str, where: tuple[str, int]) -> None:
        """Refuse an unknown keyword unless IgnoreUnknown covers it."""
        ignored = self.first("ignoreunknown")
        if ignored is not None and match_pattern_list(keyword, ignored, casefold=True) == 1:
            logger.debug("%s line %d: ignoring unknown option %s", *where, keyword)
            return
        raise ConfigError(f"Bad configuration option: {keyword}", *where)

    # -- block headers -------------------------------------------------------

    def _host(self, source: Source, args: Sequence[str], where: tuple[str, int]) -> bool:
        """Evaluate a Host line against the name (first pass) or final hostname."""
        if source.path == COMMAND_LINE:
            raise ConfigError("Host directive not supported as a command-line option", *where)
        if any(arg == "" for arg in args):
            raise ConfigError("keyword host empty argument", *where)
        if source.nevermatch:
            return False
        target = self.final_host if self.final and self.final_host is not None else self.host_arg
        matched = host_line_matches(target, args)
        if matched is not None:
            logger.debug("%s line %d: applying options for %s", *where, matched)
        return matched is not None

    def _match(self, source: Source, args: Sequence[str], where: tuple[str, int]) -> bool:
        """Evaluate a Match line with what is known at this point."""
        if source.path == COMMAND_LINE:
            raise ConfigError("Match directive not supported as a command-line option", *where)
        ctx = MatchContext(
            host=self._match_host(), original_host=self.host_arg,
            user=self.first("user") or self.local_user, local_user=self.local_user,
            final=self.final, tokens=self._exec_tokens(), tag=self.first("tag") or "",
            exec_timeout=self.exec_timeout, nevermatch=source.nevermatch,
            session_type=self._session_type(),
        )  # fmt: skip
        value = evaluate_match(args, ctx, where)
        self.want_final = self.want_final or ctx.want_final
        return False if source.nevermatch else value

    def _session_type(self) -> str:
        """What ``Match sessiontype`` sees: SessionType so far, else exec/shell."""
        configured = (self.first("sessiontype") or "").lower()
        if configured in ("none", "subsystem"):
            return configured
        return "exec" if self.first("remotecommand") else "shell"

    def _match_host(self) -> str:
        """The name ``Match host`` sees: final hostname, or HostName with %h so far."""
        if self.final and self.final_host is not None:
            return self.final_host
        hostname = self.first("hostname")
        if hostname is None:
            return self.host_arg
        return expand_tokens(hostname, {"h": self.host_arg}, "h", keyword="hostname")

    def _exec_tokens(self) -> dict[str, str]:
        """Token values for Match exec: %h is the Match host, %k the alias or that host."""
        tokens = self.token_values()
        tokens["h"] = self._match_host()
        tokens["k"] = self.first("hostkeyalias") or tokens["h"]  # not lowercased yet
        tokens["C"] = connection_hash(tokens)
        return tokens

    # -- Include ---------------------------------------------------------------

    def _include(
        self, source: Source, args: Sequence[str], where: tuple[str, int], state: list[bool]
    ) -> None:
        """Read each glob's files in lexical order; Host/Match inside do not leak out."""
        if source.path == COMMAND_LINE:
            raise ConfigError("Include directive not supported as a command-line option", *where)
        for arg in args:
            pattern = self._include_pattern(source, arg, where)
            if pattern is None:
                continue
            paths = sorted(glob.glob(pattern))
            if not paths:
                logger.debug("%s line %d: include %s matched no files", *where, pattern)
                continue
            outer = state[0]
            for path in paths:
                child = Source(
                    path, source.user_conf, source.nevermatch or not outer, source.depth + 1
                )
                if child.depth > MAX_DEPTH:
                    raise ConfigError("Too many recursive configuration includes", *where)
                self.read_file(child, check_perm=True, active=outer)
                state[0] = outer

    def _include_pattern(self, source: Source, arg: str, where: tuple[str, int]) -> str | None:
        """Expand and anchor an Include path: ``~`` (user files), else ~/.ssh or /etc/ssh.

        None when an unset ``${VAR}`` makes OpenSSH skip this path (it only logs).
        """
        if arg == "":
            raise ConfigError("keyword include empty argument", *where)
        try:
            # Tokens and ${ENV} are accepted since OpenSSH 9.9.
            arg = expand_tokens(
                arg, self._exec_tokens(), TOKENS_BY_KEYWORD["include"], keyword="include",
                environ=self.environ, path=where[0], line=where[1],
            )  # fmt: skip
        except UnsetVariableError as exc:
            logger.warning("%s; Include skipped", exc)
            return None
        if arg.startswith("~") and not source.user_conf:
            raise ConfigError(f"bad include path {arg}.", *where)
        if arg.startswith("~"):
            return _expand_tilde(arg, self.home, where)
        if os.path.isabs(arg):
            return arg
        base = os.path.join(self.home, ".ssh") if source.user_conf else "/etc/ssh"
        return os.path.join(base, arg)

    # -- ProxyJump -------------------------------------------------------------

    def _proxy_jump(self, rest: str, where: tuple[str, int], active: bool) -> None:
        """Syntax-check a ProxyJump and take it if nothing was chosen yet (first wins)."""
        value = rest.lstrip(" \t\r\n=")
        spec = value.split("#", 1)[0].rstrip(" \t\r\n")
        try:
            hops = parse_proxy_jump(value)
        except ValueError:
            raise ConfigError(f'Invalid ProxyJump "{value}"', *where) from None
        if not active or self.jump_host is not None or "proxycommand" in self.values:
            return
        self.jump_host = "none" if hops is None else spec
        self._set("proxyjump", [self.jump_host], where)

    # -- ordinary keywords -------------------------------------------------------

    def _keyword(self, line: Line, kind: str, where: tuple[str, int], active: bool) -> None:
        """Check an ordinary keyword's arguments always; store them when active."""
        assert line.args is not None
        items = _check_args(line.keyword, kind, line.args, line.rest, where)
        if kind == Kind.IGNORED:
            logger.debug("%s line %d: deprecated or unsupported option %s", *where, line.keyword)
            return
        key = canonical_keyword(line.keyword)
        if not active or (key == "hostname" and self.hostname_locked):
            return
        if kind == Kind.TIME and items == ["none"]:
            return  # "none" is readconf.c's unset value (-1): a later line still wins
        if key == "proxycommand" and self.jump_host not in (None, "none"):
            return  # an active ProxyJump came first
        if key == "sendenv":
            self._send_env(items, where)
            return
        self._set(key, items, where)

    def _send_env(self, items: Sequence[str], where: tuple[str, int]) -> None:
        """SendEnv accumulates; ``-PATTERN`` removes the names already listed that match."""
        for item in items:
            if not item.startswith("-"):
                self._set("sendenv", [item], where)
                continue
            pairs = zip(self.values.get("sendenv", []), self.origins.get("sendenv", []))
            kept = [(name, origin) for name, origin in pairs if not match_pattern(name, item[1:])]
            self.values["sendenv"] = [name for name, _ in kept]
            self.origins["sendenv"] = [origin for _, origin in kept]


def _expand_tilde(path: str, home: str, where: tuple[str, int]) -> str:
    """Expand a leading ``~`` or ``~user`` (glob's GLOB_TILDE)."""
    if path == "~" or path.startswith("~/"):
        return home + path[1:]
    expanded = os.path.expanduser(path)
    if expanded == path:
        raise ConfigError(f"tilde_expand: No such user {path[1:].split('/', 1)[0]}", *where)
    return expanded


def _check_args(
    keyword: str, kind: str, args: Sequence[str], rest: str, where: tuple[str, int]
) -> list[str]:
    """Validate arguments as OpenSSH would; return the values to store."""
    if kind == Kind.COMMAND:
        return [rest.lstrip(" \t\r\n=")]
    if not args or (kind in _SINGLE_ARG and args[0] == ""):
        raise ConfigError("Missing argument.", *where)
    if kind in _SINGLE_ARG and len(args) > 1:
        raise ConfigError(f"keyword {keyword} extra arguments at end of line", *where)
    _check_value(keyword, kind, args[0], where)
    problem = check_special(keyword, args)
    if problem is not None:
        raise ConfigError(problem, *where)
    if kind == Kind.FORWARD:
        if keyword == "dynamicforward" and len(args) > 1:
            raise ConfigError(f"keyword {keyword} extra arguments at end of line", *where)
        return [" ".join(args)]
    if kind == Kind.ARGS:
        return [" ".join(args)]
    return list(args)


def _check_value(keyword: str, kind: str, arg: str, where: tuple[str, int]) -> None:
    """Check one argument of a typed keyword."""
    if kind == Kind.FLAG and arg.lower() not in ("yes", "no", "true", "false"):
        raise ConfigError(f'unsupported option "{arg}".', *where)
    if kind == Kind.CHOICE and arg.lower() not in CHOICES[keyword]:
        raise ConfigError(f'unsupported option "{arg}".', *where)
    if kind == Kind.PORT and parse_port(arg) is None:
        raise ConfigError(f"Bad port '{arg}'.", *where)
    if kind == Kind.TIME and arg != "none" and parse_time(arg) is None:
        raise ConfigError("invalid time value.", *where)
    if kind == Kind.INT and not (arg.isdigit() and arg.isascii() and int(arg) <= _INT_MAX):
        raise ConfigError(f"integer value {arg}.", *where)


def option_line(key: str, value: str) -> Line:
    """Turn a command-line ``-o Key=Value`` pair into a Line.

    Single-argument keywords take ``value`` whole (as ``-i PATH`` does), so a
    path with spaces survives; others are split like a config line.
    """
    keyword = key.strip().lower()
    kind = KEYWORDS.get(keyword)
    if kind in _SINGLE_ARG or kind == Kind.COMMAND or keyword == "proxyjump":
        return Line(0, keyword, value, (value,) if value else ())
    try:
        return Line(0, keyword, value, argv_split(value))
    except ValueError:
        return Line(0, keyword, value, None)
