"""Reading ssh_config files: safety checks, a parse cache, and OpenSSH's line tokenizer.

A file becomes a tuple of :class:`Line` (keyword, raw remainder, arguments),
cached on ``(path, device, inode, mtime_ns, size)`` so an edited file is read
again.  The tokenizer reproduces ``misc.c:strdelim`` for the keyword (``Key
Value``, ``Key=Value``, ``Key = Value``) and ``misc.c:argv_split`` for the
arguments (double and single quotes, backslash escapes, ``#`` comments).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from dataclasses import dataclass

from paraproxy.errors import ConfigError

__all__ = ["MAX_CONFIG_SIZE", "Line", "argv_split", "read_config", "split_line"]

logger = logging.getLogger(__name__)

#: Larger files are refused, as libssh does since CVE-2026-0965.
MAX_CONFIG_SIZE = 16 * 1024 * 1024
_WHITESPACE = " \t\r\n"
_CACHE_SIZE = 64
_cache: dict[tuple[str, int, int, int, int], tuple[Line, ...]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Line:
    """One config line: ``keyword`` lowercased ("" for blank/comment), ``rest`` raw, ``args`` split.

    ``args`` is None when the quotes do not balance (an error only if the line is used).
    """

    number: int
    keyword: str
    rest: str
    args: tuple[str, ...] | None


def _strdelim(text: str) -> tuple[str | None, str | None]:
    """Split off one token like ``misc.c:strdelim`` (one ``=`` may separate); (token, rest)."""
    index = next((i for i, c in enumerate(text) if c in _WHITESPACE + '"='), -1)
    if index < 0:
        return text, None
    if text[index] == '"':
        close = text.find('"', index + 1)
        if close < 0:
            return None, None
        token = text[:index] + text[index + 1 : close]
        return token, text[close + 1 :].lstrip(_WHITESPACE)
    token, rest = text[:index], text[index + 1 :].lstrip(_WHITESPACE)
    if text[index] != "=" and rest.startswith("="):
        rest = rest[1:].lstrip(_WHITESPACE)
    return token, rest


def _argv_token(text: str, i: int) -> tuple[str, int]:
    """Read one argv_split token starting at ``i``; raise ValueError on an open quote."""
    out: list[str] = []
    quote = ""
    while i < len(text):
        char = text[i]
        nxt = text[i + 1 : i + 2]
        if char == "\\" and (nxt in ("'", '"', "\\") or (not quote and nxt == " ")):
            out.append(nxt)
            i += 2
            continue
        if not quote and char in " \t":
            break
        if not quote and char in "'\"":
            quote = char
        elif quote and char == quote:
            quote = ""
        else:
            out.append(char)
        i += 1
    if quote:
        raise ValueError("invalid quotes")
    return "".join(out), i


def argv_split(text: str) -> tuple[str, ...]:
    """Split arguments like ``misc.c:argv_split``, stopping at a ``#`` that starts a token.

    :raises ValueError: on an unbalanced quote.
    """
    args: list[str] = []
    i = 0
    while i < len(text):
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        token, i = _argv_token(text, i)
        args.append(token)
    return tuple(args)


def split_line(raw: str, number: int) -> Line:
    """Tokenize one line of a config file (keyword lowercased)."""
    text = raw.rstrip(_WHITESPACE + "\f")
    keyword, rest = _strdelim(text)
    if keyword == "" and rest is not None:
        keyword, rest = _strdelim(rest)
    if not keyword or keyword.startswith("#"):
        return Line(number, "", "", ())
    rest = (rest or "").lstrip(_WHITESPACE)
    try:
        args: tuple[str, ...] | None = argv_split(rest)
    except ValueError:
        args = None
    return Line(number, keyword.lower(), rest, args)


def _check_owner(path: str, info: os.stat_result) -> None:
    """Refuse a file not owned by root or the user, or writable by group/others."""
    if (info.st_uid not in (0, os.getuid())) or (info.st_mode & 0o022):
        raise ConfigError(f"Bad owner or permissions on {path}", path)


def _read_capped(fd: int, path: str) -> bytes:
    """Read at most MAX_CONFIG_SIZE bytes from ``fd``; more is an error."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_CONFIG_SIZE:
            raise ConfigError(f"file larger than {MAX_CONFIG_SIZE} bytes refused", path)
        chunks.append(chunk)


def _parse(data: bytes) -> tuple[Line, ...]:
    """Tokenize a whole file; bytes that are not UTF-8 survive as surrogates."""
    text = data.decode("utf-8", errors="surrogateescape")
    raw_lines = text.split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    # getline() hands a C string on: anything after a NUL is invisible.
    return tuple(split_line(raw.split("\0", 1)[0], n) for n, raw in enumerate(raw_lines, 1))


def _cached(key: tuple[str, int, int, int, int], fd: int, path: str) -> tuple[Line, ...]:
    """Return the parsed lines for ``key``, reading ``fd`` on a cache miss."""
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    lines = _parse(_read_capped(fd, path))
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = lines
    return lines


def read_config(path: str, *, check_perm: bool, regular_only: bool) -> tuple[Line, ...] | None:
    """Read and tokenize ``path``; None if it does not exist.

    :param check_perm: apply OpenSSH's owner/mode check (user file, includes).
    :param regular_only: refuse anything but a regular file or a directory
        (read as empty, as OpenSSH does), for includes.
    :raises ConfigError: bad permissions, a refused file type, or a file > 16 MiB.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    if regular_only:
        # Opening a FIFO for reading blocks until a writer comes; O_NONBLOCK
        # returns at once so that fstat() can refuse it.
        flags |= getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise ConfigError(f"Can't open config file: {exc.strerror}", path) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            # OpenSSH opens a directory and reads nothing from it: an empty file.
            logger.debug("%s is a directory; nothing to read", path)
            return ()
        if regular_only and not stat.S_ISREG(info.st_mode):
            raise ConfigError("not a regular file; refused", path)
        if check_perm:
            _check_owner(path, info)
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_CONFIG_SIZE:
            raise ConfigError(f"file larger than {MAX_CONFIG_SIZE} bytes refused", path)
        if not stat.S_ISREG(info.st_mode):
            return _parse(_read_capped(fd, path))
        key = (path, info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
        return _cached(key, fd, path)
    finally:
        os.close(fd)
