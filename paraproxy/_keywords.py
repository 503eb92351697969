"""The table of every ssh_config keyword OpenSSH knows (up to 10.x), with how to parse it.

paraproxy must refuse what OpenSSH refuses and accept what it accepts, so every
keyword of current releases is listed, including the Debian GSSAPI patch set
(the Debian/Ubuntu ``ssh`` knows them) and the deprecated and unsupported names
OpenSSH still recognises and ignores.  Only the keywords paraproxy honours get
their values checked as strictly as OpenSSH does; the rest are checked for
their argument count and obvious syntax.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Mapping, Sequence

__all__ = [
    "ACCUMULATING",
    "CHOICES",
    "check_special",
    "KEYWORDS",
    "Kind",
    "canonical_keyword",
    "parse_bool",
    "parse_port",
    "parse_time",
]

logger = logging.getLogger(__name__)


class Kind:
    """How a keyword's arguments are read and stored (names of the parse rules)."""

    FLAG = "flag"  # yes/no/true/false
    STRING = "string"  # exactly one argument, first value wins
    INT = "int"  # one non-negative integer
    PORT = "port"  # 1..65535 or a service name
    TIME = "time"  # convtime() value or "none"
    LIST = "list"  # one or more arguments, the first line wins
    ARGS = "args"  # one or more arguments kept as one value, the first line wins
    ACCUM = "accum"  # one argument per line, every line accumulates
    ACCUM_LIST = "accum_list"  # several arguments per line, every line accumulates
    FORWARD = "forward"  # one or two arguments kept as one value, accumulates
    COMMAND = "command"  # the rest of the line verbatim
    CHOICE = "choice"  # one argument out of a fixed set (case-insensitive)
    IGNORED = "ignored"  # deprecated or unsupported: accepted, logged, ignored
    SPECIAL = "special"  # Host, Match, Include, ProxyJump: handled by config.py


# Keyword -> kind.  Order and grouping follow readconf.c's keywords[] table.
KEYWORDS: Mapping[str, str] = {
    # Deprecated and unsupported names: recognised, ignored (readconf.c).
    "protocol": Kind.IGNORED,
    "cipher": Kind.IGNORED,
    "fallbacktorsh": Kind.IGNORED,
    "globalknownhostsfile2": Kind.IGNORED,
    "rhostsauthentication": Kind.IGNORED,
    "userknownhostsfile2": Kind.IGNORED,
    "useroaming": Kind.IGNORED,
    "usersh": Kind.IGNORED,
    "useprivilegedport": Kind.IGNORED,
    "afstokenpassing": Kind.IGNORED,
    "kerberosauthentication": Kind.IGNORED,
    "kerberostgtpassing": Kind.IGNORED,
    "rsaauthentication": Kind.IGNORED,
    "rhostsrsaauthentication": Kind.IGNORED,
    "compressionlevel": Kind.IGNORED,
    "useblacklistedkeys": Kind.IGNORED,
    # GSSAPI, upstream and the Debian key-exchange patch.
    "gssapiauthentication": Kind.FLAG,
    "gssapidelegatecredentials": Kind.FLAG,
    "gssapikeyexchange": Kind.FLAG,
    "gssapiclientidentity": Kind.STRING,
    "gssapiserveridentity": Kind.STRING,
    "gssapirenewalforcesrekey": Kind.FLAG,
    "gssapitrustdns": Kind.FLAG,
    "gssapikexalgorithms": Kind.STRING,
    "pkcs11provider": Kind.STRING,
    "smartcarddevice": Kind.STRING,
    "forwardagent": Kind.STRING,  # yes, no, a socket path or ${ENV}
    "forwardx11": Kind.FLAG,
    "forwardx11trusted": Kind.FLAG,
    "forwardx11timeout": Kind.TIME,
    "exitonforwardfailure": Kind.FLAG,
    "xauthlocation": Kind.STRING,
    "gatewayports": Kind.FLAG,
    "passwordauthentication": Kind.FLAG,
    "kbdinteractiveauthentication": Kind.FLAG,
    "kbdinteractivedevices": Kind.STRING,
    "challengeresponseauthentication": Kind.FLAG,
    "skeyauthentication": Kind.FLAG,
    "tisauthentication": Kind.FLAG,
    "pubkeyauthentication": Kind.CHOICE,
    "dsaauthentication": Kind.CHOICE,
    "hostbasedauthentication": Kind.FLAG,
    "identityfile": Kind.ACCUM,
    "identityfile2": Kind.ACCUM,
    "identitiesonly": Kind.FLAG,
    "certificatefile": Kind.ACCUM,
    "addkeystoagent": Kind.ARGS,  # a choice or a time, "confirm TIME"
    "identityagent": Kind.STRING,
    "hostname": Kind.STRING,
    "hostkeyalias": Kind.STRING,
    "proxycommand": Kind.COMMAND,
    "port": Kind.PORT,
    "ciphers": Kind.STRING,
    "macs": Kind.STRING,
    "remoteforward": Kind.FORWARD,
    "localforward": Kind.FORWARD,
    "dynamicforward": Kind.FORWARD,
    "permitremoteopen": Kind.LIST,
    "user": Kind.STRING,
    "host": Kind.SPECIAL,
    "match": Kind.SPECIAL,
    "tag": Kind.STRING,
    "escapechar": Kind.STRING,
    "globalknownhostsfile": Kind.LIST,
    "userknownhostsfile": Kind.LIST,
    "connectionattempts": Kind.INT,
    "batchmode": Kind.FLAG,
    "checkhostip": Kind.FLAG,
    "stricthostkeychecking": Kind.CHOICE,
    "compression": Kind.FLAG,
    "tcpkeepalive": Kind.FLAG,
    "keepalive": Kind.FLAG,
    "numberofpasswordprompts": Kind.INT,
    "syslogfacility": Kind.STRING,
    "loglevel": Kind.CHOICE,
    "logverbose": Kind.LIST,
    "preferredauthentications": Kind.STRING,
    "hostkeyalgorithms": Kind.STRING,
    "casignaturealgorithms": Kind.STRING,
    "bindaddress": Kind.STRING,
    "bindinterface": Kind.STRING,
    "clearallforwardings": Kind.FLAG,
    "enablesshkeysign": Kind.FLAG,
    "verifyhostkeydns": Kind.CHOICE,
    "nohostauthenticationforlocalhost": Kind.FLAG,
    "rekeylimit": Kind.ARGS,
    "connecttimeout": Kind.TIME,
    "addressfamily": Kind.CHOICE,
    "serveraliveinterval": Kind.TIME,
    "serveralivecountmax": Kind.INT,
    "sendenv": Kind.ACCUM_LIST,
    "setenv": Kind.LIST,
    "controlpath": Kind.STRING,
    "controlmaster": Kind.CHOICE,
    "controlpersist": Kind.STRING,  # a flag or a time
    "hashknownhosts": Kind.FLAG,
    "include": Kind.SPECIAL,
    "tunnel": Kind.CHOICE,
    "tunneldevice": Kind.STRING,
    "localcommand": Kind.COMMAND,
    "permitlocalcommand": Kind.FLAG,
    "remotecommand": Kind.COMMAND,
    "visualhostkey": Kind.FLAG,
    "kexalgorithms": Kind.STRING,
    "ipqos": Kind.ARGS,
    "requesttty": Kind.CHOICE,
    "sessiontype": Kind.CHOICE,
    "stdinnull": Kind.FLAG,
    "forkafterauthentication": Kind.FLAG,
    "proxyusefdpass": Kind.FLAG,
    "canonicaldomains": Kind.LIST,
    "canonicalizefallbacklocal": Kind.FLAG,
    "canonicalizehostname": Kind.CHOICE,
    "canonicalizemaxdots": Kind.INT,
    "canonicalizepermittedcnames": Kind.LIST,
    "streamlocalbindmask": Kind.STRING,
    "streamlocalbindunlink": Kind.FLAG,
    "revokedhostkeys": Kind.STRING,
    "fingerprinthash": Kind.CHOICE,
    "updatehostkeys": Kind.CHOICE,
    "hostbasedacceptedalgorithms": Kind.STRING,
    "hostbasedkeytypes": Kind.STRING,
    "pubkeyacceptedalgorithms": Kind.STRING,
    "pubkeyacceptedkeytypes": Kind.STRING,
    "ignoreunknown": Kind.STRING,
    "proxyjump": Kind.SPECIAL,
    "securitykeyprovider": Kind.STRING,
    "knownhostscommand": Kind.COMMAND,
    "requiredrsasize": Kind.INT,
    "enableescapecommandline": Kind.FLAG,
    "obscurekeystroketiming": Kind.STRING,
    "channeltimeout": Kind.LIST,
    "versionaddendum": Kind.COMMAND,
    "refuseconnection": Kind.FLAG,
    "warnweakcrypto": Kind.FLAG,
}

# Obsolete spellings stored under the current name, so first-wins spans both.
_ALIASES: Mapping[str, str] = {
    "identityfile2": "identityfile",
    "keepalive": "tcpkeepalive",
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "skeyauthentication": "kbdinteractiveauthentication",
    "tisauthentication": "kbdinteractiveauthentication",
    "dsaauthentication": "pubkeyauthentication",
    "hostbasedkeytypes": "hostbasedacceptedalgorithms",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "smartcarddevice": "pkcs11provider",
}

_YES_NO = ("yes", "no", "true", "false")

#: Allowed values of CHOICE keywords, compared case-insensitively.
CHOICES: Mapping[str, Sequence[str]] = {
    "pubkeyauthentication": (*_YES_NO, "unbound", "host-bound"),
    "dsaauthentication": (*_YES_NO, "unbound", "host-bound"),
    "stricthostkeychecking": (*_YES_NO, "ask", "off", "accept-new"),
    "loglevel": (
        "quiet",
        "fatal",
        "error",
        "info",
        "verbose",
        "debug",
        "debug1",
        "debug2",
        "debug3",
    ),
    "verifyhostkeydns": (*_YES_NO, "ask"),
    "addressfamily": ("inet", "inet6", "any"),
    "controlmaster": (*_YES_NO, "ask", "auto", "autoask"),
    "tunnel": (*_YES_NO, "point-to-point", "ethernet"),
    "requesttty": (*_YES_NO, "force", "auto"),
    "sessiontype": ("none", "subsystem", "default"),
    "canonicalizehostname": (*_YES_NO, "always"),
    "fingerprinthash": ("md5", "sha256"),
    "updatehostkeys": (*_YES_NO, "ask"),
}

#: Keywords whose every line adds values instead of the first one winning.
ACCUMULATING = frozenset(
    k for k, kind in KEYWORDS.items() if kind in (Kind.ACCUM, Kind.ACCUM_LIST, Kind.FORWARD)
)

_TIME_PART = re.compile(r"(\d+)([sSmMhHdDwW]?)")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INT_MAX = 2**31 - 1


def canonical_keyword(keyword: str) -> str:
    """Return the name a keyword's values are stored under (obsolete aliases folded)."""
    return _ALIASES.get(keyword, keyword)


def parse_bool(value: str) -> bool | None:
    """Read an OpenSSH yes/no flag (case-insensitive), or None when it is neither."""
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return True
    if lowered in ("no", "false"):
        return False
    return None


def parse_port(value: str) -> int | None:
    """Read a port like ``a2port``: 1..65535 in decimal, or a TCP service name."""
    if re.fullmatch(r"\+?\d+", value):
        number = int(value)
        return number if 0 < number <= 65535 else None
    try:
        # /etc/services only; getservbyname does no network I/O.
        return socket.getservbyname(value, "tcp")
    except OSError:
        return None


def parse_time(value: str) -> int | None:
    """Read a ``convtime`` duration (``90``, ``1m30s``) into seconds, or None if invalid."""
    if not value:
        return None
    total, pos = 0, 0
    while pos < len(value):
        part = _TIME_PART.match(value, pos)
        if part is None:
            return None
        total += int(part.group(1)) * _TIME_UNITS[part.group(2).lower()]
        if total > _INT_MAX:
            return None
        pos = part.end()
    return total


_IPQOS = frozenset(
    ["af11", "af12", "af13", "af21", "af22", "af23", "af31", "af32", "af33", "af41", "af42",
     "af43", "cs0", "cs1", "cs2", "cs3", "cs4", "cs5", "cs6", "cs7", "ef", "le", "lowdelay",
     "throughput", "reliability", "none"]
)  # fmt: skip


def _ipqos(value: str) -> bool:
    """Tell whether an IPQoS word is a known name or a number 0..255."""
    if value.lower() in _IPQOS:
        return True
    try:
        return 0 <= int(value, 0) <= 255
    except ValueError:
        return False


def _add_keys_to_agent(args: Sequence[str]) -> str | None:
    """AddKeysToAgent: yes/no/ask/confirm, a time, or ``confirm TIME``."""
    first = args[0].lower()
    if len(args) > 2:
        return "keyword addkeystoagent extra arguments at end of line"
    if first == "confirm" and len(args) == 2:
        return None if parse_time(args[1]) is not None else "invalid time value."
    if len(args) == 1 and (first in (*_YES_NO, "ask", "confirm") or parse_time(first) is not None):
        return None
    return "unsupported option"


def _escape_char(args: Sequence[str]) -> str | None:
    """EscapeChar: one character, ``^X``, or ``none``."""
    arg = args[0]
    ok = len(arg) == 1 or arg == "none" or (len(arg) == 2 and arg[0] == "^")
    return None if ok else "Bad escape character."


def _forward(keyword: str, args: Sequence[str]) -> str | None:
    """Local/RemoteForward: a listen spec and a target; RemoteForward alone is dynamic."""
    if len(args) == 1:
        if keyword == "localforward":
            return "Missing target argument."
        return None if args[0].rsplit(":", 1)[-1].isdigit() else "Bad forwarding specification."
    if len(args) > 2:
        return f"keyword {keyword} extra arguments at end of line"
    target = args[1]
    return None if (":" in target or "/" in target) else "Bad forwarding specification."


def _permit_remote_open(args: Sequence[str]) -> str | None:
    """PermitRemoteOpen: ``any``/``none`` alone, else host:port items."""
    lowered = [a.lower() for a in args]
    if any(a in ("any", "none") for a in lowered):
        return (
            None
            if len(args) == 1
            else (f'keyword permitremoteopen "{args[0]}" argument must appear alone.')
        )
    ok = all(":" in a and a.rsplit(":", 1)[1] not in ("",) for a in args)
    return None if ok else "bad port number in permitremoteopen"


def _octal_mask(args: Sequence[str]) -> str | None:
    """StreamLocalBindMask: an octal mask up to 0777."""
    try:
        return None if 0 <= int(args[0], 8) <= 0o777 else "Bad mask."
    except ValueError:
        return "Bad mask."


def check_special(keyword: str, args: Sequence[str]) -> str | None:
    """Check keyword-specific argument syntax; an error message, or None if fine."""
    if keyword == "addkeystoagent":
        return _add_keys_to_agent(args)
    if keyword == "escapechar":
        return _escape_char(args)
    if keyword in ("localforward", "remoteforward"):
        return _forward(keyword, args)
    if keyword == "permitremoteopen":
        return _permit_remote_open(args)
    if keyword == "streamlocalbindmask":
        return _octal_mask(args)
    if keyword == "controlpersist":
        ok = parse_bool(args[0]) is not None or parse_time(args[0]) is not None
        return None if ok else "Bad ControlPersist argument."
    if keyword == "ipqos":
        if len(args) > 2:
            return "keyword ipqos extra arguments at end of line"
        bad = next((a for a in args if not _ipqos(a)), None)
        return None if bad is None else f"Bad IPQoS value: {bad}"
    if keyword == "rekeylimit" and len(args) > 2:
        return "keyword rekeylimit extra arguments at end of line"
    if keyword == "sendenv" and any(a == "" or "=" in a for a in args):
        return "Invalid environment name."
    if keyword == "setenv" and any("=" not in a for a in args):
        return "Invalid SetEnv."
    if keyword == "channeltimeout":
        ok = [a.lower() for a in args] == ["none"] or all(
            "=" in a and parse_time(a.split("=", 1)[1]) is not None for a in args
        )
        return None if ok else f"invalid channel timeout {args[0]}"
    if keyword == "canonicalizepermittedcnames":
        bad = next((a for a in args if ":" not in a), None)
        return None if bad is None else f'Invalid permitted CNAME "{bad}"'
    return None
