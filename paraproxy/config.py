"""Resolve ssh_config for one host the way OpenSSH's ``ssh`` does.

:func:`resolve` reads the files at every call (a parse cache keyed on each
file's identity and mtime keeps that cheap) and returns a frozen
:class:`HostConfig`.  It opens no sockets and makes no DNS queries; the only
child process is a ``Match exec`` command.  The target behaviour is OpenSSH
10.x's; ``tests/test_config_differential.py`` proves it against ``ssh -G`` of
OpenSSH 9.2p1 wherever the two agree.

Departures from OpenSSH
-----------------------
* ``~``, ``%d`` and the default ``~/.ssh/config`` use ``$HOME`` (Python's
  ``expanduser``); OpenSSH uses the passwd entry.  ``%u`` and ``localuser``
  are :func:`getpass.getuser`, which honours ``$LOGNAME``/``$USER``.
* ``CanonicalizeHostname`` never changes the name (no DNS): it only triggers
  the second pass, on which ``Match canonical``/``final`` are true and ``Host``
  matches the HostName-substituted name.
* ``Match exec`` is bounded by ``exec_timeout`` (OpenSSH waits forever); a
  timeout is a :class:`~paraproxy.errors.ConfigError`.  It is not run inside
  an ``Include`` read from a block that can never match (OpenSSH runs it for
  nothing and ignores the result).
* ``Match version`` compares with ``OpenSSH_10.5p1``: paraproxy reads the
  config syntax of that release.
* An Include whose ``${VAR}`` is unset is skipped with a warning, as OpenSSH
  does; in every other keyword an unset variable is an error.
* ``Match localnetwork`` reads interface addresses from Linux ``/proc/net``
  (``fib_trie``, ``if_inet6``); elsewhere it never matches.
* Match arguments are split like other lines (OpenSSH 10.x), so single quotes
  group words too; OpenSSH 9.2 honoured double quotes only there.
* Included files must be regular files (or directories, which read as empty,
  as in OpenSSH) of at most 16 MiB (libssh's CVE-2026-0965 fix); a FIFO or
  device is refused.  Top-level files may be pipes (``-F /dev/stdin``) but are
  capped at 16 MiB too.
* The first bad line raises; OpenSSH reports every bad line, then
  ``terminating, N bad configuration options``.
* The GSSAPI key-exchange keywords of the Debian/Red Hat patch
  (``GSSAPIKeyExchange``, ``GSSAPITrustDNS``, ...) are known, as Debian's
  ``ssh`` knows them; upstream OpenSSH refuses them.
* Values of keywords paraproxy does not use are checked for their argument
  count and simple syntax only (a bad cipher list is not detected).
* Caller-supplied names are validated with OpenSSH HEAD's rules plus 10.6's
  ban on ``$`` and ``\\`` in user names, and the empty host name is refused.
* Not a departure, but unlike ssh_config(5)'s wording: ``%j`` is the host of
  the last ProxyJump hop (``options.jump_host`` in ssh.c), and ``%C`` hashes
  ``%l%h%p%r%j`` (OpenSSH 9.6+; 9.2 hashed ``%l%h%p%r``).
* Where OpenSSH changed, 10.x wins over the 9.2 oracle: ``Match !final``
  does not ask for the second pass; ``key=value`` only for the criteria
  readconf.c lists; ``Match sessiontype`` is ``shell`` (or ``exec`` with a
  RemoteCommand, or SessionType) and ``Match command`` the empty string.
* Command-line ``ProxyJump`` options (``options=``) have their hosts and users
  validated when ``check_names`` is true (OpenSSH 10.3+).
* ``User`` from a file gets tokens and ``${ENV}`` expanded (OpenSSH 10.0+)
  and an expanded user is validated (10.1+); command-line users are not
  expanded.  ``Include`` takes tokens and ``${ENV}`` (9.9+).
* ``ProxyJump none # comment`` means ``none`` (OpenSSH 9.2 then jumps via a
  host called "none"); the grammar is :mod:`paraproxy._jumpspec`'s.
* Several files in ``config_files`` are all read, in order, each like
  ``ssh -F`` (OpenSSH takes only the last ``-F``).  ``options`` come first,
  then ``user``/``port``: like ``ssh -o ... -l ... -p ...``.

Keywords resolved for paraproxy
-------------------------------
HostName (``%h``, lowercased unless an address), Port, User, ProxyCommand
(raw; expand with :meth:`HostConfig.expand`), ProxyJump (raw, syntax-checked),
IdentityFile (``~``, tokens, ``${ENV}`` expanded), IdentitiesOnly,
HostKeyAlias (lowercased), UserKnownHostsFile (expanded),
GlobalKnownHostsFile (verbatim, as OpenSSH uses it), ConnectTimeout,
ForwardAgent.  Every other keyword of OpenSSH up to 10.x is parsed, checked
and kept in :attr:`HostConfig.values`; an unknown one is an error unless
``IgnoreUnknown`` covers it.  The table is :data:`paraproxy._keywords.KEYWORDS`.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from paraproxy._cfgfile import Line
from paraproxy._jumpspec import parse_proxy_jump
from paraproxy._keywords import canonical_keyword, parse_bool, parse_port, parse_time
from paraproxy._readconf import COMMAND_LINE, Reader, Source, option_line
from paraproxy._sshg import ssh_g_lines
from paraproxy._tokens import (
    ENV_KEYWORDS,
    TOKENS_BY_KEYWORD,
    check_caller_names,
    connection_hash,
    expand_tokens,
    valid_ruser,
)
from paraproxy.errors import ConfigError, InvalidNameError

__all__ = ["DEFAULT_CONFIG_FILES", "HostConfig", "resolve"]

logger = logging.getLogger(__name__)

#: The user file, then the system file (ssh_config(5) DESCRIPTION).
DEFAULT_CONFIG_FILES = ("~/.ssh/config", "/etc/ssh/ssh_config")


@dataclass(frozen=True)
class HostConfig:
    """What ssh_config says about one host, after OpenSSH's precedence rules.

    ``values`` holds every keyword set by a file or by ``options`` (lowercase,
    obsolete aliases folded), the first value winning except for accumulating
    keywords; ``origins`` says where each came from.
    """

    #: The name as given (``%n``), what ``Host`` lines match.
    host: str
    #: Effective HostName, ``%h``-expanded, lowercased unless an address literal.
    hostname: str
    #: Effective port: the caller's, else config, else 22.
    port: int
    #: Effective remote user: the caller's, else config (tokens expanded), else local.
    user: str
    #: Lowercase keyword -> values set by a file or ``options`` (aliases folded).
    values: Mapping[str, tuple[str, ...]]
    #: Lowercase keyword -> (file, line) of its first value; ``("<command line>", 0)``.
    origins: Mapping[str, tuple[str, int]]
    #: Token letter -> value: ``h n p r u l L d i k C j``.
    token_values: Mapping[str, str]
    #: Raw ProxyCommand; None when unset, ``none``, or masked by an earlier ProxyJump.
    proxy_command: str | None
    #: Raw ProxyJump (comment cut); None when unset, ``none`` or masked by ProxyCommand.
    proxy_jump: str | None
    #: IdentityFile paths expanded (``~``, tokens, ``${ENV}``), ``none`` entries dropped;
    #: a non-empty ``get_all("identityfile")`` still means "no default keys".
    identity_files: tuple[str, ...]
    #: UserKnownHostsFile expanded; () when not set or ``none``.
    user_known_hosts_files: tuple[str, ...]
    #: GlobalKnownHostsFile verbatim (OpenSSH expands nothing there); () when not set.
    global_known_hosts_files: tuple[str, ...]
    #: HostKeyAlias, lowercased as ssh.c does; None when not set.
    host_key_alias: str | None
    #: ConnectTimeout in seconds; None when unset, ``none`` or 0.
    connect_timeout: float | None
    #: ForwardAgent yes/true or a socket path.
    forward_agent: bool
    #: IdentitiesOnly.
    identities_only: bool
    #: The environment ``${VAR}`` expansion used (a snapshot at resolve time).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def get(self, keyword: str) -> str | None:
        """Return the first value of ``keyword`` (case-insensitive), or None."""
        found = self.values.get(canonical_keyword(keyword.lower()))
        return found[0] if found else None

    def get_all(self, keyword: str) -> tuple[str, ...]:
        """Return every value of ``keyword`` (case-insensitive), in order."""
        return self.values.get(canonical_keyword(keyword.lower()), ())

    @property
    def configured(self) -> bool:
        """Tell whether any file line applied to this host."""
        return any(path != COMMAND_LINE for path, _ in self.origins.values())

    def expand(self, text: str, keyword: str) -> str:
        """Expand ``%`` tokens (and ``${ENV}`` where OpenSSH does) as for ``keyword``."""
        key = keyword.lower()
        where = self.origins.get(key, (None, None))
        return expand_tokens(
            text, self.token_values, TOKENS_BY_KEYWORD[key], keyword=key,
            environ=self.environ if key in ENV_KEYWORDS else None,
            path=where[0], line=where[1],
        )  # fmt: skip

    def to_ssh_g(self) -> str:
        """Render the honoured keywords the way ``ssh -G`` (OpenSSH 9.2) prints them."""
        return "".join(f"{key} {value}\n" for key, value in ssh_g_lines(self))


# -- resolve ---------------------------------------------------------------------


def resolve(
    host: str,
    *,
    user: str | None = None,
    port: int | None = None,
    config_files: Sequence[str] | None = None,
    options: Sequence[tuple[str, str]] = (),
    check_names: bool = True,
    exec_timeout: float = 10.0,
) -> HostConfig:
    """Resolve ssh_config for ``host`` as ``ssh`` would, before it connects.

    :param host: the name as given (``%n``, what ``Host`` lines match).
    :param user: the caller's user name: beats config, is ``%r``.
    :param port: the caller's port: beats config, is ``%p``.
    :param config_files: None for ``~/.ssh/config`` then ``/etc/ssh/ssh_config``
        (missing files are fine); else exactly these files, each like ``ssh -F``
        (a missing one is an error).
    :param options: ``-o Key=Value`` pairs, highest precedence.
    :param check_names: validate ``host`` and ``user`` (and a ``User`` option)
        with OpenSSH's rules before anything runs.
    :param exec_timeout: bound for each ``Match exec`` command, in seconds.
    :raises InvalidNameError: a caller name OpenSSH would refuse.
    :raises ConfigError: a config OpenSSH would refuse, citing file and line.
    """
    if check_names:
        check_caller_names(host, user)
    if port is not None and not (isinstance(port, int) and 0 < port <= 65535):
        raise ConfigError(f"Bad port '{port}'.", COMMAND_LINE, 0)
    reader = _new_reader(host, exec_timeout)
    _apply_command_line(reader, user, port, options, check_names)
    _read_files(reader, config_files)
    if reader.want_final or _canonicalize(reader):
        _final_pass(reader, config_files)
    return _finish(reader)


def _new_reader(host: str, exec_timeout: float) -> Reader:
    """Create the per-lookup state, with local facts read once."""
    local = _local_facts()
    reader = Reader(
        host_arg=host, local_user=local["u"], home=local["d"], environ=dict(os.environ),
        token_values=lambda: {}, exec_timeout=exec_timeout,
    )  # fmt: skip
    reader.token_values = lambda: _token_values(reader, local)
    return reader


def _apply_command_line(
    reader: Reader,
    user: str | None,
    port: int | None,
    options: Sequence[tuple[str, str]],
    check_names: bool,
) -> None:
    """Apply ``-o`` options, then ``-l``/``-p``, before any file (first wins)."""
    source = Source(COMMAND_LINE, user_conf=True)
    state = [True]
    for key, value in options:
        line = option_line(key, value)
        reader.process(source, line, state)
        if check_names and line.keyword == "proxyjump":
            _check_jump_names(value)
    option_user = reader.first("user")
    if check_names and option_user is not None and not valid_ruser(option_user):
        raise InvalidNameError("user", option_user)
    if user is not None:
        reader.process(source, Line(0, "user", user, (user,)), state)
    if port is not None:
        reader.process(source, Line(0, "port", str(port), (str(port),)), state)


def _check_jump_names(value: str) -> None:
    """Validate command-line ProxyJump hosts and users (OpenSSH 10.3+, commit 0a0ef4515)."""
    for hop in parse_proxy_jump(value) or ():
        check_caller_names(hop.host, hop.user)


def _file_sources(config_files: Sequence[str] | None) -> list[tuple[Source, bool, bool]]:
    """List (source, check permissions, must exist) for the files to read, in order."""
    if config_files is not None:
        return [(Source(os.path.expanduser(p), user_conf=True), False, True) for p in config_files]
    files = DEFAULT_CONFIG_FILES
    out = [(Source(os.path.expanduser(files[0]), user_conf=True), True, False)]
    out += [(Source(os.path.expanduser(p), user_conf=False), False, False) for p in files[1:]]
    return out


def _read_files(reader: Reader, config_files: Sequence[str] | None) -> None:
    """Read every config file once, in precedence order."""
    for source, check_perm, required in _file_sources(config_files):
        if not reader.read_file(source, check_perm=check_perm) and required:
            raise ConfigError("Can't open user config file: No such file or directory", source.path)


def _canonicalize(reader: Reader) -> bool:
    """Tell whether CanonicalizeHostname asks for the second pass."""
    value = reader.first("canonicalizehostname")
    return value is not None and value.lower() not in ("no", "false")


def _final_pass(reader: Reader, config_files: Sequence[str] | None) -> None:
    """Re-read the files with ``final`` true and Host matching the final hostname."""
    logger.debug("re-parsing configuration for the final pass")
    reader.final = True
    reader.final_host = _effective_hostname(reader)
    # ssh sets options.hostname to the final name, so later HostName lines lose.
    reader.hostname_locked = True
    _read_files(reader, config_files)


# -- finishing -------------------------------------------------------------------


def _local_facts() -> dict[str, str]:
    """Local tokens that do not depend on the config: %u %d %i %l %L."""
    full = socket.gethostname()  # no DNS, unlike getfqdn()
    return {
        "u": getpass.getuser(),
        "d": os.path.expanduser("~"),
        "i": str(os.getuid()),
        "l": full,
        "L": full.split(".", 1)[0],
    }


def _effective_hostname(reader: Reader) -> str:
    """HostName with %h expanded, lowercased unless it is an address literal."""
    raw = reader.first("hostname")
    name = reader.host_arg
    if raw is not None:
        path, line = reader.origins["hostname"][0]
        name = expand_tokens(
            raw, {"h": reader.host_arg}, "h", keyword="hostname", path=path, line=line
        )
    return _canonical_address(name) or name.lower()


def _canonical_address(name: str) -> str | None:
    """Return an address literal in ssh's numeric form, or None if not an address."""
    try:
        # AI_NUMERICHOST: parses literals only, never a DNS query.
        infos = socket.getaddrinfo(name, None, flags=socket.AI_NUMERICHOST)
        numeric, _ = socket.getnameinfo(infos[0][4], socket.NI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    # ssh keeps the spelling given unless it differs beyond letter case.
    return name if numeric.lower() == name.lower() else numeric


def _port(reader: Reader) -> int:
    """The effective port: command line, then config, else 22."""
    raw = reader.first("port")
    return (parse_port(raw) or 22) if raw is not None else 22


def _jump_host(spec: str | None) -> str:
    """%j: the host of the last ProxyJump hop, as ``options.jump_host`` in ssh.c."""
    if spec is None or spec == "none":
        return ""
    hops = parse_proxy_jump(spec)
    return hops[-1].host if hops else ""


def _token_values(reader: Reader, local: Mapping[str, str]) -> dict[str, str]:
    """Token values from the state so far (used while parsing, and at the end)."""
    hostname = reader.final_host if reader.final_host else _effective_hostname(reader)
    jump = _jump_host(reader.jump_host)
    values = dict(local)
    values.update(
        h=hostname, n=reader.host_arg, p=str(_port(reader)),
        r=reader.first("user") or local["u"], j=jump or "",
        k=(reader.first("hostkeyalias") or reader.host_arg).lower()
        if reader.first("hostkeyalias") else reader.host_arg,
    )  # fmt: skip
    values["C"] = connection_hash(values)
    return values


def _finish(reader: Reader) -> HostConfig:
    """Turn the accumulated state into the frozen HostConfig."""
    reader.final_host = _effective_hostname(reader) if not reader.final else reader.final_host
    user = _effective_user(reader)
    if user is not None:
        reader.values["user"] = [user, *reader.values["user"][1:]]
    tokens = reader.token_values()
    values = {k: tuple(v) for k, v in reader.values.items()}
    origins = {k: v[0] for k, v in reader.origins.items() if v}
    hc = HostConfig(
        host=reader.host_arg, hostname=tokens["h"], port=int(tokens["p"]), user=tokens["r"],
        values=MappingProxyType(values), origins=MappingProxyType(origins),
        token_values=MappingProxyType(tokens),
        proxy_command=_proxy_command(reader),
        proxy_jump=reader.jump_host if reader.jump_host != "none" else None,
        identity_files=(), user_known_hosts_files=(), global_known_hosts_files=(),
        host_key_alias=tokens["k"] if reader.first("hostkeyalias") else None,
        connect_timeout=_connect_timeout(reader.first("connecttimeout")),
        forward_agent=_forward_agent(reader.first("forwardagent")),
        identities_only=parse_bool(reader.first("identitiesonly") or "no") or False,
        environ=reader.environ,
    )  # fmt: skip
    return _with_paths(hc, reader)


def _effective_user(reader: Reader) -> str | None:
    """Expand a config User's tokens and ${ENV} (OpenSSH 10.0+); validate if expanded."""
    raw = reader.first("user")
    where = reader.origins.get("user", [(COMMAND_LINE, 0)])[0]
    if raw is None or where[0] == COMMAND_LINE or ("%" not in raw and "${" not in raw):
        return None
    tokens = reader.token_values()
    expanded = expand_tokens(
        raw, tokens, TOKENS_BY_KEYWORD["user"], keyword="user", environ=reader.environ,
        path=where[0], line=where[1],
    )  # fmt: skip
    # ssh.c validates a config user only when expansion changed it.
    if expanded != raw and not valid_ruser(expanded):
        raise ConfigError(f'remote username "{expanded}" contains invalid characters', *where)
    return expanded


def _proxy_command(reader: Reader) -> str | None:
    """The raw ProxyCommand, unless unset, ``none``, or masked by an earlier ProxyJump."""
    if reader.jump_host not in (None, "none"):
        return None
    command = reader.first("proxycommand")
    return None if command is None or command == "none" else command


def _connect_timeout(raw: str | None) -> float | None:
    """ConnectTimeout in seconds; None when unset, ``none`` or 0 (no timeout)."""
    seconds = parse_time(raw) if raw not in (None, "none") else None
    return float(seconds) if seconds else None


def _forward_agent(raw: str | None) -> bool:
    """ForwardAgent: yes/true or a socket path means forward."""
    return raw is not None and raw.lower() not in ("no", "false")


def _expand_path(hc: HostConfig, raw: str, keyword: str, where: tuple[str, int]) -> str:
    """Expand ``~`` then tokens and ${ENV} in a file name, as ssh.c does."""
    if raw.startswith("~"):
        home = hc.token_values["d"]
        raw = home + raw[1:] if raw == "~" or raw.startswith("~/") else os.path.expanduser(raw)
    return expand_tokens(
        raw, hc.token_values, TOKENS_BY_KEYWORD[keyword], keyword=keyword,
        environ=hc.environ, path=where[0], line=where[1],
    )  # fmt: skip


def _with_paths(hc: HostConfig, reader: Reader) -> HostConfig:
    """Fill in the expanded IdentityFile and known-hosts lists."""

    def expanded(keyword: str) -> tuple[str, ...]:
        """Expand every value of a path keyword with its own origin."""
        pairs = zip(reader.values.get(keyword, []), reader.origins.get(keyword, []))
        # ssh.c skips "IdentityFile none" (it still turns the default keys off).
        return tuple(
            _expand_path(hc, raw, keyword, where)
            for raw, where in pairs
            if keyword != "identityfile" or raw.lower() != "none"
        )

    user_files = () if _none_list(reader, "userknownhostsfile") else expanded("userknownhostsfile")
    global_files = (
        ()
        if _none_list(reader, "globalknownhostsfile")
        else tuple(reader.values.get("globalknownhostsfile", ()))
    )  # OpenSSH expands nothing in GlobalKnownHostsFile
    return dataclasses.replace(
        hc, identity_files=expanded("identityfile"), user_known_hosts_files=user_files,
        global_known_hosts_files=global_files,
    )  # fmt: skip


def _none_list(reader: Reader, keyword: str) -> bool:
    """Tell whether a known-hosts list is ``none``; ``none`` beside other files is an error."""
    files = reader.values.get(keyword, [])
    if not files or files[0].lower() != "none":
        return False
    if len(files) > 1:
        name = "UserKnownHostsFiles" if keyword.startswith("user") else "GlobalKnownHostsFiles"
        where = reader.origins[keyword][0]
        raise ConfigError(f'Invalid {name}: "none" appears with other entries', *where)
    return True
