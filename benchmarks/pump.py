"""The design paraproxy did *not* choose, kept here as a comparison only.

:class:`PumpBridge` gives paramiko one end of a socket pair, like paraproxy's
:class:`~paraproxy.proxycommand.ProxyCommandBridge`, but the child gets ordinary
pipes for stdin/stdout and one thread copies bytes between the other end of
the pair and those pipes (non-blocking, both directions, and stderr drained in
the same loop). It is what a portable design would need on a platform whose
children cannot take a socket as stdio; the benchmark measures what it costs.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading

_CHUNK = 256 * 1024
_LIMIT = 1024 * 1024


class PumpBridge:
    """Run ``$SHELL -c "exec CMD"`` with pipes, pumped to a socket pair by one thread."""

    def __init__(self, command: str, label: str) -> None:
        self.command = command
        self.label = label
        self.sock: socket.socket | None = None
        self._theirs: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> socket.socket:
        """Spawn the command and the pump; return paramiko's end."""
        ours, theirs = socket.socketpair()
        shell = os.environ.get("SHELL") or "/bin/sh"
        self._proc = subprocess.Popen(
            [shell, "-c", "exec " + self.command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
            start_new_session=True,
        )
        self.sock, self._theirs = ours, theirs
        self._thread = threading.Thread(target=self._pump, name=f"pump[{self.label}]", daemon=True)
        self._thread.start()
        return ours

    def _pump(self) -> None:
        """Copy pair <-> pipes until the child's stdout and stderr are closed."""
        proc, theirs = self._proc, self._theirs
        assert proc is not None and theirs is not None
        assert proc.stdin and proc.stdout and proc.stderr
        sin, sout, serr = proc.stdin.fileno(), proc.stdout.fileno(), proc.stderr.fileno()
        for fd in (sin, sout, serr):
            os.set_blocking(fd, False)
        theirs.setblocking(False)
        sfd = theirs.fileno()
        up = bytearray()  # paramiko -> child stdin
        down = bytearray()  # child stdout -> paramiko
        up_open = down_open = err_open = True
        stdin_open = True
        try:
            while down_open or down or err_open:
                rl: list[int] = []
                wl: list[int] = []
                if up_open and len(up) < _LIMIT:
                    rl.append(sfd)
                if down_open and len(down) < _LIMIT:
                    rl.append(sout)
                if err_open:
                    rl.append(serr)
                if up and stdin_open:
                    wl.append(sin)
                if down:
                    wl.append(sfd)
                if not rl and not wl:
                    break
                r, w, _ = select.select(rl, wl, [])
                if sfd in r:
                    data = _recv(theirs)
                    if data:
                        up += data
                    elif data is not None:
                        up_open = False
                if sout in r:
                    data = _read(sout)
                    if data:
                        down += data
                    elif data is not None:
                        down_open = False
                if serr in r and _read(serr) == b"":
                    err_open = False
                if sin in w:
                    n = _write(sin, up)
                    if n < 0:
                        stdin_open = False
                        up.clear()
                    else:
                        del up[:n]
                if sfd in w:
                    n = _send(theirs, down)
                    if n < 0:
                        down.clear()
                        down_open = False
                    else:
                        del down[:n]
                if not up_open and not up and stdin_open:
                    proc.stdin.close()
                    stdin_open = False
            with contextlib.suppress(OSError):
                theirs.shutdown(socket.SHUT_WR)
        finally:
            if stdin_open:
                with contextlib.suppress(OSError):
                    proc.stdin.close()

    def close(self) -> None:
        """Stop the child (TERM, then KILL), reap it, join the pump, close everything."""
        if self._closed:
            return
        self._closed = True
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(1.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._thread is not None:
            self._thread.join(5)
        for f in (self.sock, self._theirs):
            if f is not None:
                f.close()
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()


def _recv(s: socket.socket) -> bytes | None:
    """Read from the pair: data, ``b""`` at EOF, ``None`` if nothing is there."""
    try:
        return s.recv(_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _read(fd: int) -> bytes | None:
    """Read from a pipe: data, ``b""`` at EOF, ``None`` if nothing is there."""
    try:
        return os.read(fd, _CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _write(fd: int, buf: bytearray) -> int:
    try:
        return os.write(fd, buf)
    except BlockingIOError:
        return 0
    except OSError:
        return -1


def _send(s: socket.socket, buf: bytearray) -> int:
    try:
        return s.send(buf)
    except BlockingIOError:
        return 0
    except OSError:
        return -1
