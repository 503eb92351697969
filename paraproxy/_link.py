"""A hop's channel dressed as the next transport's socket, read in large chunks.

paramiko's :class:`~paramiko.Transport` reads its socket a packet at a time:
the first cipher block, then the rest. Handed a :class:`~paramiko.Channel`,
each of those reads cuts the front off the channel's buffer (a
``del array[:n]`` over up to a window's worth of bytes), so a download
through a hop spends its time moving memory: measured, 97 MB/s through two
hops against 259 for ``ssh -J``. Taking everything buffered in one read and
serving the transport's small reads from that chunk removes the copying
without a thread and without changing a byte on the wire. The channel's
buffer itself keeps the packets as they came and joins them at the read
(:class:`_ChunkPipe`), instead of copying each into an array and out again.

The adapter also keeps paramiko's closing quirks out of the caller's way: a
transport closes its socket when its thread ends, and closing a channel
whose hop is already gone raises inside that thread.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import paramiko
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

__all__ = ["ChannelLink"]

logger = logging.getLogger(__name__)

#: The most one read takes from the channel (its whole buffer, normally).
_CHUNK = 1 << 20


class _Chunks:
    """Bytes in arrival order: appended without copying, taken from the front."""

    def __init__(self, first: bytes = b"") -> None:
        self._parts: collections.deque[bytes] = collections.deque()
        self._size = 0
        self.append(first)

    def __len__(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        """Keep ``data`` (a packet's payload: paramiko hands over a fresh bytes object)."""
        if data:
            self._parts.append(bytes(data))
            self._size += len(data)

    def take(self, limit: int | None = None) -> bytes:
        """Remove and return up to ``limit`` bytes from the front (everything if None)."""
        parts = self._parts
        if limit is None or limit >= self._size:
            out = parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            self._size = 0
            return out
        taken: list[bytes] = []
        need = limit
        while need:
            head = parts[0]
            if len(head) <= need:
                taken.append(parts.popleft())
                need -= len(head)
            else:
                taken.append(head[:need])
                parts[0] = head[need:]
                need = 0
        self._size -= limit
        return b"".join(taken)


if TYPE_CHECKING:  # generic in the type stubs only
    _Pipe = BufferedPipe[bytes]
else:
    _Pipe = BufferedPipe


class _ChunkPipe(_Pipe):
    """paramiko's channel buffer, storing packets as they came instead of in an array.

    :class:`~paramiko.buffered_pipe.BufferedPipe` copies every payload into an
    ``array`` and copies it out again, then deletes it from the array's front.
    A link reads whole buffers anyway, so keeping the payloads and joining
    them at the read saves a copy of every byte; the locking, waiting and
    closing semantics are paramiko's.
    """

    # paramiko's own attributes (the type stubs leave private ones out).
    _buffer: _Chunks
    _lock: threading.Lock
    _cv: threading.Condition
    _event: threading.Event | None
    _closed: bool

    def _buffer_frombytes(self, data: bytes) -> None:
        self._buffer.append(data)

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        """Up to ``nbytes``; ``b""`` once closed and empty; PipeTimeout after ``timeout``."""
        with self._lock:
            if not self._buffer:
                if self._closed:
                    return b""
                if timeout == 0.0:
                    raise PipeTimeout()
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._buffer and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0.0:
                        raise PipeTimeout()
                    self._cv.wait(left)
            out = self._buffer.take(nbytes)
            if not self._buffer and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def empty(self) -> bytes:
        """Everything buffered, removed."""
        with self._lock:
            out = self._buffer.take()
            if self._event is not None and not self._closed:
                self._event.clear()
            return out


def _store_chunks(pipe: Any) -> None:
    """Turn a channel's buffer into a :class:`_ChunkPipe`, keeping what it holds.

    Done in place, under the buffer's own lock: the transport thread may be
    feeding it at this very moment, through a reference it already holds.
    """
    with pipe._lock:
        if not isinstance(pipe, _ChunkPipe):
            pipe._buffer = _Chunks(pipe._buffer.tobytes())
            pipe.__class__ = _ChunkPipe


class ChannelLink:
    """A :class:`paramiko.Channel` with the socket methods a Transport uses."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        _store_chunks(channel.in_buffer)
        self._chunk = b""
        self._offset = 0
        self._done = False

    def recv(self, nbytes: int) -> bytes:
        """Up to ``nbytes``: from the current chunk, or a new chunk from the channel."""
        if self._offset >= len(self._chunk):
            self._chunk = self.channel.recv(_CHUNK)
            self._offset = 0
            if not self._chunk:
                return b""
        start = self._offset
        self._offset = start + nbytes
        return self._chunk[start:self._offset]

    def send(self, data: bytes) -> int:
        """Send what the channel's window allows now; return how much."""
        return self.channel.send(data)

    def sendall(self, data: bytes) -> None:
        """Send everything."""
        self.channel.sendall(data)

    def settimeout(self, timeout: float | None) -> None:
        """The channel's read timeout (paramiko's transport sets 0.1 s)."""
        self.channel.settimeout(timeout)

    def gettimeout(self) -> float | None:
        """The channel's read timeout."""
        return self.channel.gettimeout()

    def fileno(self) -> int:
        """The channel's pipe, for select()."""
        return self.channel.fileno()

    @property
    def _closed(self) -> bool:
        """paramiko's ``Transport.stop_thread`` polls this, as on a real socket."""
        return self._done or bool(self.channel.closed)

    def shutdown(self, how: int) -> None:
        """Half-close like a socket: SHUT_WR sends EOF, SHUT_RD stops reading."""
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.channel.shutdown_write()
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self.channel.shutdown_read()

    def close(self) -> None:
        """The transport above is done: send EOF, but keep the channel for its owner.

        A relay's exit status (``nc: connection refused``, status 1) arrives on
        the channel after its EOF; closing at once would lose it. The owner
        (the chain, or the hop above) calls :meth:`release` when it is done.
        """
        self._done = True
        try:
            self.channel.shutdown_write()
        except (EOFError, OSError, paramiko.SSHException):
            logger.debug("EOF on a channel whose hop is gone", exc_info=True)

    def release(self) -> None:
        """Close the channel; never raises (the hop below may be gone already)."""
        self._done = True
        try:
            self.channel.close()
        except (EOFError, OSError, paramiko.SSHException):
            logger.debug("closing a channel whose hop is gone", exc_info=True)

    def __repr__(self) -> str:
        """Name the channel."""
        return f"<ChannelLink {self.channel!r}>"
