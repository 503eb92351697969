"""Throwaway in-process SSH servers on loopback, for ``python -m paraproxy demo`` and the tests.

A :class:`DemoServer` is a paramiko ``Transport`` in server mode behind a listening socket on
``127.0.0.1``, with its own freshly generated Ed25519 host key. It does what a jump host must do
for paraproxy and nothing more:

* ``direct-tcpip`` channels (``ssh -W``, ProxyJump) to a real TCP connection;
* ``exec`` of a plain relay (``nc [-w N] HOST PORT``, ``socat - TCP:HOST:PORT``), bridged like
  ``nc`` would;
* ``exec`` of a few built-in commands (``hostname``, ``echo``, ``whoami``, ``true``, ``false``,
  ``cat``, ``sleep``), run without a shell.

Host names are looked up in the server's own ``hosts`` map before anything else, so "yuka behind
gatekeeper" is a logical topology made of loopback ports: ``gatekeeper.hosts["yuka"] =
yuka.address``. Names that are not in the map are unknown (there is no DNS in the demo network),
except IP literals and ``localhost``.

Not a general SSH server: no shell, no pty, no subsystems, no agent forwarding.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import hmac
import io
import ipaddress
import logging
import os
import selectors
import shlex
import socket
import threading
import time
from collections.abc import Iterable, Sequence

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_FAILED_CONNECT_FAILED,
    OPEN_SUCCEEDED,
)

from paraproxy._hostkeys import fingerprint

__all__ = ["DemoEvent", "DemoServer", "new_ed25519_key", "parse_relay_command"]

log = logging.getLogger(__name__)

_LOOPBACK = "127.0.0.1"
_CONNECT_TIMEOUT = 5.0  # for the server's own outgoing TCP connections
_CLOSE_DEADLINE = 5.0
_MAX_EVENTS = 10_000
_NC_NAMES = frozenset({"nc", "ncat", "netcat"})
_SOCAT_STDIO = frozenset({"-", "STDIO", "STDIN_STDOUT"})
_SOCAT_TCP = ("TCP:", "TCP4:", "TCP-CONNECT:", "TCP4-CONNECT:")

Address = tuple[str, int]


def new_ed25519_key(path: str | os.PathLike[str] | None = None) -> paramiko.Ed25519Key:
    """Generate an Ed25519 key; with ``path``, also write it there (OpenSSH format, mode 0600)."""
    # paramiko can load Ed25519 keys but not generate them; cryptography (a paramiko
    # dependency) can, and its OpenSSH serialisation is what paramiko reads.
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    if path is not None:
        # O_EXCL: never overwrite a key that is already there; 0600 as ssh requires.
        fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "wb") as file:
            file.write(pem)
    return paramiko.Ed25519Key(file_obj=io.StringIO(pem.decode("ascii")))


def parse_relay_command(command: str) -> tuple[str, int, float | None] | None:
    """Return ``(host, port, nc -w N)`` if ``command`` is a plain nc/socat relay, else None."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return None
    if not argv:
        return None
    program = os.path.basename(argv[0])
    if program in _NC_NAMES:
        return _parse_nc(argv[1:])
    if program == "socat" and len(argv) == 3:
        ends = [word for word in argv[1:] if word not in _SOCAT_STDIO]
        if len(ends) == 1 and ends[0].upper().startswith(_SOCAT_TCP):
            target = ends[0].split(":", 1)[1]
            host, _, port = target.rpartition(":")
            parsed = _port(port)
            if host and "," not in target and parsed is not None:
                return host, parsed, None
    return None


def _parse_nc(args: list[str]) -> tuple[str, int, float | None] | None:
    """Parse ``[-w N] [-q N] HOST PORT`` (the timing flags only); anything else is not a relay."""
    wait: float | None = None
    words: list[str] = []
    rest = iter(args)
    for word in rest:
        if word[:2] in ("-w", "-q") and len(word) >= 2:
            value = word[2:] or next(rest, "")
            try:
                seconds = float(value)
            except ValueError:
                return None
            if word[:2] == "-w":
                wait = seconds
        elif word.startswith("-"):
            return None
        else:
            words.append(word)
    if len(words) != 2:
        return None
    port = _port(words[1])
    return None if port is None else (words[0], port, wait)


def _port(text: str) -> int | None:
    """Return ``text`` as a TCP port number, or None."""
    if not text.isdigit():
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def _is_literal(host: str) -> bool:
    """Tell whether ``host`` needs no name service: an IP literal or ``localhost``."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class DemoEvent:
    """One thing a :class:`DemoServer` saw: ``kind`` is CONNECT, SSHAUTH, AUTHFAIL, EXEC, RELAY,
    DIRECT-TCPIP, REFUSED or CLOSE."""

    server: str
    connection: int
    kind: str
    detail: str

    def __str__(self) -> str:
        """Render as ``gatekeeper#1 EXEC nc -w1 yuka 22``."""
        return f"{self.server}#{self.connection} {self.kind} {self.detail}"


class DemoServer:
    """A throwaway SSH server on 127.0.0.1 that can relay onward; see the module docstring.

    :param name: shown in outputs; also what ``hostname`` prints.
    :param authorized_keys: public keys accepted for any user name.
    :param password: ``(user, password)`` to also accept password authentication.
    :param allow_forwarding: accept ``direct-tcpip`` channels (``AllowTcpForwarding``).
    :param allow_exec_relay: whether ``nc``/``socat`` exist on this host.
    :param hosts: the server's name service: ``"name"`` (for port 22) or ``"name:port"``
        mapped to the real address to connect to. It may be changed after construction.
    :param nc_idle_timeout: make ``nc -w N`` drop a relay idle for N seconds, as
        netcat-openbsd does. Off by default so slow test machines are not punished.

    In a test::

        key = new_ed25519_key()
        with DemoServer("yuka", [key]) as yuka, \
                DemoServer("gatekeeper", [key], hosts={"yuka": yuka.address}) as gatekeeper:
            client = paramiko.SSHClient()
            client.get_host_keys().add(f"[127.0.0.1]:{gatekeeper.port}", "ssh-ed25519",
                                       gatekeeper.host_key)
            client.connect("127.0.0.1", gatekeeper.port, username="u", pkey=key)
            ...  # open_channel("direct-tcpip", ("yuka", 22), ...) reaches yuka
            assert ("EXEC", "hostname") in [(e.kind, e.detail) for e in gatekeeper.events()]
    """

    def __init__(
        self,
        name: str,
        authorized_keys: Iterable[paramiko.PKey] = (),
        *,
        password: tuple[str, str] | None = None,
        allow_forwarding: bool = True,
        allow_exec_relay: bool = True,
        hosts: dict[str, Address] | None = None,
        nc_idle_timeout: bool = False,
    ) -> None:
        """Bind 127.0.0.1:0, generate the host key and start accepting connections."""
        self.name = name
        self.authorized_keys = list(authorized_keys)
        self.password = password
        self.allow_forwarding = allow_forwarding
        self.allow_exec_relay = allow_exec_relay
        self.hosts: dict[str, Address] = dict(hosts or {})
        self.nc_idle_timeout = nc_idle_timeout
        self.host_key: paramiko.PKey = new_ed25519_key()
        self._lock = threading.Lock()
        self._closed = False
        self._connections: dict[int, _Connection] = {}
        self._events: collections.deque[DemoEvent] = collections.deque(maxlen=_MAX_EVENTS)
        self._count = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._listener.bind((_LOOPBACK, 0))
            self._listener.listen(128)
            self.port: int = self._listener.getsockname()[1]
            self._acceptor = threading.Thread(
                target=self._accept_loop, name=f"paraproxy-demo[{name}]-accept", daemon=True
            )
            self._acceptor.start()
        except BaseException:
            self._listener.close()
            raise
        log.debug("demo server %s listening on %s:%d", name, _LOOPBACK, self.port)

    @property
    def address(self) -> Address:
        """The ``(host, port)`` the server listens on."""
        return (_LOOPBACK, self.port)

    def known_hosts_line(self, name: str | None = None) -> str:
        """A known_hosts line for the host key, under ``name`` (default ``[127.0.0.1]:PORT``)."""
        name = name if name is not None else f"[{_LOOPBACK}]:{self.port}"
        return f"{name} {self.host_key.get_name()} {self.host_key.get_base64()}"

    def events(self) -> list[DemoEvent]:
        """What the server saw so far, oldest first (the last 10 000 events)."""
        with self._lock:
            return list(self._events)

    def connection_count(self) -> int:
        """How many connections the server has accepted since it started."""
        with self._lock:
            return self._count

    def _record(self, connection: int, kind: str, detail: str) -> None:
        """Remember one event and log it."""
        event = DemoEvent(self.name, connection, kind, detail)
        with self._lock:
            self._events.append(event)
        log.debug("demo %s", event)

    def resolve(self, host: str, port: int) -> Address:
        """Map ``host:port`` through ``hosts``; raise OSError as a resolver or connect would."""
        mapped = self.hosts.get(f"{host}:{port}")
        if mapped is None and port == 22:
            mapped = self.hosts.get(host)
        if mapped is not None:
            return mapped
        if _is_literal(host):
            return (host, port)
        if host in self.hosts or any(key.startswith(f"{host}:") for key in self.hosts):
            raise ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def open_tcp(self, host: str, port: int) -> tuple[socket.socket, Address]:
        """Connect to ``host:port`` as this server would; return the socket and the real address."""
        address = self.resolve(host, port)
        sock = socket.create_connection(address, timeout=_CONNECT_TIMEOUT)
        # Interactive SSH traffic: Nagle against delayed ACKs costs 40 ms per round trip.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        return sock, address

    def _accept_loop(self) -> None:
        """Accept connections until close(); each gets its own thread and transport."""
        while True:
            try:
                sock, peer = self._listener.accept()
            except OSError as exc:
                if not self._closed:
                    log.warning("demo server %s: accept failed: %s", self.name, exc)
                return
            with self._lock:
                if self._closed:
                    sock.close()
                    return
                self._count += 1
                number = self._count
                connection = _Connection(self, sock, number)
                self._connections[number] = connection
            self._record(number, "CONNECT", f"from {peer[0]}:{peer[1]}")
            connection.start()

    def _forget(self, number: int) -> None:
        """Drop a finished connection from the table (its thread is ending)."""
        with self._lock:
            self._connections.pop(number, None)

    def close(self, timeout: float = _CLOSE_DEADLINE) -> None:
        """Stop accepting, close every connection and relay, join the threads; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connections = list(self._connections.values())
        deadline = time.monotonic() + timeout
        self._wake_acceptor()
        for connection in connections:
            connection.close()
        _join(self._acceptor, deadline)
        self._listener.close()
        for connection in connections:
            connection.join(deadline)
        log.debug("demo server %s closed", self.name)

    def _wake_acceptor(self) -> None:
        """Unblock accept(): shutdown() does it on Linux, a connection to ourselves everywhere."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        if self._acceptor.is_alive():
            with contextlib.suppress(OSError), socket.create_connection(self.address, 1.0):
                pass

    def __enter__(self) -> DemoServer:
        """Use as a context manager; close() on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the server."""
        self.close()

    def __repr__(self) -> str:
        """Show name, address and state."""
        state = "closed" if self._closed else "open"
        return f"<DemoServer {self.name} {_LOOPBACK}:{self.port} {state}>"


def _join(thread: threading.Thread, deadline: float) -> None:
    """Join ``thread`` until ``deadline`` (monotonic); log it if it is still running."""
    if thread is threading.current_thread():
        return
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        log.warning("thread %s did not stop in time", thread.name)


class _Connection:
    """One accepted connection: its socket, transport, workers; owned by the DemoServer."""

    def __init__(self, server: DemoServer, sock: socket.socket, number: int) -> None:
        """Take ownership of ``sock``; nothing runs until start()."""
        self.server = server
        self.number = number
        self.label = f"paraproxy-demo[{server.name}]"
        self.user: str | None = None
        self.auth_method: str | None = None
        self._auth_recorded = False
        self._sock: socket.socket | None = sock
        self._transport: paramiko.Transport | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._workers: set[_Worker] = set()
        self._pending: dict[int, tuple[socket.socket, str]] = {}
        self._fence_lock = threading.Lock()
        with contextlib.suppress(OSError):  # a peer that already reset: the handshake fails
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(
            target=self._run, name=f"{self.label}-conn{number}", daemon=True
        )

    def record(self, kind: str, detail: str) -> None:
        """Record an event of this connection on the server."""
        self.server._record(self.number, kind, detail)

    def start(self) -> None:
        """Start the connection's thread."""
        self._thread.start()

    def _run(self) -> None:
        """Handshake, then hand out accepted channels until the transport ends."""
        try:
            transport = self._start_transport()
            if transport is not None:
                self._serve(transport)
        except Exception:
            log.exception("%s-conn%d failed", self.label, self.number)
        finally:
            self.close()
            if self._transport is not None:
                self._transport.close()  # usually a no-op: the thread has ended
            self.record("CLOSE", "connection closed")
            self.server._forget(self.number)

    def _start_transport(self) -> paramiko.Transport | None:
        """Create the server-mode transport (which then owns the socket) and negotiate."""
        with self._lock:
            sock, self._sock = self._sock, None
            if self._closing or sock is None:
                if sock is not None:
                    sock.close()
                return None
            transport = paramiko.Transport(sock)
            self._transport = transport
        transport.name = f"{self.label}-transport{self.number}"
        # Our logger, not paramiko.transport: a client hanging up logs an "error" there, and
        # the server side must be told apart from the client side in a test's log.
        transport.set_log_channel(f"{__name__}.transport")
        transport.add_server_key(self.server.host_key)
        try:
            transport.start_server(server=_Interface(self))
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.debug("%s-conn%d: handshake failed: %r", self.label, self.number, exc)
            return None
        return transport

    def _serve(self, transport: paramiko.Transport) -> None:
        """Accept channels; start a relay for each direct-tcpip one (sessions act on exec)."""
        while transport.is_active():
            # A timeout, because accept() never returns if the transport died before the call.
            channel = transport.accept(timeout=1.0)
            if channel is None:
                continue
            with self._lock:
                pending = self._pending.pop(channel.get_id(), None)
            if pending is not None:
                job = _RelayJob(self, channel, pending[0], is_exec=False)
                self.start_worker(f"direct{channel.get_id()}", job)

    def note_auth(self) -> None:
        """Record the successful authentication once, when the first channel shows it held."""
        if not self._auth_recorded and self.user is not None:
            self._auth_recorded = True
            client = self._transport.remote_version if self._transport else "?"
            self.record("SSHAUTH", f"{self.user} by {self.auth_method} ({client})")

    def add_pending(self, channel_id: int, sock: socket.socket, target: str) -> bool:
        """Keep the socket of an accepted direct-tcpip request until its channel shows up."""
        with self._lock:
            if not self._closing:
                self._pending[channel_id] = (sock, target)
                return True
        sock.close()
        return False

    def start_worker(self, label: str, job: _Job) -> bool:
        """Run ``job`` in a named worker thread owned by this connection."""
        with self._lock:
            if self._closing:
                job.abandon()
                return False
            worker = _Worker(self, f"{self.label}-conn{self.number}-{label}", job)
            self._workers.add(worker)
        worker.thread.start()
        return True

    def worker_done(self, worker: _Worker) -> None:
        """Forget a worker whose thread is ending."""
        with self._lock:
            self._workers.discard(worker)

    def fence(self) -> None:
        """Return once the transport thread has sent every reply it owed the client so far."""
        # paramiko sends the reply to an exec request after check_channel_exec_request
        # returns, in the transport thread, while our worker already runs. A CLOSE that
        # overtakes that reply makes the client's exec_command() fail with "Channel
        # closed". A global request's answer is processed by the same transport thread,
        # so once it has arrived the exec reply is on the wire (OpenSSH's keepalive).
        transport = self._transport
        if transport is None or not transport.is_active():
            return
        with self._fence_lock:  # global_request() keeps one pending answer per transport
            transport.global_request("keepalive@openssh.com", wait=True)

    def close(self) -> None:
        """Wake every worker, close the transport and unclaimed sockets; idempotent."""
        with self._lock:
            self._closing = True
            workers = list(self._workers)
            pending = list(self._pending.values())
            self._pending.clear()
            sock, self._sock = self._sock, None
            transport = self._transport
        for worker in workers:
            worker.job.wake()
        for pending_sock, _ in pending:
            pending_sock.close()
        if sock is not None:
            sock.close()
        if transport is not None:
            # Wake the transport thread with an EOF rather than closing its socket under
            # it: it then ends (and closes the socket) by itself, without an error.
            with contextlib.suppress(OSError):
                transport.sock.shutdown(socket.SHUT_RDWR)

    def join(self, deadline: float) -> None:
        """Join the connection's threads (own, transport, workers) until ``deadline``."""
        _join(self._thread, deadline)
        with self._lock:
            workers = list(self._workers)
            transport = self._transport
        for worker in workers:
            _join(worker.thread, deadline)
        if transport is not None and transport.ident is not None:
            _join(transport, deadline)


class _Job:
    """Work done by a worker thread: ``run()`` it, or ``abandon()`` it; ``wake()`` it to stop."""

    def run(self) -> None:
        """Do the work; closes what the job owns before returning."""
        raise NotImplementedError

    def wake(self) -> None:
        """Make run() return soon (called from another thread)."""

    def abandon(self) -> None:
        """Close what the job owns without running it."""


class _Worker:
    """A daemon thread running one job of a connection; it logs its own exception."""

    def __init__(self, connection: _Connection, name: str, job: _Job) -> None:
        """Prepare the thread; the connection starts it."""
        self.connection = connection
        self.job = job
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        """Run the job, log what escapes it, and tell the connection."""
        try:
            self.job.run()
        except Exception:
            log.exception("%s failed", self.thread.name)
        finally:
            self.connection.worker_done(self)


_CHUNK = 32768
_HIGH_WATER = 256 * 1024  # stop reading one side while this much waits for the other
_STOP_POLL = 0.5  # how often a pump looks at its stop flag
_WINDOW_POLL = 0.02  # how often it retries a channel whose SSH window is full
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class _Pump:
    """Copies between a channel and a socket in one thread, passing each EOF on as a half-close."""

    # One thread and nothing blocking: a blocking sendall() to one side could wait for a
    # peer that itself waits for us to read from the other side.

    def __init__(
        self, channel: paramiko.Channel, sock: socket.socket, idle_timeout: float | None
    ) -> None:
        """Prepare both ends for non-blocking use; the caller keeps owning them."""
        self.channel = channel
        self.sock = sock
        self.idle_timeout = idle_timeout
        sock.setblocking(False)
        channel.settimeout(0.0)
        self.to_sock = bytearray()
        self.to_channel = bytearray()
        self.sock_eof = self.channel_eof = self.sock_shut = self.channel_shut = False
        self.last_traffic = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        """Copy until both directions are done, ``stop`` is set, or the idle timeout hits."""
        with selectors.DefaultSelector() as selector:
            while not stop.is_set() and not self._pass_eofs():
                timeout = self._timeout()
                if timeout is None:
                    log.debug("relay idle for %ss: closing it, as nc -w does", self.idle_timeout)
                    return
                self._watch(selector)
                ready: dict[object, int] = {k.fileobj: m for k, m in selector.select(timeout)}
                self._transfer(ready)

    def _pass_eofs(self) -> bool:
        """Half-close each side whose peer ended and whose buffer is flushed; True when done."""
        if self.channel.closed:  # the client closed it: nothing can reach it any more
            self.to_channel.clear()
            self.channel_shut = True
        if self.sock_eof and not self.to_channel and not self.channel_shut:
            self.channel.shutdown_write()
            self.channel_shut = True
        if self.channel_eof and not self.to_sock and not self.sock_shut:
            with contextlib.suppress(OSError):  # the peer may have reset already
                self.sock.shutdown(socket.SHUT_WR)
            self.sock_shut = True
        return self.sock_shut and self.channel_shut

    def _timeout(self) -> float | None:
        """How long to wait for readiness; None once the relay was idle for too long."""
        # The SSH window is not a file descriptor: while it is full, poll it. Otherwise
        # wake now and then to see the stop flag.
        window_full = bool(self.to_channel) and not self.channel.send_ready()
        timeout = _WINDOW_POLL if window_full else _STOP_POLL
        if self.idle_timeout is None:
            return timeout
        idle_left = self.last_traffic + self.idle_timeout - time.monotonic()
        return None if idle_left <= 0 else min(timeout, idle_left)

    def _watch(self, selector: selectors.BaseSelector) -> None:
        """Watch each side for what it can do now, reading only while the other has room."""
        sock_events = 0 if self.sock_eof or len(self.to_channel) >= _HIGH_WATER else _READ
        _watch(selector, self.sock, sock_events | (_WRITE if self.to_sock else 0))
        channel_full = self.channel_eof or len(self.to_sock) >= _HIGH_WATER
        _watch(selector, self.channel, 0 if channel_full else _READ)

    def _transfer(self, ready: dict[object, int]) -> None:
        """Read what is readable, write what can be written."""
        moved = 0
        if ready.get(self.sock, 0) & _READ:
            data = _recv_sock(self.sock)
            self.sock_eof = data == b""
            self.to_channel += data or b""
            moved += len(data or b"")
        if ready.get(self.channel, 0) & _READ:
            data = _recv_channel(self.channel)
            self.channel_eof = data == b""
            self.to_sock += data or b""
            moved += len(data or b"")
        while self.to_channel and not self.channel.closed and self.channel.send_ready():
            del self.to_channel[: self.channel.send(bytes(self.to_channel[:_CHUNK]))]
        if self.to_sock and ready.get(self.sock, 0) & _WRITE:
            with contextlib.suppress(BlockingIOError):
                del self.to_sock[: self.sock.send(self.to_sock)]
        if moved:
            self.last_traffic = time.monotonic()


def _watch(
    selector: selectors.BaseSelector, fileobj: socket.socket | paramiko.Channel, events: int
) -> None:
    """Make ``selector`` watch ``fileobj`` for exactly ``events`` (0: not at all)."""
    try:
        current = selector.get_key(fileobj).events
    except KeyError:
        current = 0
    if events == current:
        return
    if not events:
        selector.unregister(fileobj)
    elif not current:
        selector.register(fileobj, events)
    else:
        selector.modify(fileobj, events)


def _recv_sock(sock: socket.socket) -> bytes | None:
    """Read what the socket has: bytes, b"" at EOF, None if nothing after all."""
    try:
        return sock.recv(_CHUNK)
    except BlockingIOError:
        return None


def _recv_channel(channel: paramiko.Channel) -> bytes | None:
    """Read what the channel has: bytes, b"" at EOF or close, None if nothing after all."""
    try:
        return channel.recv(_CHUNK)
    except socket.timeout:
        return None


class _RelayJob(_Job):
    """Copy bytes between a channel and a TCP socket; as an exec relay, end like nc would."""

    def __init__(
        self,
        connection: _Connection,
        channel: paramiko.Channel,
        sock: socket.socket,
        *,
        is_exec: bool,
        idle: float | None = None,
    ) -> None:
        """Own ``channel`` and ``sock``; ``idle`` is nc's -w when it is honoured."""
        self.connection = connection
        self.channel = channel
        self.sock = sock
        self.is_exec = is_exec
        self.idle = idle
        self.stop = threading.Event()

    def run(self) -> None:
        """Pump until both directions are done, then close both ends."""
        status = 0
        try:
            _Pump(self.channel, self.sock, self.idle).run(self.stop)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.debug("%s: relay ended: %r", threading.current_thread().name, exc)
            status = 1
        finally:
            self.sock.close()
            if self.is_exec:
                _finish_exec(self.connection, self.channel, status)
            else:
                self.channel.close()

    def wake(self) -> None:
        """Stop the pump: flag it and make its socket readable."""
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def abandon(self) -> None:
        """Close both ends without relaying."""
        self.sock.close()
        self.channel.close()


class _ExecJob(_Job):
    """Run one exec request: a relay command (connect, then become a _RelayJob) or a built-in."""

    def __init__(self, connection: _Connection, channel: paramiko.Channel, command: str) -> None:
        """Own ``channel`` for the command ``command``."""
        self.connection = connection
        self.channel = channel
        self.command = command
        self.stop = threading.Event()
        self._relay: _RelayJob | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        """Dispatch on the command and send its exit status."""
        server = self.connection.server
        relay = parse_relay_command(self.command) if server.allow_exec_relay else None
        if relay is not None:
            self._run_relay(*relay)
            return
        status = 1
        try:
            status = _run_builtin(self.connection, self.channel, self.command, self.stop)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.debug("exec %r ended: %r", self.command, exc)
        finally:
            _finish_exec(self.connection, self.channel, status)

    def _run_relay(self, host: str, port: int, wait: float | None) -> None:
        """Connect like nc, then relay; print nc's error and exit 1 when that fails."""
        server = self.connection.server
        try:
            sock, address = server.open_tcp(host, port)
        except OSError as exc:
            message = f"nc: connect to {host} port {port} (tcp) failed: {_reason(exc)}\n"
            self.connection.record("RELAY", f"to {host}:{port} failed: {_reason(exc)}")
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self.channel.sendall_stderr(message.encode())
            _finish_exec(self.connection, self.channel, 1)
            return
        self.connection.record("RELAY", f"to {host}:{port} ({address[0]}:{address[1]})")
        idle = wait if server.nc_idle_timeout else None
        relay = _RelayJob(self.connection, self.channel, sock, is_exec=True, idle=idle)
        with self._lock:
            self._relay = relay
            stopped = self.stop.is_set()
        if stopped:
            relay.wake()
        relay.run()

    def wake(self) -> None:
        """Stop the command or the relay it became."""
        with self._lock:
            self.stop.set()
            relay = self._relay
        if relay is not None:
            relay.wake()

    def abandon(self) -> None:
        """Close the channel without running anything."""
        self.channel.close()


def _reason(exc: OSError) -> str:
    """The strerror part of an OSError, as nc prints it."""
    return exc.strerror or str(exc)


def _finish_exec(connection: _Connection, channel: paramiko.Channel, status: int) -> None:
    """End an exec channel as sshd does: EOF, exit status, then (after the fence) close."""
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        if not channel.closed:
            channel.shutdown_write()
            channel.send_exit_status(status)
            connection.fence()
    channel.close()


def _run_builtin(
    connection: _Connection, channel: paramiko.Channel, command: str, stop: threading.Event
) -> int:
    """Run one of the few built-in commands, without a shell; return its exit status."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        channel.sendall_stderr(f"sh: syntax error: {exc}\n".encode())
        return 2
    if not argv:
        return 0
    program, args = argv[0], argv[1:]
    output = _simple_output(connection, program, args)
    if output is not None:
        channel.sendall(output.encode())
        return 0
    if program in ("true", "false"):
        return 0 if program == "true" else 1
    if program == "cat" and not args:
        _cat(channel)
        return 0
    if program == "sleep" and len(args) == 1 and _is_number(args[0]):
        stop.wait(float(args[0]))
        return 0
    channel.sendall_stderr(f"sh: {program}: command not found\n".encode())
    return 127


def _simple_output(connection: _Connection, program: str, args: Sequence[str]) -> str | None:
    """The output of ``hostname``, ``whoami`` and ``echo [-n]``; None for other commands."""
    if program == "hostname" and not args:
        return connection.server.name + "\n"
    if program == "whoami" and not args:
        return f"{connection.user}\n"
    if program == "echo":
        if args[:1] == ["-n"]:
            return " ".join(args[1:])
        return " ".join(args) + "\n"
    return None


def _is_number(text: str) -> bool:
    """Tell whether ``text`` is a non-negative number of seconds."""
    try:
        return float(text) >= 0
    except ValueError:
        return False


def _cat(channel: paramiko.Channel) -> None:
    """Echo the channel's input back until EOF."""
    while True:
        data = channel.recv(32768)
        if not data:
            return
        channel.sendall(data)


class _Interface(paramiko.ServerInterface):
    """paramiko's questions about one connection, answered from its DemoServer's settings."""

    def __init__(self, connection: _Connection) -> None:
        """Answer for ``connection``."""
        self.connection = connection
        self.server = connection.server

    def get_allowed_auths(self, username: str) -> str:
        """Offer publickey, and password when one is configured."""
        return "publickey,password" if self.server.password else "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        """Accept an authorized key for any user (paramiko checks the signature itself)."""
        wanted = (key.get_name(), key.asbytes())
        if any((k.get_name(), k.asbytes()) == wanted for k in self.server.authorized_keys):
            self._accepted(username, f"publickey {key.get_name()}")
            return AUTH_SUCCESSFUL
        self.connection.record("AUTHFAIL", f"publickey {fingerprint(key)} for {username}")
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        """Accept the configured user and password (compared in constant time)."""
        expected = self.server.password
        if expected is not None:
            user_ok = hmac.compare_digest(username.encode(), expected[0].encode())
            password_ok = hmac.compare_digest(password.encode(), expected[1].encode())
            if user_ok and password_ok:
                self._accepted(username, "password")
                return AUTH_SUCCESSFUL
        self.connection.record("AUTHFAIL", f"password for {username}")
        return AUTH_FAILED

    def _accepted(self, username: str, method: str) -> None:
        """Remember who got in, recorded at the first channel (a key query is no login yet)."""
        self.connection.user = username
        self.connection.auth_method = method

    def check_channel_request(self, kind: str, chanid: int) -> int:
        """Sessions only (for exec); everything else is prohibited."""
        self.connection.note_auth()
        if kind == "session":
            return OPEN_SUCCEEDED
        self.connection.record("REFUSED", f"channel type {kind}")
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: Address, destination: Address
    ) -> int:
        """Connect to the destination now, so a failure is reported as OpenSSH does."""
        self.connection.note_auth()
        host, port = destination
        if not self.server.allow_forwarding:
            self.connection.record("REFUSED", f"direct-tcpip to {host}:{port} (forwarding off)")
            return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        try:
            sock, address = self.server.open_tcp(host, port)
        except OSError as exc:
            self.connection.record("REFUSED", f"direct-tcpip to {host}:{port}: {_reason(exc)}")
            return OPEN_FAILED_CONNECT_FAILED
        self.connection.record("DIRECT-TCPIP", f"to {host}:{port} ({address[0]}:{address[1]})")
        if not self.connection.add_pending(chanid, sock, f"{host}:{port}"):
            return OPEN_FAILED_CONNECT_FAILED
        return OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        """Start the command in a worker thread (never a shell)."""
        text = command.decode("utf-8", "replace")
        self.connection.record("EXEC", text)
        job = _ExecJob(self.connection, channel, text)
        return self.connection.start_worker(f"exec{channel.get_id()}", job)

    def check_channel_forward_agent_request(self, channel: paramiko.Channel) -> bool:
        """Refuse agent forwarding: the demo has no agent to offer."""
        return False
