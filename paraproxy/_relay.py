"""A minimal netcat in Python: ``python -m paraproxy._relay HOST PORT``.

It connects to HOST:PORT, copies stdin to the socket and the socket to stdout until both
directions reached EOF, passing each EOF on as a half-close, and exits 0. When it can not
connect it prints why on stderr and exits 1, as ``nc`` does. stdin and stdout may be pipes
or sockets (paraproxy hands its ProxyCommand one end of a socket pair as fd 0 and fd 1).

The demo's ProxyCommand runs it, so the demo needs no ``nc``. Standard library only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import sys
import threading
from collections.abc import Callable, Sequence

__all__ = ["main"]

log = logging.getLogger(__name__)

_CHUNK = 65536
_USAGE = "usage: python -m paraproxy._relay HOST PORT\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Relay between stdin/stdout and HOST:PORT; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not args[1].isdigit():
        sys.stderr.write(_USAGE)
        return 2
    host, port = args[0], int(args[1])
    try:
        sock = socket.create_connection((host, port))
    except OSError as exc:
        sys.stderr.write(f"paraproxy._relay: connect to {host} port {port} failed: {_why(exc)}\n")
        return 1
    with sock:
        # SSH key exchange is a series of small writes: Nagle's algorithm against the
        # peer's delayed ACKs would add tens of milliseconds per round trip.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _relay(sock, stdin_fd=0, stdout_fd=1)


def _relay(sock: socket.socket, stdin_fd: int, stdout_fd: int) -> int:
    """Copy both ways until both reached EOF; return 0, or 1 after a network error."""
    # One thread per direction, so a blocked write on one side never stalls the other.
    state = _State()
    upstream = threading.Thread(
        target=state.guard,
        args=(_stdin_to_socket, stdin_fd, sock, state),
        name="paraproxy-relay-stdin",
        daemon=True,
    )
    upstream.start()
    state.guard(_socket_to_stdout, sock, stdout_fd, state)
    # No deadline: like nc, the relay lasts until stdin ends too.
    upstream.join()
    for exc in state.errors:
        sys.stderr.write(f"paraproxy._relay: {_why(exc)}\n")
    return 1 if state.errors else 0


class _State:
    """What the two copy threads share: whether the local side hung up, and network errors."""

    def __init__(self) -> None:
        """Nothing happened yet."""
        self.local_done = threading.Event()
        self.errors: list[OSError] = []

    def guard(self, copy: Callable[..., None], *args: object) -> None:
        """Run one direction; keep a network error unless the local side had hung up."""
        try:
            copy(*args)
        except OSError as exc:
            # Once our parent closed its end, the teardown of the TCP side is not news.
            if not self.local_done.is_set():
                self.errors.append(exc)


def _stdin_to_socket(stdin_fd: int, sock: socket.socket, state: _State) -> None:
    """Copy stdin to the socket; at EOF, half-close the socket (the peer sees EOF)."""
    try:
        while True:
            try:
                data = os.read(stdin_fd, _CHUNK)
            except OSError:
                # A socketpair whose other end was closed with data unread gives
                # ECONNRESET instead of EOF: either way our parent hung up.
                data = b""
            if not data:
                state.local_done.set()
                break
            sock.sendall(data)
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)


def _socket_to_stdout(sock: socket.socket, stdout_fd: int, state: _State) -> None:
    """Copy the socket to stdout; at EOF, close our stdout so the reader sees EOF."""
    try:
        while True:
            data = sock.recv(_CHUNK)
            if not data:
                break
            view = memoryview(data)
            while view:
                try:
                    written = os.write(stdout_fd, view)
                except (BrokenPipeError, ConnectionResetError):
                    state.local_done.set()  # nobody reads us any more: stop quietly
                    return
                view = view[written:]
    finally:
        _end_stdout(stdout_fd)


def _end_stdout(stdout_fd: int) -> None:
    """Signal EOF on stdout, whether it is a pipe or a socket shared with stdin."""
    # When fd 0 and fd 1 are the same socket, closing fd 1 alone sends nothing: the
    # socket stays open through fd 0. shutdown(SHUT_WR) half-closes it for real.
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.fstat(stdout_fd).st_mode):
            with socket.socket(fileno=os.dup(stdout_fd)) as out:
                out.shutdown(socket.SHUT_WR)
    # For a pipe, EOF means closing the write end. Replace fd 1 with /dev/null rather than
    # closing it, so the interpreter's own stdout flush at exit finds a valid descriptor.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stdout_fd)
    finally:
        os.close(devnull)


def _why(exc: BaseException) -> str:
    """A short reason for ``exc``: its strerror, else its text."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
