"""Recognise a ProxyCommand that is an ``ssh`` hop, so the chain can be built in-process.

Pure parsing, no I/O (apart from reading ``HOME`` for a leading ``~``). Conservative by
design: anything not fully understood gives :class:`NotRecognised` with a reason for
the verbose log, and the caller then runs the command as a real ProxyCommand, exactly
as OpenSSH would. Recognised shapes::

    [exec] ssh [options] DESTINATION [options] RELAY-COMMAND   (nc/ncat/netcat/socat)
    [exec] ssh [options] -W HOST:PORT DESTINATION [options]

How the command is read:

* It is split with POSIX ``sh`` word rules for a simple subset (plain words, single
  quotes, double quotes without a dollar, backquote or backslash, backslash escapes).
  Any unquoted operator, expansion or glob character gives NotRecognised, so no shell
  is needed; an unquoted ``[%h]:%p`` is a glob too and must be quoted to be recognised.
* ``%`` tokens are expanded with ``expand`` *after* splitting, per word: a token value
  can never add words or options (OpenSSH expands first and lets the shell split).
* A leading unquoted ``~`` or ``~/`` is expanded like the shell does (``$HOME``).
* The program must be ``ssh`` or ``ssh.exe``, bare or as a path. Backslashes are shell
  escapes, so a Windows path is only recognised inside single quotes.
* Options follow OpenSSH 9.2's getopt grammar (bundling, attached or separate
  arguments, ``--``); like ssh, options are parsed again right after the destination
  (``ssh host -p 2222 cmd``), up to the first other word, which starts the command.
* Names are checked with OpenSSH's command-line rules (REFERENCE 1.9, current release):
  a name that ssh would refuse is not recognised, so ssh itself reports it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

from paraproxy._jumpspec import parse_jump_element, parse_proxy_jump

__all__ = [
    "FOLDED_OPTIONS",
    "HONOURED_OPTIONS",
    "IGNORABLE_OPTIONS",
    "NotRecognised",
    "Relay",
    "SshCommand",
    "parse_relay",
    "parse_ssh_command",
]


@dataclass(frozen=True)
class Relay:
    """A remote command that only copies stdio to one TCP port (nc, ncat, socat)."""

    host: str
    port: int
    program: str  # the relay program's base name as written: nc, ncat, nc.openbsd, socat ...
    # netcat-openbsd's -w N: the connection drops after N idle seconds (callers warn).
    idle_timeout: float | None = None
    # ncat's -w N and socat's connect-timeout=N only bound the connect.
    connect_timeout: float | None = None


@dataclass(frozen=True)
class SshCommand:
    """A ProxyCommand that is an ssh hop paraproxy can run in-process.

    ``host`` is the destination name: look it up in the hop's config like ``ssh`` would
    (``config_file`` from ``-F`` replaces both the user and the system file; ``none``
    means no file). Exactly one of ``forward`` (``-W``) and ``relay`` is set;
    ``remote_command`` is the relay command as ssh sends it (words joined by spaces).

    ``user`` and ``port`` are the command line's effective values: OpenSSH takes the
    first of ``-l``/``user@``/``-o User`` and of ``-p``/``ssh://…:port``/``-o Port`` in
    argument order (checked with ``ssh -G``); ``login_name`` is just the first ``-l``.
    ``identity_files`` holds ``-i`` and ``-o IdentityFile`` values in argument order,
    without repeats, and ``jump`` the ``-J`` or ``-o ProxyJump`` value; those options
    also stay in ``options`` (see FOLDED_OPTIONS) and must not be applied twice.
    Flags (``-A``/``-a``, ``-C``, ``-4``/``-6``, ``-q``) beat ``-o`` in OpenSSH whatever
    the order; among repeated ``-o`` options the first wins, as in a config file.

    Values are what the hop's ssh would receive: it would still expand ``~`` and its
    own tokens (``%%h`` in the ProxyCommand reaches it as ``%h``) in identity files and
    other option values, and skip ``-i`` files that do not exist, with a warning.
    """

    program: str
    host: str
    user: str | None
    port: int | None
    login_name: str | None
    identity_files: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    config_file: str | None
    jump: str | None
    forward: tuple[str, int] | None
    forward_agent: bool | None
    remote_command: str | None
    flags: frozenset[str]
    verbosity: int = 0
    relay: Relay | None = None
    expanded_tilde: bool = False

    def as_options(self) -> tuple[tuple[str, str], ...]:
        """The command line as config options in ssh's precedence, for a first-wins reader."""
        out: list[tuple[str, str]] = []
        if self.user is not None:
            out.append(("User", self.user))
        if self.port is not None:
            out.append(("Port", str(self.port)))
        # Flags overwrite ssh's options whatever the order, so they go before any -o.
        if self.forward_agent is not None:
            out.append(("ForwardAgent", "yes" if self.forward_agent else "no"))
        if "C" in self.flags:
            out.append(("Compression", "yes"))
        if "4" in self.flags or "6" in self.flags:
            out.append(("AddressFamily", "inet" if "4" in self.flags else "inet6"))
        if self.jump is not None:
            out.append(("ProxyJump", self.jump))
        # IdentityFile accumulates rather than first-wins; these keep argument order.
        out.extend(("IdentityFile", path) for path in self.identity_files)
        out.extend(item for item in self.options if item[0].lower() not in FOLDED_OPTIONS)
        return tuple(out)


@dataclass(frozen=True)
class NotRecognised:
    """Why a ProxyCommand is run as a real command rather than in-process."""

    reason: str


# OpenSSH 9.2p1 (Debian) ssh.c getopt string, as found in the installed binary.
_OPTSTRING = "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:PQ:R:S:TVw:W:XYy"
_WITH_ARG = frozenset(c for c, nxt in zip(_OPTSTRING, _OPTSTRING[1:] + " ") if nxt == ":")
_ALL_OPTIONS = frozenset(_OPTSTRING.replace(":", ""))
# Flags with no effect on a relay or stdio forward, or one paraproxy honours.
# -x: no X11 (paraproxy never forwards X11); -k -g: only matter for GSSAPI/forwards;
# -y: log to syslog; -2: a no-op kept for old scripts; -N: no session (only with -W).
_HARMLESS_FLAGS = frozenset("246AaCqTxvNkgy")
# Options with arguments that are read; -E (log file) is accepted and ignored.
_HANDLED_WITH_ARG = frozenset("clmiopFJWE")
_WHY_NOT: dict[str, str] = {
    "t": "-t would put a terminal on the relay",
    "n": "-n would disconnect the relay's stdin",
    "X": "X11 forwarding is not supported in-process",
    "Y": "X11 forwarding is not supported in-process",
    "f": "-f backgrounds ssh",
    "s": "-s requests a subsystem",
    "M": "-M makes a multiplexing master",
    "S": "-S uses a multiplexing control socket",
    "O": "-O controls a multiplexing master",
    "G": "-G only prints configuration",
    "V": "-V only prints the version",
    "1": "protocol 1 is not supported",
    "K": "GSSAPI delegation is not supported in-process",
}

# -o keywords paraproxy applies to a hop (lower case).
HONOURED_OPTIONS = frozenset(
    {
        "user",
        "port",
        "hostname",
        "identityfile",
        "proxyjump",
        "proxycommand",
        "stricthostkeychecking",
        "userknownhostsfile",
        "globalknownhostsfile",
        "hostkeyalias",
        "connecttimeout",
        "forwardagent",
        "identitiesonly",
        "identityagent",
        "batchmode",
        "passwordauthentication",
        "pubkeyauthentication",
        "kbdinteractiveauthentication",
        "preferredauthentications",
        "numberofpasswordprompts",
        "serveraliveinterval",
        "serveralivecountmax",
        "compression",
        "addressfamily",
        "ciphers",
        "macs",
        "kexalgorithms",
        "hostkeyalgorithms",
        "sendenv",
        "setenv",
        "connectionattempts",
    }
)
# -o keywords with no effect on a relay or stdio-forward hop; a caller may ignore them.
# The value is None for any value, else the only value accepted (lower case).
IGNORABLE_OPTIONS: dict[str, str | None] = {
    "loglevel": None,
    "exitonforwardfailure": None,
    "clearallforwardings": None,
    "checkhostip": None,
    "hashknownhosts": None,
    "tcpkeepalive": None,
    "visualhostkey": None,
    "controlmaster": "no",
    "controlpath": "none",
    "controlpersist": "no",
    "requesttty": "no",
    "forwardx11": "no",
}
# Options whose values are already in SshCommand's own fields.
FOLDED_OPTIONS = frozenset({"user", "port", "identityfile", "proxyjump"})

_RELAY_NC = frozenset({"nc", "netcat", "nc.openbsd", "nc.traditional"})
_OPERATORS = frozenset("|&;<>()")
# Expansions and globs of sh, bash and zsh ('^' is a zsh glob, '!' bash history/negation).
_SPECIALS = frozenset("$`*?[]{}!^")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# REFERENCE 1.9: OpenSSH's command-line name rules (current release, 10.6 for users).
_BAD_HOST_CHARS = frozenset("'`\"$\\;&<>|(){},")
_BAD_USER_CHARS = frozenset("'`\";&<>|(){}$\\")
_PORT_RE = re.compile(r"\+?[0-9]+")
_NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_INT_RE = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class _Word:
    """One shell word: its text after quote removal, and whether it began with ``~``."""

    text: str  # for a tilde word, the text after the '~'
    tilde: bool = False


def _split_shell(command: str) -> list[_Word] | str:
    """Split a command with the simple sh subset; return the words or why not."""
    words: list[_Word] = []
    i, n = 0, len(command)
    while i < n:
        char = command[i]
        if char in " \t":
            i += 1
            continue
        # A new word starts here.
        buf: list[str] = []
        tilde = False
        if char == "~":
            end = i + 1
            if end < n and command[end] not in " \t/":
                return "'~user' in the command"
            tilde = True
            i += 1
        elif char == "#":
            return "shell comment '#' in the command"
        elif char == "=":
            return "a word starting with '=' (zsh expands it)"
        while i < n:
            char = command[i]
            if char in " \t":
                break
            if char == "'":
                end = command.find("'", i + 1)
                if end < 0:
                    return "unterminated single quote"
                buf.append(command[i + 1 : end])
                i = end + 1
            elif char == '"':
                end = command.find('"', i + 1)
                if end < 0:
                    return "unterminated double quote"
                part = command[i + 1 : end]
                bad = next((c for c in part if c in "$`\\"), None)
                if bad is not None:
                    return f"{bad!r} inside double quotes in the command"
                buf.append(part)
                i = end + 1
            elif char == "\\":
                if i + 1 >= n:
                    return "trailing backslash in the command"
                buf.append(command[i + 1])
                i += 2
            elif char in _OPERATORS:
                return f"shell operator {char!r} in the command"
            elif char in _SPECIALS:
                kind = "glob" if char in "*?[]" else "expansion"
                return f"shell special character {char!r} ({kind}) in the command"
            else:
                buf.append(char)
                i += 1
        text = "".join(buf)
        if _CONTROL_RE.search(text):
            return "control character in the command"
        words.append(_Word(text, tilde))
    return words


def _valid_hostname(name: str) -> bool:
    """Apply OpenSSH's command-line hostname rule (REFERENCE 1.9)."""
    return (
        bool(name)
        and not name.startswith("-")
        and not any(c in _BAD_HOST_CHARS or c.isspace() for c in name)
        and _CONTROL_RE.search(name) is None
    )


def _valid_user(name: str) -> bool:
    """Apply OpenSSH's command-line username rule (REFERENCE 1.9, 10.6)."""
    return (
        bool(name)
        and not name.startswith("-")
        and not any(c in _BAD_USER_CHARS for c in name)
        and _CONTROL_RE.search(name) is None
        and re.search(r"\s-", name) is None
    )


def _parse_port(text: str) -> int | None:
    """Read a port as OpenSSH's a2port() does, without service names; None if bad."""
    if _PORT_RE.fullmatch(text) is None:
        return None
    port = int(text)
    return port if 0 < port <= 65535 else None


def _parse_forward(text: str) -> tuple[str, int] | None:
    """Read a -W argument: HOST:PORT or [HOST]:PORT; None for other forms."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        host, sep, port_text = text.partition(":")
        # Unbracketed IPv6 is refused by ssh too; a path is a Unix-socket forward.
        if not sep or ":" in port_text or "/" in text:
            return None
    port = _parse_port(port_text)
    if port is None or not _valid_hostname(host) or "[" in host or "]" in host:
        return None
    return host, port


def _split_option(text: str) -> tuple[str, str] | None:
    """Split an -o argument into (keyword, value) as ssh's strdelim() does."""
    match = re.fullmatch(r"[ \t]*([^ \t=]+)[ \t]*(?:=[ \t]*|[ \t])[ \t]*(.*?)[ \t]*", text)
    if match is None or not match.group(2):
        return None
    return match.group(1), match.group(2)


class _Parse:
    """Mutable state while reading ssh's options; frozen into SshCommand at the end."""

    def __init__(self) -> None:
        """Start with nothing set."""
        self.user: str | None = None
        self.port: int | None = None
        self.login_name: str | None = None
        self.identity_files: list[str] = []
        self.options: list[tuple[str, str]] = []
        self.config_file: str | None = None
        self.jump: str | None = None
        self.proxy_command = False
        self.forward: tuple[str, int] | None = None
        self.forward_agent: bool | None = None
        self.flags: set[str] = set()
        self.verbosity = 0
        self.ciphers_set: set[str] = set()

    def set_user(self, user: str) -> str | None:
        """Record a user if none yet (first wins, as in ssh); return an error or None."""
        if not _valid_user(user):
            return f"invalid remote user {user!r}"
        if self.user is None:
            self.user = user
        return None

    def _add_identity(self, path: str) -> None:
        """Add an identity file unless listed already (ssh drops duplicates)."""
        if path not in self.identity_files:
            self.identity_files.append(path)

    def option(self, opt: str, arg: str | None) -> str | None:
        """Apply one getopt result; return a reason if it is not understood."""
        if arg is None:
            if opt not in _HARMLESS_FLAGS:
                return _WHY_NOT.get(opt, f"option -{opt} is not understood")
            # The last of -4/-6 wins in ssh; a set of flags cannot say which came last.
            if opt in "46" and ({"4", "6"} - {opt}) & self.flags:
                return "-4 and -6 together"
            if opt == "A":
                self.forward_agent = True
            elif opt == "a":
                self.forward_agent = False
            elif opt == "v":
                self.verbosity += 1
            self.flags.add(opt)
            return None
        if opt not in _HANDLED_WITH_ARG:
            return _WHY_NOT.get(opt, f"option -{opt} is not understood")
        return self._option_with_arg(opt, arg)

    def _option_with_arg(self, opt: str, arg: str) -> str | None:
        """Apply an option that takes an argument; return a reason if not understood."""
        if opt == "l":
            if self.login_name is None:
                self.login_name = arg
            return self.set_user(arg)
        if opt == "p":
            # ssh validates only the first -p; later ones are ignored unread.
            if self.port is None:
                port = _parse_port(arg)
                if port is None:
                    return f"bad port {arg!r}"
                self.port = port
            return None
        if opt == "i":
            self._add_identity(arg)
            return None
        if opt == "F":
            if self.config_file is not None:
                return "-F given twice"
            self.config_file = arg
            return None
        if opt == "J":
            return self._jump(arg, "-J")
        if opt == "W":
            if self.forward is not None:
                return "-W given twice"
            forward = _parse_forward(arg)
            if forward is None:
                return f"-W {arg!r} is not HOST:PORT"
            self.forward = forward
            return None
        if opt in "cm":
            key = "Ciphers" if opt == "c" else "MACs"
            return self._config_option(key, arg, f"-{opt}")
        if opt == "o":
            split = _split_option(arg)
            if split is None:
                return f"-o {arg!r} has no value"
            return self._config_option(split[0], split[1], "-o")
        return None  # -E: a log file for ssh's own messages, irrelevant in-process

    def _jump(self, value: str, source: str) -> str | None:
        """Record a -J / -o ProxyJump value after checking it like ssh's command line."""
        if self.jump is not None or self.proxy_command:
            return f"{source} together with another ProxyJump or ProxyCommand"
        if any(c.isspace() for c in value):
            return f"whitespace in {source} {value!r}"
        try:
            hops = parse_proxy_jump(value)
        except ValueError as exc:
            return str(exc)
        if hops is None:
            return f"{source} none"
        for hop in hops:
            if not _valid_hostname(hop.host) or (
                hop.user is not None and not _valid_user(hop.user)
            ):
                return f"invalid name in {source} {value!r}"
        self.jump = value
        return None

    def _config_option(self, key: str, value: str, source: str) -> str | None:
        """Check and record one -o/-c/-m option; return a reason if not understood."""
        lower = key.lower()
        if '"' in value or "'" in value:
            return f"quotes in {source} {key} value"
        if lower in IGNORABLE_OPTIONS:
            only = IGNORABLE_OPTIONS[lower]
            if only is not None and value.lower() != only:
                return f"{source} {key}={value} is not supported in-process"
        elif lower not in HONOURED_OPTIONS:
            return f"{source} {key} is not understood"
        single = lower in FOLDED_OPTIONS or lower == "hostname"
        if single and any(c.isspace() for c in value):
            return f"{source} {key} value has several words"
        # -c/-m overwrite while -o is first-wins, so mixing them is order-dependent.
        if lower in ("ciphers", "macs"):
            if lower in self.ciphers_set:
                return f"{key} given twice"
            self.ciphers_set.add(lower)
        error = self._fold(lower, value, source)
        if error is None:
            self.options.append((key, value))
        return error

    def _fold(self, lower: str, value: str, source: str) -> str | None:
        """Copy a folded or checked -o option into the fields; return a reason if bad."""
        if lower == "user":
            return self.set_user(value)
        if lower == "port":
            port = _parse_port(value)
            if port is None:
                return f"bad port {value!r} in {source}"
            if self.port is None:
                self.port = port
        elif lower == "identityfile":
            self._add_identity(value)
        elif lower == "proxyjump":
            return self._jump(value, f"{source} ProxyJump")
        elif lower == "proxycommand":
            if self.jump is not None or self.proxy_command:
                return f"{source} ProxyCommand together with another ProxyJump or ProxyCommand"
            self.proxy_command = True
        elif lower == "hostname" and not _valid_hostname(value):
            return f"invalid {source} HostName {value!r}"
        return None


def _getopt(parse: _Parse, argv: list[str], index: int) -> tuple[int, bool] | str:
    """Read options from argv[index:] like BSD getopt; return (next index, saw --)."""
    while index < len(argv):
        word = argv[index]
        if word == "--":
            return index + 1, True
        if not word.startswith("-") or word == "-":
            break
        pos = 1
        while pos < len(word):
            opt = word[pos]
            if opt not in _ALL_OPTIONS:
                return f"unknown option -{opt}"
            arg: str | None = None
            if opt in _WITH_ARG:
                if pos + 1 < len(word):
                    arg = word[pos + 1 :]
                elif index + 1 < len(argv):
                    index += 1
                    arg = argv[index]
                else:
                    return f"option -{opt} needs an argument"
                pos = len(word)
            else:
                pos += 1
            error = parse.option(opt, arg)
            if error is not None:
                return error
        index += 1
    return index, False


def _destination(parse: _Parse, dest: str) -> str | NotRecognised:
    """Read the destination into parse; return the host or why it is refused."""
    if dest.startswith("ssh://"):
        try:
            target = parse_jump_element(dest)
        except ValueError:
            return NotRecognised(f"bad ssh:// destination {dest!r}")
        host, user, port = target.host, target.user, target.port
    else:
        user, sep, host = dest.rpartition("@")
        if sep and not user:
            return NotRecognised(f"empty user in destination {dest!r}")
        port = None
        if "[" in host or "]" in host:
            # ssh keeps brackets in a destination as part of the name.
            return NotRecognised(f"brackets in destination {dest!r}")
    if not _valid_hostname(host):
        return NotRecognised(f"invalid destination host {host!r}")
    if user:
        error = parse.set_user(user)
        if error is not None:
            return NotRecognised(error)
    if port is not None and parse.port is None:
        parse.port = port
    return host


def _is_ssh_program(path: str) -> bool:
    """Tell whether a program path names ssh: ``ssh`` or ``ssh.exe`` as its last component."""
    name = path.rsplit("/", 1)[-1]
    if name == "ssh":
        return True
    # Backslash separates only in a Windows path, which names ssh.exe (any case).
    return name.rsplit("\\", 1)[-1].lower() == "ssh.exe"


def _expand_word(word: _Word, expand: Callable[[str], str]) -> str:
    """Expand %-tokens in one word, after the shell's tilde (which ssh's tokens precede)."""
    text = expand(word.text)
    return os.path.expanduser("~") + text if word.tilde else text


def _remote_words_kept(
    raw: list[_Word], expanded: list[str], expand: Callable[[str], str]
) -> bool | None:
    """Tell whether token expansion kept the remote shell's words; None if unsplittable."""
    raw_split = _split_shell(" ".join(w.text for w in raw))
    new_split = _split_shell(" ".join(expanded))
    if isinstance(raw_split, str):
        return None  # not a relay anyway: let the caller say so
    if isinstance(new_split, str) or any(w.tilde for w in new_split):
        return False
    return [w.text for w in new_split] == [expand(w.text) for w in raw_split]


def parse_ssh_command(command: str, expand: Callable[[str], str]) -> SshCommand | NotRecognised:
    """Recognise an ssh hop in a raw ProxyCommand; ``expand`` maps %-tokens in one word."""
    split = _split_shell(command)
    if isinstance(split, str):
        return NotRecognised(split)
    words = split
    if words and words[0].text == "exec":
        words = words[1:]
    if not words:
        return NotRecognised("empty command")
    if not _is_ssh_program(words[0].text):
        hint = " (a backslash outside quotes is a shell escape)" if "\\" in command else ""
        return NotRecognised(f"not an ssh command{hint}")
    argv = [_expand_word(w, expand) for w in words]
    if any(_CONTROL_RE.search(a) for a in argv):
        return NotRecognised("control character after token expansion")
    parse = _Parse()
    got = _getopt(parse, argv, 1)
    if isinstance(got, str):
        return NotRecognised(got)
    index, terminated = got
    if index >= len(argv):
        return NotRecognised("no destination")
    host = _destination(parse, argv[index])
    if isinstance(host, NotRecognised):
        return host
    index += 1
    # ssh parses options again after the destination, unless "--" came before it.
    if index < len(argv) and not terminated:
        got = _getopt(parse, argv, index)
        if isinstance(got, str):
            return NotRecognised(got)
        index = got[0]
    remote = argv[index:]
    remote_command: str | None = " ".join(remote) if remote else None
    relay: Relay | None = None
    if remote_command is not None:
        if parse.forward is not None:
            return NotRecognised("-W and a remote command together")
        if "N" in parse.flags:
            return NotRecognised("-N and a remote command together")
        if any(w.tilde for w in words[index:]):
            return NotRecognised("'~' in the remote command")
        kept = _remote_words_kept(words[index:], remote, expand)
        if kept is False:
            return NotRecognised("token expansion changes the words of the remote command")
        relay = None if kept is None else parse_relay(remote_command)
        if relay is None:
            return NotRecognised(f"remote command is not a relay: {remote_command}")
    elif parse.forward is None:
        return NotRecognised("no remote command and no -W")
    return SshCommand(
        program=argv[0],
        host=host,
        user=parse.user,
        port=parse.port,
        login_name=parse.login_name,
        identity_files=tuple(parse.identity_files),
        options=tuple(parse.options),
        config_file=parse.config_file,
        jump=parse.jump,
        forward=parse.forward,
        forward_agent=parse.forward_agent,
        remote_command=remote_command,
        flags=frozenset(parse.flags),
        verbosity=parse.verbosity,
        relay=relay,
        expanded_tilde=any(w.tilde for w in words),
    )


# --- relay commands -----------------------------------------------------------------


def _relay_target(host: str, port_text: str) -> tuple[str, int] | None:
    """Check a relay's host and numeric port."""
    port = _parse_port(port_text)
    if port is None or not _valid_hostname(host):
        return None
    return host, port


def _parse_nc(program: str, args: list[str]) -> Relay | None:
    """Read ``nc [-w N] [-q N] [-N] [-4|-6] HOST PORT`` (netcat-openbsd/traditional)."""
    idle: float | None = None
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "-":
        word = args[index]
        pos = 1
        while pos < len(word):
            opt = word[pos]
            if opt in "wq":
                value = word[pos + 1 :]
                if not value:
                    index += 1
                    if index >= len(args):
                        return None
                    value = args[index]
                if opt == "w":
                    if not value.isdigit() or not value.isascii():
                        return None
                    idle = float(value)
                elif _INT_RE.fullmatch(value) is None:
                    return None
                break
            if opt not in "N46":
                return None
            pos += 1
        index += 1
    if len(args) - index != 2:
        return None
    target = _relay_target(args[index], args[index + 1])
    if target is None:
        return None
    # Only netcat-openbsd's -w drops an idle connection; traditional's bounds final reads.
    if program == "nc.traditional":
        idle = None
    return Relay(target[0], target[1], program, idle_timeout=idle)


def _parse_ncat(program: str, args: list[str]) -> Relay | None:
    """Read ``ncat [-w N|--wait N] [-4|-6] HOST PORT`` (Nmap's ncat; -w bounds the connect)."""
    timeout: float | None = None
    index = 0
    while index < len(args) and args[index].startswith("-"):
        word = args[index]
        if word in ("-4", "-6"):
            index += 1
            continue
        if word in ("-w", "--wait") and index + 1 < len(args):
            value = args[index + 1]
            index += 2
        elif word.startswith("--wait="):
            value = word[len("--wait=") :]
            index += 1
        elif word.startswith("-w") and len(word) > 2:
            value = word[2:]
            index += 1
        else:
            return None
        if _NUMBER_RE.fullmatch(value) is None:
            return None
        timeout = float(value)
    if len(args) - index != 2:
        return None
    target = _relay_target(args[index], args[index + 1])
    if target is None:
        return None
    return Relay(target[0], target[1], program, connect_timeout=timeout)


def _parse_socat_address(text: str) -> tuple[str, int, float | None] | None:
    """Read ``TCP[4|6][-CONNECT]:HOST:PORT[,connect-timeout=N]``."""
    kind, sep, rest = text.partition(":")
    if not sep or kind.upper() not in (
        "TCP",
        "TCP4",
        "TCP6",
        "TCP-CONNECT",
        "TCP4-CONNECT",
        "TCP6-CONNECT",
    ):
        return None
    address, _, opts = rest.partition(",")
    timeout: float | None = None
    if opts:
        name, eq, value = opts.partition("=")
        if name.lower() != "connect-timeout" or not eq or _NUMBER_RE.fullmatch(value) is None:
            return None
        timeout = float(value)
    if address.startswith("["):
        host, sep, port_text = address[1:].partition("]:")
        if not sep:
            return None
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep or ":" in host:
            return None
    target = _relay_target(host, port_text)
    if target is None:
        return None
    return target[0], target[1], timeout


def parse_relay(remote_command: str) -> Relay | None:
    """Recognise a plain TCP relay remote command (nc, ncat, netcat, socat); else None."""
    split = _split_shell(remote_command)
    if isinstance(split, str) or any(w.tilde for w in split):
        return None
    args = [w.text for w in split]
    if args and args[0] == "exec":
        args = args[1:]
    if not args:
        return None
    path = args[0]
    program = path.rsplit("/", 1)[-1]
    # A bare name, or an absolute path; a relative path depends on the remote cwd.
    if "/" in path and not path.startswith("/"):
        return None
    if program in _RELAY_NC:
        return _parse_nc(program, args[1:])
    if program == "ncat":
        return _parse_ncat(program, args[1:])
    if program == "socat" and len(args) == 3:
        stdio = {"-", "stdio"}
        if args[1].lower() in stdio:
            found = _parse_socat_address(args[2])
        elif args[2].lower() in stdio:
            found = _parse_socat_address(args[1])
        else:
            return None
        if found is None:
            return None
        return Relay(found[0], found[1], program, connect_timeout=found[2])
    return None
