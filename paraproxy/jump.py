"""Build a planned route: connect hop by hop, in-process, and hand back the last link.

A :class:`Chain` owns everything it opens for one connection: the first hop's
TCP socket or ProxyCommand process, every intermediate hop's
:class:`paramiko.SSHClient`, and the channels between them. Each hop is a host
in its own right: its host key is checked under the name OpenSSH would use
before anything is sent to it, it authenticates with its own user, keys and
the agent (never with the password meant for the target), and a failure names
it (``hop 2/3 yuka (root@yuka:22): authentication failed``).

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import paramiko
from paramiko.agent import AgentRequestHandler

from paraproxy._route import Exec, Forward, Hop, ProxyCommand, Route, Tcp
from paraproxy.errors import (
    HopAuthenticationError,
    HopChannelError,
    HopConnectError,
    HopError,
    HopHostKeyError,
    ParaproxyError,
    ProxyCommandError,
)
from paraproxy.proxycommand import _PHASE_WORDS, ProxyCommandBridge

__all__ = ["Chain", "HopOptions", "host_key_name", "session_summary"]

logger = logging.getLogger(__name__)

#: paramiko accepts a socket or a channel as a transport's ``sock``.
Link = Union[socket.socket, paramiko.Channel]

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


def host_key_name(hop: Hop) -> tuple[str, int]:
    """The (name, port) paramiko must look up, as OpenSSH names the host in known_hosts.

    HostKeyAlias is used bare, so it is looked up with port 22 (paramiko then
    adds no ``[ ]:port``); otherwise the effective HostName and port.
    """
    alias = hop.config.host_key_alias
    if alias:
        return alias.lower(), 22
    return hop.config.hostname, hop.config.port


class Chain:
    """Every hop of one connection, opened in order and closed in reverse.

    :param route: the planned route; its last hop is the target, which the
        caller connects itself over :meth:`open`'s result.
    :param options: caller settings that apply to hops.
    :param connect: paramiko's original ``SSHClient.connect`` (not the hook).
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
        self._clients: list[paramiko.SSHClient] = []
        self._last_link: Link | None = None
        # Everything opened, closed in reverse: target link, hops, first socket, proxy.
        self._stack = contextlib.ExitStack()
        self.bridge: ProxyCommandBridge | None = None
        #: The hop being connected now (the target once open() returned).
        self.current: Hop = route.hops[0]
        #: Seconds of the deadline that expired, once :meth:`abort` ran.
        self.expired: float | None = None
        self._first: Link | None = None
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
            link = self._first = self._first_link(hops[0])
            for hop, nxt in zip(hops, hops[1:]):
                self.current = hop
                hop_client = self._connect_hop(hop, link)
                link = self._next_link(hop, hop_client, nxt)
            self.current = hops[-1]
        except BaseException:
            self.close()
            raise
        finally:
            self._client = None
        return link

    def _first_link(self, hop: Hop) -> Link:
        """Open the first hop's socket: TCP from here, or a local ProxyCommand."""
        via = hop.via
        if isinstance(via, ProxyCommand):
            logger.info("%s: PROXY %s", hop.label, via.command)
            self.bridge = ProxyCommandBridge(via.command, f"{hop.config.host}:{hop.config.port}")
            self._stack.callback(_quietly, self.bridge.close)
            return self.bridge.start()
        assert isinstance(via, Tcp)
        logger.info("%s: CONNECT %s:%d", hop.label, via.host, via.port)
        return self._own(self._tcp(hop, via))

    def _own(self, link: Link) -> Link:
        """Take ownership of a socket or channel: it is closed with the chain."""
        self._stack.callback(_quietly, link.close)
        self._last_link = link
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

    def _connect_hop(self, hop: Hop, link: Link) -> paramiko.SSHClient:
        """Handshake, verify and authenticate one intermediate hop over ``link``."""
        hop_client = self._hop_client(hop)
        self._clients.append(hop_client)
        self._stack.callback(_quietly, hop_client.close)
        name, port = host_key_name(hop)
        timeout = self._timeout(hop)
        opts = self._options
        keys = [path for path in hop.config.identity_files if os.path.exists(path)]
        logger.info("%s: SSHAUTH %s@%s", hop.label, hop.config.user, hop.config.host)
        try:
            self._connect(
                hop_client,
                hostname=name,
                port=port,
                username=hop.config.user,
                key_filename=keys or None,
                timeout=timeout,
                allow_agent=opts.allow_agent and not hop.config.identities_only,
                look_for_keys=opts.look_for_keys and not hop.config.identity_files,
                sock=link,
                banner_timeout=opts.banner_timeout or timeout,
                auth_timeout=opts.auth_timeout,
                passphrase=opts.passphrase,
                disabled_algorithms=opts.disabled_algorithms,
            )
        except BaseException as exc:
            raise self._hop_failure(hop, exc) from exc
        logger.info("%s: %s", hop.label, session_summary(hop_client, name, port))
        return hop_client

    def _hop_client(self, hop: Hop) -> paramiko.SSHClient:
        """A client for one hop that checks keys exactly as the caller's client would."""
        # paramiko has no public API to share host-key state between clients;
        # these attributes have been stable from paramiko 1.x to 5.x.
        caller: Any = self._client
        assert caller is not None
        hop_client = paramiko.SSHClient()
        system = paramiko.HostKeys()
        for source in (caller._host_keys, caller._system_host_keys):
            for name, keys in source.items():
                for ktype, key in keys.items():
                    system.add(name, ktype, key)
        for path in (*hop.config.user_known_hosts_files, *hop.config.global_known_hosts_files):
            _load_known_hosts(system, path)
        state: Any = hop_client
        state._system_host_keys = system
        # Shared, so a policy that learns a key (AutoAddPolicy) teaches the caller's
        # client and saves where the caller's client saves.
        state._host_keys = caller._host_keys
        state._host_keys_filename = caller._host_keys_filename
        state._policy = _RecordingPolicy(caller._policy)
        return hop_client

    def _next_link(self, hop: Hop, hop_client: paramiko.SSHClient, nxt: Hop) -> Link:
        """Open the channel on ``hop`` that carries the connection to ``nxt``."""
        transport = hop_client.get_transport()
        assert transport is not None
        via = nxt.via
        if isinstance(via, Exec) and via.relay is not None and _relay_as_forward():
            try:
                return self._forward(hop, transport, Forward(via.relay.host, via.relay.port))
            except HopChannelError as exc:
                logger.info("%s: %s; running the relay command instead", hop.label, exc.reason)
        if isinstance(via, Exec):
            return self._exec(hop, transport, via)
        assert isinstance(via, Forward)
        return self._forward(hop, transport, via)

    def _forward(self, hop: Hop, transport: paramiko.Transport, via: Forward) -> Link:
        """A direct-tcpip channel to ``via.host:via.port``, as ``ssh -W`` opens it."""
        logger.info("%s: %s", hop.label, via.describe())
        try:
            chan = transport.open_channel(
                "direct-tcpip",
                (via.host, via.port),
                ("127.0.0.1", 0),
                timeout=self._timeout(hop) or _CHANNEL_TIMEOUT,
            )
        except paramiko.ChannelException as exc:
            raise HopChannelError(
                hop.label,
                f"refused channel to {via.host}:{via.port}: {_channel_reason(exc)}",
                exc.code,
            ) from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = str(exc) or type(exc).__name__
            raise HopChannelError(
                hop.label, f"no channel to {via.host}:{via.port}: {reason}"
            ) from exc
        return self._own(chan)

    def _exec(self, hop: Hop, transport: paramiko.Transport, via: Exec) -> Link:
        """Run the relay command on the hop; its channel carries the next hop."""
        logger.info("%s: %s", hop.label, via.describe())
        if via.relay is not None and via.relay.idle_timeout is not None:
            logger.warning(
                "%s: %r drops the connection after %g s idle (netcat -w is an idle "
                "timeout); set PARAPROXY_RELAY=forward to open a direct-tcpip channel "
                "instead",
                hop.label, via.command, via.relay.idle_timeout,
            )
        try:
            chan = transport.open_session(timeout=self._timeout(hop) or _CHANNEL_TIMEOUT)
            self._own(chan)
            if via.forward_agent:
                # Only where asked (-A, ForwardAgent): a forwarded agent is a risk.
                agent = AgentRequestHandler(chan)
                self._stack.callback(_quietly, agent.close)
            chan.exec_command(via.command)
        except paramiko.ChannelException as exc:
            raise HopChannelError(
                hop.label, f"refused session for {via.command!r}: {_channel_reason(exc)}",
                exc.code,
            ) from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HopChannelError(
                hop.label, f"could not run {via.command!r}: {exc or type(exc).__name__}"
            ) from exc
        return chan

    # -- errors --------------------------------------------------------------

    def _hop_failure(self, hop: Hop, exc: BaseException) -> BaseException:
        """Turn paramiko's exception for ``hop`` into one that names the hop."""
        if isinstance(exc, (HopError, ProxyCommandError)) or not isinstance(exc, Exception):
            return exc
        # The link worked and the hop answered: its verdict names the hop, even
        # when the link is a ProxyCommand.
        policy = _recording(self._clients[-1] if self._clients else None)
        if isinstance(exc, paramiko.BadHostKeyException):
            return HopHostKeyError(hop.label, _changed_key_text(hop, exc))
        if policy is not None and policy.rejected is not None:
            return HopHostKeyError(hop.label, _unknown_key_text(hop, policy))
        if isinstance(exc, paramiko.AuthenticationException):
            return HopAuthenticationError(hop.label, f"authentication failed: {exc}")
        return self.link_failure(hop, exc, self._clients[-1])

    def link_failure(
        self, hop: Hop, exc: BaseException, client: paramiko.SSHClient
    ) -> ParaproxyError:
        """Explain a handshake with ``client`` that failed on the link into ``hop``."""
        if self.expired is not None:
            return self._timeout_failure(hop, client)
        if hop.index == 1 and self.bridge is not None:
            return self.proxy_failure(exc, _phase(client))
        prev = self._last_link
        reason = f"connection failed: {str(exc) or type(exc).__name__}"
        if isinstance(prev, paramiko.Channel) and isinstance(hop.via, Exec):
            reason += _relay_status(prev, hop.via)
        return HopConnectError(hop.label, reason)

    def proxy_failure(self, exc: BaseException, phase: str) -> ProxyCommandError:
        """The first hop's ProxyCommand failed in ``phase``: stop it, report how it ended."""
        bridge = self.bridge
        assert bridge is not None
        bridge.wait_exit(0.5 if bridge.exit_status is None else 0)
        bridge.close()
        return bridge.failure(phase, exc)

    def _timeout_failure(self, hop: Hop, client: paramiko.SSHClient) -> ParaproxyError:
        """The connect deadline expired while ``hop`` was being connected."""
        phase = _phase(client)
        words = f"timed out after {self.expired:g} s (ConnectTimeout) {_PHASE_WORDS[phase]}"
        if hop.index == 1 and self.bridge is not None:
            bridge = self.bridge
            bridge.close()
            return ProxyCommandError(
                bridge.command, words, bridge.exit_status, bridge.stderr_tail, phase=phase
            )
        return HopConnectError(hop.label, words)

    def abort(self, seconds: float) -> None:
        """The deadline expired: cut the first link, so every handshake on it fails now.

        paramiko bounds each read, but a peer that trickles bytes restarts its
        banner clock forever; cutting the link is the one bound that always holds.
        """
        self.expired = seconds
        logger.info("%s: connect deadline of %g s expired; aborting", self.current.label, seconds)
        first = self._first
        if first is not None and isinstance(first, socket.socket):
            try:
                first.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- closing -------------------------------------------------------------

    def close(self) -> None:
        """Close every hop in reverse order, then the proxy process; never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stack.close()
        logger.debug("chain %s closed", self.route.describe())


#: paramiko's own default for a channel open is an hour; never wait that long.
_CHANNEL_TIMEOUT = 30.0


class _RecordingPolicy(paramiko.MissingHostKeyPolicy):
    """Delegates to the caller's policy and remembers what it rejected (for the error)."""

    def __init__(self, inner: paramiko.MissingHostKeyPolicy) -> None:
        self.inner = inner
        self.rejected: tuple[str, paramiko.PKey] | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        """Ask the caller's policy; note the key if it refuses."""
        try:
            self.inner.missing_host_key(client, hostname, key)
        except BaseException:
            self.rejected = (hostname, key)
            raise


def _recording(client: paramiko.SSHClient | None) -> _RecordingPolicy | None:
    """The recording policy of a hop client, if it has one."""
    policy = getattr(client, "_policy", None)
    return policy if isinstance(policy, _RecordingPolicy) else None


def _fingerprint(key: paramiko.PKey) -> str:
    """``ssh-ed25519 SHA256:...`` as OpenSSH prints it."""
    return f"{key.get_name()} {key.fingerprint}"


def _unknown_key_text(hop: Hop, policy: _RecordingPolicy) -> str:
    """Why an unknown host key was refused, with the key's fingerprint."""
    assert policy.rejected is not None
    name, key = policy.rejected
    return (
        f"host key for {name} is not known ({_fingerprint(key)}); "
        f"refused by {type(policy.inner).__name__}"
    )


def _changed_key_text(hop: Hop, exc: paramiko.BadHostKeyException) -> str:
    """Why a changed host key was refused, with both fingerprints."""
    return (
        f"HOST KEY FOR {exc.hostname} HAS CHANGED: got {_fingerprint(exc.key)}, "
        f"expected {_fingerprint(exc.expected_key)}"
    )


def session_summary(client: paramiko.SSHClient, name: str, port: int) -> str:
    """``banner SSH-2.0-OpenSSH_9.2p1, host key ssh-ed25519 SHA256:... known as yuka, ...``."""
    transport = client.get_transport()
    if transport is None:
        return "not connected"
    key = transport.get_remote_server_key()
    known = name if port == 22 else f"[{name}]:{port}"
    method = getattr(getattr(transport, "auth_handler", None), "auth_method", None) or "?"
    return (
        f"banner {transport.remote_version}, host key {_fingerprint(key)} known as {known}, "
        f"authenticated by {method}"
    )


def _channel_reason(exc: paramiko.ChannelException) -> str:
    """paramiko's channel-open failure text (``administratively prohibited``)."""
    text = str(getattr(exc, "text", "") or "").strip()
    return text.lower() if text else f"code {exc.code}"


def _relay_status(chan: paramiko.Channel, via: Exec) -> str:
    """What became of a relay command on a hop: exit status and stderr, if known."""
    parts = []
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


def _load_known_hosts(keys: paramiko.HostKeys, path: str) -> None:
    """Add a known_hosts file to ``keys``; a missing file is no error (as in OpenSSH)."""
    try:
        keys.load(os.path.expanduser(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.debug("known_hosts %s unreadable: %s", path, exc)


def _relay_as_forward() -> bool:
    """Whether relays are opened as direct-tcpip channels (PARAPROXY_RELAY=forward)."""
    return os.environ.get(_RELAY_MODE_ENV, "").strip().lower() == "forward"


def _quietly(func: Callable[[], object]) -> None:
    """Call a close function; log, never raise (close must always finish)."""
    try:
        func()
    except Exception:
        logger.debug("error while closing", exc_info=True)
