"""Build a planned route: connect hop by hop, in-process, and hand back the last link.

A :class:`Chain` owns the link into the target and one counted reference to
the last hop's connection (a :class:`~paraproxy._pool.Segment`), which holds
the hop before it, down to the first hop's TCP socket or ProxyCommand. Hops
are shared between chains that pass through the same host the same way (hop
reuse, :mod:`paraproxy._pool`); a hop closes when its last user lets go.

Each hop is a host in its own right: its host key is checked under the name
OpenSSH would use before any credential is sent to it, it authenticates with
its own user, keys and the agent (never with the password meant for the
target), and a failure names it
(``hop 2/3 yuka (root@yuka:22): authentication failed``).

:meth:`Chain.close` undoes everything in reverse, always finishes, and may be
called more than once; a failure while building closes what was opened so far
before the error propagates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Union

import paramiko
from paramiko.agent import AgentRequestHandler

from paraproxy._hostkeys import (
    changed_key_text,
    fingerprint,
    hop_client,
    host_key_name,
    lookup_name,
    recording,
    unknown_key_text,
    verify_reused,
)
from paraproxy._link import ChannelLink
from paraproxy._pool import POOL, Segment, reuse_enabled
from paraproxy._route import Exec, Forward, Hop, ProxyCommand, Route, Tcp
from paraproxy._transport import HopTransport
from paraproxy.errors import (
    HopAuthenticationError,
    HopChannelError,
    HopConnectError,
    HopError,
    HopHostKeyError,
    ParaproxyError,
    ProxyCommandError,
    during,
)
from paraproxy.proxycommand import ProxyCommandBridge, not_ssh_text

__all__ = ["Chain", "HopOptions", "hop_event", "host_key_name", "session_summary"]

logger = logging.getLogger(__name__)

#: What a transport runs over: a socket, or a channel on the hop before.
Link = Union[socket.socket, ChannelLink]

#: Open relays as direct-tcpip channels instead of running them (issue: nc -w1).
_RELAY_MODE_ENV = "PARAPROXY_RELAY"


@dataclass(frozen=True)
class HopOptions:
    """What the caller's ``connect()`` arguments say about the hops (not the target).

    Hops never receive the password or ``pkey`` meant for the target; they
    share the client's known hosts and missing-host-key policy.
    """

    timeout: float | None = None
    banner_timeout: float | None = None
    auth_timeout: float | None = None
    allow_agent: bool = True
    look_for_keys: bool = True
    passphrase: str | None = None
    disabled_algorithms: dict[str, Any] | None = None


class Chain:
    """Every hop of one connection, opened in order and closed in reverse.

    :param route: the planned route; its last hop is the target, which the
        caller connects itself over :meth:`open`'s result.
    :param options: caller settings that apply to hops.
    :param connect: paramiko's original ``SSHClient.connect`` (not the hook).

    The chain owns the link into the target and one reference to the last
    hop's :class:`~paraproxy._pool.Segment`, which owns the hop before it, and
    so on: releasing that reference closes every hop nobody else uses, last
    hop first, the first hop's ProxyCommand last.
    """

    def __init__(
        self,
        route: Route,
        options: HopOptions,
        connect: Callable[..., None],
    ) -> None:
        self.route = route
        # Only during open(): the chain must not keep the caller's client alive,
        # or the client's finalizer (which closes the chain) could never run.
        self._client: paramiko.SSHClient | None = None
        self._options = options
        self._connect = connect
        #: The ProxyCommand in front of the first hop, if this chain started it.
        self.bridge: ProxyCommandBridge | None = None
        #: The hop being connected now (the target once open() returned).
        self.current: Hop = route.hops[0]
        #: Seconds of the deadline that expired, once :meth:`abort` ran.
        self.expired: float | None = None
        self._segment: Segment | None = None
        self._reused = False
        self._pending: Link | None = None
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._closed = False

    # -- building ------------------------------------------------------------

    def open(self, client: paramiko.SSHClient) -> Link:
        """Connect every hop before the target and return the target's link.

        ``client`` is the caller's: its host keys and policy check every hop.
        """
        hops = self.route.hops
        self._client = client
        try:
            for hop in hops[:-1]:
                self.current = hop
                self._advance(hop)
            if len(hops) == 1:
                link = self._first_link(hops[0], self._stack)
            else:
                link = self._link_to(hops[-1], self._stack)
            self.current = hops[-1]
            self._pending = link
        except BaseException:
            self.close()
            raise
        finally:
            self._client = None
        return link

    @property
    def segment(self) -> Segment | None:
        """The last hop's segment (for inspection: ``segment.users``)."""
        return self._segment

    def _advance(self, hop: Hop) -> None:
        """Make ``hop``'s segment the chain's last: reuse a shared one, or build it."""
        key = self._key(hop)
        with POOL.building(key):
            shared = POOL.acquire(key) if key is not None else None
            if shared is not None:
                # Not ours to cut when a deadline expires: other chains run over it.
                self._pending = None
                self._take(shared)
                assert self._client is not None and shared.client is not None
                verify_reused(self._client, hop, shared.client)
                self._reused = True
                return
            POOL.publish(self._build(hop, key))
            self._reused = False

    def _key(self, hop: Hop) -> Hashable | None:
        """What must match for another route's connection to ``hop`` to serve this one."""
        prev = self._segment
        if not reuse_enabled() or (prev is not None and prev.key is None):
            return None
        c, o = hop.config, self._options
        identity = (c.user, c.hostname, c.port, lookup_name(hop), c.identity_files,
                    c.identities_only, o.allow_agent, o.look_for_keys,
                    repr(o.disabled_algorithms))
        below = prev.key if prev is not None else hop.via
        return (below, identity)

    def _take(self, segment: Segment) -> None:
        """Hold ``segment`` instead of the current last one."""
        old, self._segment = self._segment, segment
        if old is not None:
            POOL.release(old)

    def _build(self, hop: Hop, key: Hashable | None) -> Segment:
        """Connect ``hop`` over a new link; the segment takes over the chain's reference."""
        prev = self._segment
        if prev is None:
            segment = Segment(hop.label, key, None, hop)
            self._segment = segment
            link = self._first_link(hop, segment.stack)
        else:
            with contextlib.ExitStack() as pending:
                link = self._link_to(hop, pending)  # may replace the hop below
                prev = self._segment
                assert prev is not None
                segment = Segment(hop.label, key if prev.key is not None else None, prev, hop)
                # First in, so it runs last: the hop below outlives this one.
                segment.stack.callback(POOL.release, prev)
                segment.stack.push(pending.pop_all())
            self._segment = segment
        segment.client = self._connect_hop(hop, link, segment.stack)
        return segment

    def _link_to(self, nxt: Hop, owner: contextlib.ExitStack) -> Link:
        """Open the link into ``nxt`` on the last segment, falling back to a fresh hop.

        A shared hop may refuse one more channel (sshd's MaxSessions): then this
        chain opens its own connection to that hop, as if it had not been shared.
        """
        segment = self._segment
        assert segment is not None
        try:
            return self._open_link(segment, nxt, owner)
        except HopChannelError as exc:
            if not self._reused:
                raise
            logger.info("%s: %s; opening a new connection to the hop", segment.label, exc.reason)
        fresh = self._rebuild(segment)
        return self._open_link(fresh, nxt, owner)

    def _rebuild(self, shared: Segment) -> Segment:
        """Replace the shared last segment by a private one to the same hop."""
        assert shared is self._segment and isinstance(shared.hop, Hop)
        below = shared.prev
        self._segment = POOL.retain(below) if below is not None else None
        self._reused = below is not None and below.key is not None
        try:
            fresh = self._build(shared.hop, None)
        finally:
            POOL.release(shared)
        self._reused = False
        return fresh

    def _first_link(self, hop: Hop, owner: contextlib.ExitStack) -> Link:
        """Open the first hop's socket: TCP from here, or a local ProxyCommand."""
        via = hop.via
        if isinstance(via, ProxyCommand):
            logger.info("%s: PROXY %s", hop.label, via.command)
            bridge = ProxyCommandBridge(via.command, f"{hop.config.host}:{hop.config.port}")
            owner.callback(_quietly, bridge.close)
            self.bridge = bridge
            self._pending = bridge.start()
            if via.fdpass:
                try:
                    return self._own(bridge.receive_socket(self._timeout(hop)), owner)
                except ProxyCommandError:
                    if self.expired is not None:
                        bridge.close()
                        raise ProxyCommandError(
                            bridge.command,
                            f"timed out after {self.expired:g} s (ConnectTimeout) waiting "
                            "for its socket (ProxyUseFdpass)",
                            bridge.exit_status, bridge.stderr_tail, phase="banner",
                        ) from None
                    raise
            return self._pending
        assert isinstance(via, Tcp)
        logger.info("%s: CONNECT %s:%d", hop.label, via.host, via.port)
        return self._own(self._tcp(hop, via), owner)

    def _own(
        self, link: socket.socket | paramiko.Channel, owner: contextlib.ExitStack
    ) -> Link:
        """Give ``owner`` the socket or channel to close; it is the link in use now."""
        if isinstance(link, paramiko.Channel):
            chan = ChannelLink(link)
            owner.callback(_quietly, chan.release)
            self._pending = chan
            return chan
        owner.callback(_quietly, link.close)
        self._pending = link
        return link

    def _tcp(self, hop: Hop, via: Tcp) -> socket.socket:
        """Connect TCP with the hop's deadline, and disable Nagle's algorithm."""
        try:
            sock = socket.create_connection((via.host, via.port), timeout=self._timeout(hop))
        except OSError as exc:
            raise HopConnectError(hop.label, _oserror_text(exc, via.host, via.port)) from exc
        # Without it, a small write during key exchange waits for the peer's
        # delayed ACK: ~40 ms per round trip on Linux (paramiko never sets it).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _timeout(self, hop: Hop) -> float | None:
        """The hop's own ConnectTimeout, else the caller's ``timeout=``."""
        own = hop.config.connect_timeout
        return own if own is not None else self._options.timeout

    def _connect_hop(
        self, hop: Hop, link: Link, owner: contextlib.ExitStack
    ) -> paramiko.SSHClient:
        """Handshake, verify and authenticate one intermediate hop over ``link``."""
        assert self._client is not None
        client = hop_client(self._client, hop)
        owner.callback(_quietly, client.close)
        name, port = host_key_name(hop)
        timeout = self._timeout(hop)
        opts = self._options
        keys = [path for path in hop.config.identity_files if os.path.exists(path)]
        logger.info("%s: SSHAUTH %s@%s", hop.label, hop.config.user, hop.config.host)
        try:
            self._connect(
                client,
                hostname=name,
                port=port,
                username=hop.config.user,
                key_filename=keys or None,
                timeout=timeout,
                allow_agent=opts.allow_agent and not hop.config.identities_only,
                # Default keys only when no IdentityFile is given (`none` included).
                look_for_keys=opts.look_for_keys and not hop.config.get_all("identityfile"),
                sock=link,
                banner_timeout=opts.banner_timeout or timeout,
                auth_timeout=opts.auth_timeout,
                passphrase=opts.passphrase,
                disabled_algorithms=opts.disabled_algorithms,
                transport_factory=HopTransport,
            )
        except BaseException as exc:
            raise self._hop_failure(hop, exc, client) from exc
        transport = client.get_transport()
        if isinstance(transport, HopTransport):
            transport.settle()  # the next channel open costs no 40 ms stall
        logger.info("%s: %s", hop.label, session_summary(client, name, port),
                    extra=hop_event(hop.label, "connected"))
        return client

    def _open_link(self, segment: Segment, nxt: Hop, owner: contextlib.ExitStack) -> Link:
        """Open the channel on ``segment``'s hop that carries the connection to ``nxt``."""
        transport = segment.client.get_transport() if segment.client is not None else None
        if transport is None or not transport.is_active():
            raise HopChannelError(segment.label, "the connection to the hop is closed")
        via = nxt.via
        if isinstance(via, Exec) and via.relay is not None and _relay_as_forward():
            try:
                target = Forward(via.relay.host, via.relay.port)
                return self._forward(segment, transport, target, owner)
            except HopChannelError as exc:
                logger.info("%s: %s; running the relay command instead", segment.label,
                            exc.reason)
        if isinstance(via, Exec):
            return self._exec(segment, transport, via, owner)
        assert isinstance(via, Forward)
        return self._forward(segment, transport, via, owner)

    def _channel_timeout(self) -> float:
        """How long a channel open may take: the hop's deadline, never paramiko's hour."""
        return self._timeout(self.current) or _CHANNEL_TIMEOUT

    def _forward(
        self, segment: Segment, transport: paramiko.Transport, via: Forward,
        owner: contextlib.ExitStack,
    ) -> Link:
        """A direct-tcpip channel to ``via.host:via.port``, as ``ssh -W`` opens it."""
        logger.info("%s: %s", segment.label, via.describe())
        try:
            chan = transport.open_channel(
                "direct-tcpip", (via.host, via.port), ("127.0.0.1", 0),
                timeout=self._channel_timeout(),
            )
        except paramiko.ChannelException as exc:
            raise HopChannelError(
                segment.label,
                f"refused channel to {via.host}:{via.port}: {_channel_reason(exc, transport)}",
                exc.code,
            ) from exc
        except Exception as exc:
            raise self._channel_failure(segment, f"no channel to {via.host}:{via.port}",
                                        exc) from exc
        return self._own(chan, owner)

    def _exec(
        self, segment: Segment, transport: paramiko.Transport, via: Exec,
        owner: contextlib.ExitStack,
    ) -> Link:
        """Run the relay command on the hop; its channel carries the next hop."""
        logger.info("%s: %s", segment.label, via.describe())
        if via.relay is not None and via.relay.idle_timeout is not None:
            logger.warning(
                "%s: %r drops the connection after %g s idle (netcat -w is an idle "
                "timeout); set PARAPROXY_RELAY=forward to open a direct-tcpip channel "
                "instead",
                segment.label, via.command, via.relay.idle_timeout,
            )
        try:
            chan = transport.open_session(timeout=self._channel_timeout())
            link = self._own(chan, owner)
            if via.forward_agent:
                # Only where asked (-A, ForwardAgent): a forwarded agent is a risk.
                agent = AgentRequestHandler(chan)
                owner.callback(_quietly, agent.close)
            chan.exec_command(via.command)
        except paramiko.ChannelException as exc:
            raise HopChannelError(
                segment.label,
                f"refused session for {via.command!r}: {_channel_reason(exc, transport)}",
                exc.code,
            ) from exc
        except Exception as exc:
            raise self._channel_failure(segment, f"could not run {via.command!r}", exc) from exc
        return link

    # -- errors --------------------------------------------------------------

    def _channel_failure(self, segment: Segment, what: str, exc: Exception) -> HopChannelError:
        """A channel open on ``segment``'s hop that failed other than by refusal."""
        if self.expired is not None:
            why = f"no answer within {self.expired:g} s (ConnectTimeout)"
        elif isinstance(exc, EOFError) or not str(exc):
            why = "the connection to the hop closed"
        elif isinstance(exc, (paramiko.SSHException, OSError)):
            why = str(exc)
        else:
            why = repr(exc)
        return HopChannelError(segment.label, f"{what}: {why}")

    def _hop_failure(
        self, hop: Hop, exc: BaseException, client: paramiko.SSHClient
    ) -> BaseException:
        """Turn paramiko's exception for ``hop`` into one that names the hop."""
        if isinstance(exc, (HopError, ProxyCommandError)) or not isinstance(exc, Exception):
            return exc
        # The link worked and the hop answered: its verdict names the hop, even
        # when the link is a ProxyCommand.
        policy = recording(client)
        if isinstance(exc, paramiko.BadHostKeyException):
            text = changed_key_text(lookup_name(hop), exc.key, exc.expected_key)
            return HopHostKeyError(hop.label, text)
        if policy is not None and policy.rejected is not None:
            return HopHostKeyError(hop.label, unknown_key_text(policy))
        if isinstance(exc, paramiko.AuthenticationException):
            return HopAuthenticationError(hop.label, f"authentication failed: {exc}")
        return self.link_failure(hop, exc, client)

    def link_failure(
        self, hop: Hop, exc: BaseException, client: paramiko.SSHClient
    ) -> ParaproxyError:
        """Explain a handshake with ``client`` that failed on the link into ``hop``."""
        if self.expired is not None or _timed_out(exc):
            return self._timeout_failure(hop, client)
        bridge = self.bridge
        if hop.index == 1 and bridge is not None and not bridge.passed_socket:
            phase = _phase(client)
            if phase != "auth" or bridge.wait_exit(0.2) is not None:
                return self.proxy_failure(exc, phase)
            # The proxy is alive and the handshake went through: not its fault.
        reason = not_ssh_text(exc) or _closed_text(exc) or (
            f"connection failed: {str(exc) or type(exc).__name__}"
        )
        link = self._pending
        if isinstance(link, ChannelLink) and isinstance(hop.via, Exec):
            reason += _relay_status(link.channel, hop.via)
        return HopConnectError(hop.label, reason)

    def link_died(self, exc: BaseException) -> bool:
        """Whether the link under the target is gone (rather than the target saying no)."""
        if "saw EOF" in str(exc):  # paramiko's auth handler, when the transport died
            return True
        bridge = self.bridge
        if bridge is not None and not bridge.passed_socket:
            return bridge.wait_exit(0.2) is not None
        link = self._pending
        if not isinstance(link, ChannelLink):
            return False
        return bool(link.channel.closed or link.channel.eof_received)

    def proxy_failure(self, exc: BaseException, phase: str) -> ProxyCommandError:
        """The first hop's ProxyCommand failed in ``phase``: stop it, report how it ended."""
        bridge = self.bridge
        assert bridge is not None
        bridge.wait_exit(0.5 if bridge.exit_status is None else 0)
        bridge.close()
        return bridge.failure(phase, exc)

    def _timeout_failure(
        self, hop: Hop, client: paramiko.SSHClient | None
    ) -> ParaproxyError:
        """The connect deadline expired while ``hop`` was being connected."""
        phase = _phase(client)
        seconds = self.expired if self.expired is not None else self._timeout(hop)
        words = f"timed out after {seconds:g} s (ConnectTimeout) {during(phase)}"
        if hop.index == 1 and self.bridge is not None:
            bridge = self.bridge
            bridge.close()
            return ProxyCommandError(
                bridge.command, words, bridge.exit_status, bridge.stderr_tail, phase=phase
            )
        return HopConnectError(hop.label, words)

    def abort(self, seconds: float) -> None:
        """The deadline expired: cut the link now in handshake, so it fails at once.

        paramiko bounds each read, but a peer that trickles bytes restarts its
        banner clock forever; cutting the link is the one bound that always holds.
        Only a link this chain is handshaking over is cut, never a shared hop.
        """
        self.expired = seconds
        logger.info("%s: connect deadline of %g s expired; aborting", self.current.label, seconds)
        link = self._pending
        try:
            if isinstance(link, socket.socket):
                link.shutdown(socket.SHUT_RDWR)
            elif link is not None:
                link.release()
        except (OSError, EOFError, paramiko.SSHException):
            pass

    # -- closing -------------------------------------------------------------

    def close(self) -> None:
        """Close the target's link, then every hop nobody else uses; never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _quietly(self._stack.close)
        segment, self._segment = self._segment, None
        if segment is not None:
            POOL.release(segment)
        logger.debug("chain %s closed", self.route.describe())


#: paramiko's own default for a channel open is an hour; never wait that long.
_CHANNEL_TIMEOUT = 30.0


def hop_event(label: str, event: str) -> dict[str, str]:
    """``extra=`` for a log record that marks a step of one hop (``python -m paraproxy check``)."""
    return {"paraproxy_hop": label, "paraproxy_event": event}


def session_summary(client: paramiko.SSHClient, name: str, port: int) -> str:
    """``banner SSH-2.0-OpenSSH_9.2p1, host key ssh-ed25519 SHA256:... known as yuka, ...``."""
    transport = client.get_transport()
    if transport is None:
        return "not connected"
    key = transport.get_remote_server_key()
    known = name if port == 22 else f"[{name}]:{port}"
    method = getattr(getattr(transport, "auth_handler", None), "auth_method", None) or "?"
    return (
        f"banner {transport.remote_version}, host key {fingerprint(key)} known as {known}, "
        f"authenticated by {method}"
    )


def _timed_out(exc: BaseException) -> bool:
    """paramiko's ways of saying the handshake ran out of time."""
    # start_client() returns quietly on timeout; the next step then raises this.
    return isinstance(exc, socket.timeout) or str(exc) == "No existing session"


def _closed_text(exc: BaseException) -> str | None:
    """``closed before the SSH banner`` when the peer hung up instead of greeting us."""
    text = str(exc)
    if not text.startswith("Error reading SSH protocol banner"):
        return None
    cause = exc.__context__
    if text.rstrip() == "Error reading SSH protocol banner" or isinstance(
        cause, (EOFError, ConnectionResetError)
    ):
        # OpenSSH: "kex_exchange_identification: Connection closed by remote host".
        return ("the connection was closed before the SSH banner (sshd MaxStartups or "
                "LoginGraceTime reached? not an SSH server?)")
    return None


def _channel_reason(exc: paramiko.ChannelException, transport: paramiko.Transport) -> str:
    """Why the hop refused: its own words (``Connection refused``), else paramiko's."""
    text = str(getattr(exc, "text", "") or "").strip().lower() or f"code {exc.code}"
    peer = getattr(transport, "last_refusal", None)
    if peer and peer.lower() != text:
        return f"{text}: {peer}"
    return text


def _relay_status(chan: paramiko.Channel, via: Exec) -> str:
    """What became of a relay command on a hop: exit status and stderr, if known."""
    parts = []
    # The exit status may trail the EOF that broke the handshake by a moment.
    chan.status_event.wait(0.5)
    status = chan.recv_exit_status() if chan.exit_status_ready() else -1
    if status != -1:
        parts.append(f"relay {via.command!r} exited with status {status}")
    elif chan.closed or chan.eof_received:
        parts.append(f"relay {via.command!r} closed the channel")
    if via.relay is not None and via.relay.idle_timeout is not None:
        parts.append(f"its -w {via.relay.idle_timeout:g} drops a connection idle that long "
                     "(PARAPROXY_RELAY=forward avoids it)")
    err = b""
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(4096)
    tail = err.decode("utf-8", "replace").strip()
    if tail:
        parts.append(f"its stderr: {tail[-500:]}")
    return ("; " + "; ".join(parts)) if parts else ""


def _phase(client: paramiko.SSHClient | None) -> str:
    """How far the handshake got: banner, kex or auth."""
    transport = client.get_transport() if client is not None else None
    if transport is None or not transport.remote_version:
        return "banner"
    if transport.session_id is None:
        return "kex"
    return "auth"


def _oserror_text(exc: OSError, host: str, port: int) -> str:
    """``connect to host 198.18.1.2 port 22: Connection refused``, as ssh says it."""
    if isinstance(exc, socket.timeout):
        what = "Connection timed out"
    elif isinstance(exc, socket.gaierror):
        what = f"Could not resolve hostname {host}: {exc.strerror}"
        return what
    else:
        what = exc.strerror or str(exc)
    return f"connect to host {host} port {port}: {what}"


def _relay_as_forward() -> bool:
    """Whether relays are opened as direct-tcpip channels (PARAPROXY_RELAY=forward)."""
    return os.environ.get(_RELAY_MODE_ENV, "").strip().lower() == "forward"


def _quietly(func: Callable[[], object]) -> None:
    """Call a close function; log, never raise (close must always finish)."""
    try:
        func()
    except Exception:
        logger.debug("error while closing", exc_info=True)
