"""Run a ProxyCommand the way OpenSSH runs it, bridged to paramiko by a socket pair.

The command runs as ``[$SHELL, "-c", "exec " + command]`` (``/bin/sh`` when
``SHELL`` is unset or empty), exactly as ``sshconnect.c:ssh_proxy_connect``
does, so pipes, ``$VARS`` and ``~`` behave as they do under ``ssh``.

The child's stdin and stdout are both one end of an anonymous
:func:`socket.socketpair`; paramiko gets the other end as its socket. No file
is created anywhere, the kernel carries data, EOF and back-pressure, and there
is no copying thread: measured, this runs at least at the speed of
``paramiko.ProxyCommand``, with one supervising thread and three descriptors
per connection (the socket, the stderr pipe and a pidfd; see
``docs/design.rst``). A pump thread between the pair and pipes would only be
needed on a platform whose children cannot take a socket as stdio.

One supervising thread per command drains its stderr into a bounded tail and
the log, notices when it exits (a pidfd where the platform has one), and then
makes paramiko see EOF at once. :meth:`ProxyCommandBridge.close` terminates the
whole process group, escalates to ``SIGKILL`` after a grace period, reaps the
child and closes every descriptor; it never raises and may be called twice.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from paraproxy.errors import ParaproxyWarning, ProxyCommandError, during

__all__ = ["ProxyCommandBridge", "shell_argv"]

logger = logging.getLogger(__name__)

#: Lines of the child's stderr kept for error messages.
_TAIL_LINES = 20
#: Bytes of one stderr line kept (longer lines are cut): the tail stays bounded.
_TAIL_LINE_BYTES = 512
#: Seconds between SIGTERM and SIGKILL when the proxy does not exit.
_GRACE = 1.0
#: Seconds to wait for the supervising thread after the child is gone.
_JOIN_DEADLINE = 5.0
#: How long ProxyUseFdpass waits for the socket when no timeout is set (paramiko's
#: own banner timeout, which bounds a plain ProxyCommand the same way).
_FDPASS_TIMEOUT = 15.0
#: Poll interval where no pidfd exists (macOS); only used while the child runs.
_POLL = 0.05


def shell_argv(command: str, environ: dict[str, str] | None = None) -> list[str]:
    """Return the argv OpenSSH uses for a ProxyCommand: ``$SHELL -c "exec CMD"``."""
    env = os.environ if environ is None else environ
    shell = env.get("SHELL") or "/bin/sh"
    # "exec" spares a lingering shell between us and the proxy (OpenSSH bz#1977).
    return [shell, "-c", "exec " + command]


class ProxyCommandBridge:
    """One running ProxyCommand and the socket paramiko talks through.

    :param command: the command line, tokens already expanded.
    :param label: a short name for logs and thread names (``gatekeeper:22``).

    Start it with :meth:`start`, hand :attr:`sock` to paramiko, and call
    :meth:`close` when the connection is done or failed.
    """

    def __init__(self, command: str, label: str) -> None:
        self.command = command
        self.label = label
        self.sock: socket.socket | None = None
        self.pid: int | None = None
        self.exit_status: int | None = None
        self.killed = False
        #: ProxyUseFdpass: the command passed back a connected socket.
        self.passed_socket = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._lock = threading.Lock()
        self._reaped = False
        self._exited = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> socket.socket:
        """Spawn the command and return the socket for paramiko."""
        ours, theirs = socket.socketpair()
        try:
            self._proc = self._spawn(theirs)
        except BaseException:
            ours.close()
            raise
        finally:
            # The child has its copy; ours must go now or EOF would never come.
            theirs.close()
        self.sock = ours
        self.pid = self._proc.pid
        logger.debug("proxy %s: started pid %d: %s", self.label, self.pid,
                     " ".join(shlex.quote(str(a)) for a in shell_argv(self.command)))
        self._thread = threading.Thread(
            target=self._supervise, name=f"paraproxy-proxy[{self.label}]", daemon=True
        )
        self._thread.start()
        return ours

    def receive_socket(self, timeout: float | None) -> socket.socket:
        """``ProxyUseFdpass yes``: take the connected socket the command passes back.

        As in OpenSSH (``ssh_proxy_fdpass_connect``), the command (e.g. ``nc -F``)
        connects, hands the socket over on its stdout with SCM_RIGHTS, and exits;
        the connection then needs no process and no pair. Call after :meth:`start`.
        """
        pair = self.sock
        assert pair is not None
        # Never wait forever: without a timeout, paramiko's own banner wait (15 s).
        seconds = _FDPASS_TIMEOUT if timeout is None else timeout
        pair.settimeout(seconds)
        try:
            _, fds, _, _ = socket.recv_fds(pair, 1, 4)
        except socket.timeout as exc:
            raise ProxyCommandError(
                self.command,
                f"timed out after {seconds:g} s waiting for its socket (ProxyUseFdpass)",
                phase="banner",
            ) from exc
        except OSError as exc:
            raise ProxyCommandError(
                self.command, f"passed no socket (ProxyUseFdpass): {exc}", phase="spawn"
            ) from exc
        finally:
            # Ours is done with: from now on the child's exit must not touch
            # the connection it passed.
            self.sock = None
            pair.close()
        if not fds:
            self.wait_exit(1.0)
            raise ProxyCommandError(
                self.command,
                f"proxy {self.describe_exit()} without passing a socket (ProxyUseFdpass)",
                self.exit_status, self.stderr_tail, phase="spawn",
            )
        for extra in fds[1:]:
            os.close(extra)
        conn = socket.socket(fileno=fds[0])
        self.passed_socket = True
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        logger.debug("proxy %s: received a connected socket; the connection needs no process",
                     self.label)
        return conn

    def _spawn(self, theirs: socket.socket) -> subprocess.Popen[bytes]:
        """Start ``$SHELL -c "exec CMD"`` with ``theirs`` as stdin and stdout."""
        argv = shell_argv(self.command)
        group: dict[str, object] = {}
        if sys.version_info >= (3, 11):
            group["process_group"] = 0
        else:  # pragma: no cover - Python < 3.11
            group["preexec_fn"] = os.setpgrp
        try:
            return _Popen(
                self._adopt,
                argv,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.PIPE,
                close_fds=True,
                # restore_signals resets SIGPIPE to default, as OpenSSH does.
                restore_signals=True,
                **group,
            )
        except OSError as exc:
            raise ProxyCommandError(
                self.command, f"could not start {argv[0]}: {exc.strerror or exc}", phase="spawn"
            ) from exc

    def _adopt(self, proc: subprocess.Popen[bytes]) -> None:
        """Own the child from the moment it exists, even if Popen() is then interrupted."""
        self._proc = proc

    def close(self) -> None:
        """Stop the command (TERM, then KILL after a grace period), reap it, free everything."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._shutdown_sock()
            if self._proc is not None and self._thread is None:
                self._reap_unsupervised()
            elif self._proc is not None:
                self._terminate()
                self._join()
        finally:
            self._release()

    def _reap_unsupervised(self) -> None:
        """Interrupted before the supervisor started: kill the group and reap here."""
        self._signal(signal.SIGKILL)
        self.killed = True
        self._reap()
        self._exited.set()
        self._done.set()

    def _terminate(self) -> None:
        """Signal the process group until the child is gone, escalating to SIGKILL."""
        if not self._exited.is_set() and self._signal(signal.SIGTERM):
            self.killed = True
            if not self._exited.wait(_GRACE):
                logger.warning("proxy %s: pid %s ignored SIGTERM for %.1f s; sending SIGKILL",
                               self.label, self.pid, _GRACE)
                self._signal(signal.SIGKILL)
                self._exited.wait(_GRACE)
        # The leader is gone; members that outlived it still hold stderr.
        if not self._done.wait(0.2):
            self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> bool:
        """Send ``signum`` to the child's process group while its pid is still ours."""
        with self._lock:
            # Only before reaping: until then the zombie keeps pid and pgid from reuse.
            if self._reaped or self.pid is None or self.pid <= 0:
                return False
            try:
                os.killpg(self.pid, signum)
            except ProcessLookupError:
                return False
            except PermissionError:
                # A child that became another user (sudo) can't be signalled;
                # the closed socket is then its only cue to stop.
                logger.debug("proxy %s: not permitted to signal pid %d", self.label, self.pid)
                return False
            return True

    def _join(self) -> None:
        """Wait for the supervisor, with a deadline; warn rather than hang."""
        thread = self._thread
        if thread is None:
            return
        thread.join(_JOIN_DEADLINE)
        if thread.is_alive():
            warnings.warn(
                f"paraproxy: proxy supervisor for {self.label} did not finish in "
                f"{_JOIN_DEADLINE:.0f} s",
                ParaproxyWarning,
                stacklevel=3,
            )

    def _shutdown_sock(self) -> None:
        """Wake any reader of paramiko's end: shutdown wakes recv(), close() does not."""
        sock = self.sock
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by paramiko, or the peer is gone

    def _release(self) -> None:
        """Close our socket end and the stderr pipe."""
        if self.sock is not None:
            self.sock.close()
        proc = self._proc
        if proc is not None and proc.stderr is not None and self._done.is_set():
            proc.stderr.close()
        if proc is not None and self._reaped:
            logger.debug("proxy %s: pid %s %s", self.label, self.pid, self.describe_exit())

    # -- supervision -------------------------------------------------------

    def _supervise(self) -> None:
        """Drain stderr, notice the exit, make paramiko see EOF, and reap."""
        try:
            self._drain_until_exit()
        except Exception:  # log now, in case nobody ever asks
            logger.exception("proxy %s: supervisor failed", self.label)
        finally:
            self._reap()
            self._exited.set()
            self._done.set()

    def _drain_until_exit(self) -> None:
        """Read stderr lines until EOF and the child's exit have both been seen."""
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        err_fd = proc.stderr.fileno()
        os.set_blocking(err_fd, False)
        pidfd = _pidfd_open(proc.pid)
        # poll(2) needs no descriptor of its own, unlike epoll: a connection costs
        # the socket, the stderr pipe and the pidfd, nothing more.
        sel = _selector()
        try:
            sel.register(err_fd, selectors.EVENT_READ, "stderr")
            if pidfd is not None:
                sel.register(pidfd, selectors.EVENT_READ, "exit")
            pending = b""
            stderr_open = True
            while stderr_open or not self._exited.is_set():
                timeout = None if pidfd is not None or self._exited.is_set() else _POLL
                for key, _ in sel.select(timeout):
                    if key.data == "exit":
                        sel.unregister(key.fd)
                        self._on_exit()
                    else:
                        pending, stderr_open = self._read_stderr(err_fd, pending)
                        if not stderr_open:
                            sel.unregister(err_fd)
                if pidfd is None and not self._exited.is_set() and self._peek_exit():
                    self._on_exit()
            if pending:
                self._keep_line(pending)
        finally:
            sel.close()
            if pidfd is not None:
                os.close(pidfd)

    def _read_stderr(self, fd: int, pending: bytes) -> tuple[bytes, bool]:
        """Read what is there; log and keep whole lines. Return (partial line, still open)."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return pending, True
        if not data:
            return pending, False
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            self._keep_line(line)
        if len(pending) > _TAIL_LINE_BYTES:
            # An endless line must not grow without bound.
            self._keep_line(pending)
            pending = b""
        return pending, True

    def _keep_line(self, raw: bytes) -> None:
        """Remember one stderr line in the tail and log it."""
        line = raw[:_TAIL_LINE_BYTES].decode("utf-8", "replace").rstrip("\r")
        self._tail.append(line)
        logger.debug("proxy %s stderr: %s", self.label, line)

    def _peek_exit(self) -> bool:
        """Has the child exited? Leaves it a zombie so its pid stays reserved."""
        assert self.pid is not None
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _on_exit(self) -> None:
        """The child exited: record it and make paramiko's next read return EOF."""
        self._exited.set()
        if self.sock is not None:
            try:
                # Whatever the child wrote is still delivered; then reads see EOF
                # even if a grandchild kept the other end open.
                self.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        logger.debug("proxy %s: pid %s exited", self.label, self.pid)

    def _reap(self) -> None:
        """Collect the child's status exactly once."""
        proc = self._proc
        if proc is None:
            return
        with self._lock:
            if self._reaped:
                return
            try:
                _, status = os.waitpid(proc.pid, 0)
            except ChildProcessError:
                status = 0
            self._reaped = True
            self.exit_status = os.waitstatus_to_exitcode(status)
            # Tell Popen, so it neither waits again nor warns when collected.
            proc.returncode = self.exit_status

    # -- reporting ---------------------------------------------------------

    @property
    def stderr_tail(self) -> str:
        """The last lines the command wrote on stderr."""
        return "\n".join(self._tail)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` for the command to exit; return its status or ``None``."""
        if self._done.wait(timeout):
            return self.exit_status
        return None

    def describe_exit(self) -> str:
        """Say how the command ended, in words (``exited with status 3``)."""
        status = self.exit_status
        if status is None:
            return "is still running"
        if status < 0:
            name = _signal_name(-status)
            return f"was killed by {name}" + (" (sent by paraproxy)" if self.killed else "")
        return f"exited with status {status}"

    def failure(self, phase: str, cause: BaseException | None = None) -> ProxyCommandError:
        """Build the error for a connection that failed in ``phase`` (banner, kex, auth)."""
        garbage = not_ssh_text(cause)
        if garbage is not None:
            # The proxy may have died of it (EPIPE when paramiko hung up), but
            # what went wrong is what it said.
            reason = garbage
            if self.exit_status is not None:
                reason += f"; then the proxy {self.describe_exit()}"
        elif self.exit_status is not None and not self.killed:
            reason = f"proxy {self.describe_exit()} {during(phase)}"
        else:
            what = _cause_text(cause)
            reason = f"connection failed {during(phase)}: {what}"
        return ProxyCommandError(
            self.command, reason, self.exit_status, self.stderr_tail, phase=phase
        )


#: paramiko's words for a peer that does not speak SSH.
_NOT_SSH = ("Indecipherable protocol version", "Incompatible version", "Invalid SSH banner")


def not_ssh_text(cause: BaseException | None) -> str | None:
    """``not an SSH server: ...`` when paramiko gave up on the peer's banner, else None."""
    text = str(cause or "")
    if any(marker in text for marker in _NOT_SSH):
        return f"not an SSH server: {text}"
    return None


def _cause_text(cause: BaseException | None) -> str:
    """A readable one-liner for a paramiko or socket exception."""
    if cause is None:
        return "unknown error"
    text = str(cause).strip()
    if isinstance(cause, EOFError) or not text:
        return "the proxy closed the connection"
    if isinstance(cause, OSError) and cause.errno in (errno.ECONNRESET, errno.EPIPE):
        return "the proxy closed the connection"
    return text


def _signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, or ``signal 99``."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class _Popen(subprocess.Popen):  # type: ignore[type-arg]
    """A Popen that hands itself to its owner as soon as the child exists.

    A KeyboardInterrupt between the fork and the return of ``Popen()`` would
    otherwise lose the child: no one could stop or reap it.
    """

    def __init__(self, adopt: Callable[[subprocess.Popen[bytes]], None], *args: Any,
                 **kwargs: Any) -> None:
        self._adopt = adopt
        super().__init__(*args, **kwargs)

    def _execute_child(self, *args: Any, **kwargs: Any) -> None:
        try:
            super()._execute_child(*args, **kwargs)  # type: ignore[misc]
        finally:
            if getattr(self, "pid", None):
                self._adopt(self)


def _selector() -> selectors.BaseSelector:
    """A selector that holds no descriptor (poll), where the platform has one."""
    poll_selector = getattr(selectors, "PollSelector", None)
    return poll_selector() if poll_selector is not None else selectors.DefaultSelector()


def _pidfd_open(pid: int) -> int | None:
    """A pidfd for ``pid`` where the OS has them (Linux 5.3+), else ``None``."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None

