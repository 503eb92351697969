"""ProxyJump grammar: ``none`` or a comma list of ``[user@]host[:port]`` / ``ssh://`` URIs.

Pure parsing, no I/O. The accepted and rejected forms follow OpenSSH 9.2p1's
``readconf.c:parse_jump`` (checked against ``ssh -G`` in ``tests/test_jumpspec.py``),
with these deliberate differences:

* a service name as port (``host:ssh``) is rejected: resolving it would read
  ``/etc/services``, and no real configuration relies on it;
* an empty host (``[]:22``) is rejected: there is nothing to connect to;
* ``none`` followed by a comment or a second word means ``none`` (9.2 then jumps
  through a host called "none");
* a control character anywhere in a user or host name is rejected, literal or
  URL-decoded (OpenSSH 9.2 rejects only a decoded NUL in a file; 10.1 rejects
  decoded control characters, CVE-2025-61984/61985);
* a decoded ``ssh://`` user that is not UTF-8 is rejected (paramiko needs a str).

Tokens are not expanded here. As in OpenSSH 9.2, ``%h`` in a user or host is kept
literally and a port must be numeric, so ``%r@%h:%p`` is rejected.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

__all__ = ["JumpHost", "parse_jump_element", "parse_proxy_jump"]

# strtonum(3) as used by OpenSSH's a2port(): optional '+', ASCII decimal digits only.
# (Python's int() would also take "2_2" and non-ASCII digits, which ssh rejects.)
_PORT_RE = re.compile(r"\+?[0-9]+")
# misc.c:valid_domain() for ssh:// hosts: ASCII letters, digits, '.', '-', '_'.
_URI_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# ssh splits configuration arguments on these bytes only, not on Unicode spaces.
_WORD_SPLIT_RE = re.compile(r"[ \t\r\n]+")
_HEX = frozenset("0123456789abcdefABCDEF")
_URI_PREFIX = "ssh://"


class _ElementError(ValueError):
    """A bad element; the caller turns it into the message naming the whole value."""


@dataclass(frozen=True)
class JumpHost:
    """One hop of a ProxyJump list; ``port``/``user`` are None when not given."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        """Format back to ``[user@]host[:port]``, bracketing hosts that need it."""
        host = self.host
        # Brackets whenever the host would otherwise be cut at ':' or '/', so that
        # the string always parses back to the same JumpHost (IPv6 literals mostly).
        if ":" in host or "/" in host or host.startswith("["):
            host = f"[{host}]"
        text = host if self.user is None else f"{self.user}@{host}"
        if text.startswith(_URI_PREFIX) and _uri_host(self.host):
            # A user that reads as the URI scheme ("ssh://" itself) goes in a URI,
            # where it is percent-encoded (and decoded back, as OpenSSH does). With a
            # host a URI can not carry either, no spelling parses back: keep the plain.
            text = f"{_URI_PREFIX}{urllib.parse.quote(self.user or '', safe='')}@{host}"
        return text if self.port is None else f"{text}:{self.port}"


def _uri_host(host: str) -> bool:
    """Whether ``host`` survives a trip through the URI form unchanged."""
    return (
        _URI_HOST_RE.fullmatch(host) is not None
        and ".." not in host
        and not host.endswith(".")
    )


def _has_control(text: str) -> bool:
    """Tell whether text holds a C0 control character or DEL."""
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _parse_port(text: str) -> int:
    """Convert a port string as OpenSSH's a2port() does, minus service names."""
    if _PORT_RE.fullmatch(text) is None:
        raise _ElementError("bad port")
    port = int(text)
    if not 0 < port <= 65535:
        raise _ElementError("bad port")
    return port


def _split_host_port(rest: str) -> tuple[str, str, str]:
    """Split ``host[:port]`` / ``[host]:port`` into (host, delimiter, remainder)."""
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise _ElementError("unterminated '['")
        host, after = rest[1:end], rest[end + 1 :]
        # After the closing bracket only the end or a delimiter may follow.
        if after and after[0] not in ":/":
            raise _ElementError("junk after ']'")
        return host, after[:1], after[1:]
    match = re.search(r"[:/]", rest)
    if match is None:
        return rest, "", ""
    return rest[: match.start()], match.group(), rest[match.end() :]


def _url_decode(text: str) -> str:
    """Decode %XX escapes and '+' as OpenSSH's urldecode() does (bytes read as UTF-8)."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "+":
            out += b" "
        elif char == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise _ElementError("bad %-escape in user")
            out.append(int(pair, 16))
            i += 2
        else:
            out += char.encode("utf-8", "surrogatepass")
        i += 1
    try:
        # ssh takes any bytes; a str user for paramiko must be valid UTF-8.
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise _ElementError("user is not valid UTF-8") from None


def _parse_uri(text: str) -> JumpHost:
    """Parse ``ssh://[user[;params]@]host[:port][/]`` (no path, as parse_ssh_uri)."""
    rest = text[len(_URI_PREFIX) :]
    user: str | None = None
    at = rest.find("@")  # the first '@' here, unlike the non-URI form
    if at >= 0:
        # ';' starts connection parameters (RFC draft), which ssh ignores.
        raw_user = rest[:at].split(";", 1)[0]
        if not raw_user:
            raise _ElementError("empty user")
        user = _url_decode(raw_user)
        rest = rest[at + 1 :]
    host, delim, after = _split_host_port(rest)
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]  # valid_domain() drops one trailing dot
    if not host:
        raise _ElementError("empty host")
    if _URI_HOST_RE.fullmatch(host) is None or ".." in host:
        raise _ElementError("bad host name in URI")
    port: int | None = None
    path = after
    if delim == ":":
        port_text, slash, path = after.partition("/")
        if port_text or slash:
            port = _parse_port(port_text)
    if path:
        raise _ElementError("a path is not allowed")
    return JumpHost(host=host, user=user, port=port)


def _parse_plain(text: str) -> JumpHost:
    """Parse ``[user@]host[:port]`` / ``[user@][host]:port``; the user ends at the last '@'."""
    user: str | None = None
    rest = text
    if "@" in text:
        user, rest = text.rsplit("@", 1)
        if not user:
            raise _ElementError("empty user")
    host, delim, after = _split_host_port(rest)
    if not host:
        raise _ElementError("empty host")
    if delim == "/":
        raise _ElementError("'/' is not allowed")
    port = _parse_port(after) if after else None
    return JumpHost(host=host, user=user, port=port)


def _parse_element(text: str) -> JumpHost:
    """Parse one element, raising _ElementError with a short reason."""
    if not text:
        raise _ElementError("empty element")
    jump = _parse_uri(text) if text.startswith(_URI_PREFIX) else _parse_plain(text)
    if _has_control(jump.host) or (jump.user is not None and _has_control(jump.user)):
        raise _ElementError("control character in name")
    return jump


def parse_jump_element(text: str) -> JumpHost:
    """Parse one ProxyJump element; ValueError names the element like parse_proxy_jump."""
    try:
        # These would be cut off or split by parse_proxy_jump; never part of one element.
        if any(c in text for c in ", \t\r\n#"):
            raise _ElementError("not a single element")
        return _parse_element(text)
    except _ElementError as exc:
        raise ValueError(f'Invalid ProxyJump "{text}": {exc}') from None


def parse_proxy_jump(value: str) -> tuple[JumpHost, ...] | None:
    """Parse a ProxyJump value: None for ``none``, else the hops left to right."""
    # ssh reads one argument word; further words are ignored (OpenSSH 9.2 behaviour).
    words = _WORD_SPLIT_RE.split(value.strip(" \t\r\n"), maxsplit=1)
    word = words[0]
    # ASCII-only comparison: str.lower() folds some non-ASCII letters to ASCII.
    # Compared before cutting at '#', as ssh does: "none#c" is a host named none.
    if word.isascii() and word.lower() == "none":
        return None
    # parse_jump() cuts at the first '#', even inside the word.
    word = word.split("#", 1)[0]
    hops: list[JumpHost] = []
    for element in word.split(","):
        try:
            hops.append(_parse_element(element))
        except _ElementError as exc:
            raise ValueError(f'Invalid ProxyJump "{value}": {exc} in "{element}"') from None
    return tuple(hops)
