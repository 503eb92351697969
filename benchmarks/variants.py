"""The ways of reaching the target that the benchmarks compare.

Each in-process variant opens a :class:`Conn` (connect + auth) that can stream
data down or up and be closed. Variant names:

``direct``
    ``SSHClient.connect("127.0.0.1", port)``: paramiko exactly as it is (its
    socket has no ``TCP_NODELAY``). The baseline.
``direct+nodelay``
    The same with a socket we open with ``TCP_NODELAY``, passed as ``sock=``.
``paramiko.ProxyCommand``
    ``sock=paramiko.ProxyCommand("nc 127.0.0.1 PORT")``.
``bridge``
    ``sock=`` paraproxy's :class:`~paraproxy.proxycommand.ProxyCommandBridge` running
    ``nc 127.0.0.1 PORT`` (no hook involved).
``pump``
    The rejected design (:mod:`pump`): pipes to the child and a pump thread.
``hand-chain`` / ``hand-chain:N`` / ``hand-chain+nodelay``
    A chain built by hand with paramiko, as fabric's gateway does: each hop's
    ``direct-tcpip`` channel is the next Transport's ``sock``. ``N`` hops
    (default 1) before the target; ``+nodelay`` sets ``TCP_NODELAY`` on the
    first hop's socket; ``+pair`` also bridges each hop channel into a socket
    pair with a pump thread, so the next Transport reads a kernel socket;
    ``+buffered`` reads each hop channel in large chunks (:class:`BufferedChannel`).
``direct+gcm``, ``hand-chain+gcm``
    ``direct+nodelay`` and ``hand-chain+buffered`` negotiating aes128-gcm
    instead of paramiko's default aes128-ctr + hmac-sha2-256.
``hook-direct``, ``hook-nc``, ``hook-jump``, ``hook-sshhop``, ``hook-chain:N``
    ``import paraproxy`` and ``SSHClient().connect(ALIAS)`` with
    ``PARAPROXY_CONFIG`` naming the testbed's ssh_config: ``target`` (config,
    no proxy), ``pc`` (``ProxyCommand nc %h %p``), ``tj`` (``ProxyJump hop``),
    ``ts`` (``ProxyCommand ssh -F CFG hop nc %h %p``), ``cN`` (``ProxyJump h1,..,hN``).
``asyncssh``, ``asyncssh-tunnel``
    asyncssh direct, and through ``tunnel=`` a connection to the hop.

OpenSSH is measured as whole processes (see :func:`ssh_transfer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import resource
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import paramiko
from servers import SSH, TestbedInfo

_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)
_F_SETPIPE_SZ = 1031
#: The upload sink says it is running before anything is timed (ssh would
#: otherwise count its own connection setup while the pipe buffer fills).
UPLOAD_COMMAND = "printf R; exec cat > /dev/null"

HOOK_ALIASES = {
    "hook-direct": "target",
    "hook-nc": "pc",
    "hook-jump": "tj",
    "hook-sshhop": "ts",
}


class Conn(Protocol):
    """One open connection to the target."""

    cipher: str

    def download(self, nbytes: int) -> tuple[float, int]:
        """Stream ``nbytes`` from the server; return (seconds first byte..EOF, bytes)."""

    def upload(self, nbytes: int) -> float:
        """Send ``nbytes`` to ``cat > /dev/null``; return seconds until its exit status."""

    def exec_true(self) -> None:
        """Run ``true`` on the target and wait for its status."""

    def close(self) -> None:
        """Close everything the variant opened."""


# -- paramiko ------------------------------------------------------------------


class ParamikoConn:
    """A connected ``SSHClient`` plus what must be closed after it."""

    def __init__(self, client: paramiko.SSHClient, after: list[Callable[[], None]]) -> None:
        self.client = client
        self.after = after
        #: Run after close() only where CPU is accounted: paramiko.ProxyCommand.close()
        #: never waits for its child, whose CPU would then be missing from RUSAGE_CHILDREN.
        self.reapers: list[Callable[[], None]] = []
        t = client.get_transport()
        assert t is not None
        self.cipher = f"{t.local_cipher}/{t.local_mac}"

    def _session(self, command: str) -> paramiko.Channel:
        t = self.client.get_transport()
        assert t is not None
        chan = t.open_session()
        chan.exec_command(command)
        return chan

    def download(self, nbytes: int) -> tuple[float, int]:
        chan = self._session(f"head -c {nbytes} /dev/zero")
        first = 0.0
        got = 0
        while True:
            data = chan.recv(_CHUNK)
            if not data:
                break
            if not got:
                first = time.perf_counter()
            got += len(data)
        end = time.perf_counter()
        status = chan.recv_exit_status()
        chan.close()
        if status != 0 or got != nbytes:
            raise RuntimeError(f"download: status {status}, got {got} of {nbytes} bytes")
        return end - first, got

    def upload(self, nbytes: int) -> float:
        chan = self._session(UPLOAD_COMMAND)
        if chan.recv(1) != b"R":
            raise RuntimeError("upload: no ready byte")
        view = memoryview(_ZEROS)
        start = time.perf_counter()
        left = nbytes
        while left:
            n = min(left, _CHUNK)
            chan.sendall(view[:n])  # type: ignore[arg-type]  # any buffer works
            left -= n
        chan.shutdown_write()
        status = chan.recv_exit_status()
        end = time.perf_counter()
        chan.close()
        if status != 0:
            raise RuntimeError(f"upload: status {status}")
        return end - start

    def exec_true(self) -> None:
        chan = self._session("true")
        status = chan.recv_exit_status()
        chan.close()
        if status != 0:
            raise RuntimeError(f"true: status {status}")

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            for fn in self.after:
                with contextlib.suppress(Exception):
                    fn()


def new_client(tb: TestbedInfo) -> paramiko.SSHClient:
    """An SSHClient that knows the testbed's host keys and rejects unknown ones."""
    c = paramiko.SSHClient()
    c.load_system_host_keys(tb.known_hosts)
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    return c


#: paramiko 5.1 prefers aes128-ctr + hmac-sha2-256; without the CTR and CBC
#: ciphers it negotiates aes128-gcm@openssh.com (an AEAD: no separate HMAC),
#: which OpenSSH also offers by default.
PREFER_GCM = {
    "ciphers": ["aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc", "aes192-cbc",
                "aes256-cbc", "3des-cbc"],
}


def auth_kwargs(tb: TestbedInfo, gcm: bool = False) -> dict[str, Any]:
    """Public key auth with the testbed's key only (and AES-GCM if asked)."""
    kw: dict[str, Any] = {
        "username": tb.user,
        "key_filename": tb.key,
        "look_for_keys": False,
        "allow_agent": False,
        "timeout": 20,
    }
    if gcm:
        kw["disabled_algorithms"] = PREFER_GCM
    return kw


def nodelay_socket(port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:port with Nagle off."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def open_direct(tb: TestbedInfo, nodelay: bool = False, gcm: bool = False) -> Conn:
    port = tb.ports["target"]
    c = new_client(tb)
    sock = nodelay_socket(port) if nodelay else None
    try:
        c.connect("127.0.0.1", port, sock=sock, **auth_kwargs(tb, gcm))
    except BaseException:
        c.close()
        if sock is not None:
            sock.close()
        raise
    return ParamikoConn(c, [])


def open_proxy(tb: TestbedInfo, kind: str) -> Conn:
    """Through ``nc`` with paramiko.ProxyCommand, paraproxy's bridge, or the pump."""
    command = f"nc 127.0.0.1 {tb.ports['target']}"
    closer: Callable[[], None]
    sock: Any
    reap: Callable[[], None] | None = None
    if kind == "paramiko.ProxyCommand":
        sock = paramiko.ProxyCommand(command)
        closer = sock.close
        reap = partial(sock.process.wait, 5)
    elif kind == "bridge":
        from paraproxy.proxycommand import ProxyCommandBridge  # noqa: PLC0415

        bridge = ProxyCommandBridge(command, "bench")
        sock = bridge.start()
        closer = bridge.close
    else:
        from pump import PumpBridge  # noqa: PLC0415

        pump = PumpBridge(command, "bench")
        sock = pump.start()
        closer = pump.close
    c = new_client(tb)
    try:
        c.connect("127.0.0.1", tb.ports["target"], sock=sock, **auth_kwargs(tb))
    except BaseException:
        c.close()
        closer()
        raise
    conn = ParamikoConn(c, [closer])
    if reap is not None:
        conn.reapers.append(reap)
    return conn


def channel_pair(chan: paramiko.Channel) -> tuple[socket.socket, Callable[[], None]]:
    """Bridge a channel into a socket pair with one pump thread; return (socket, join).

    The next Transport then reads a kernel socket instead of the channel's
    BufferedPipe (benchmark-only comparison, like :mod:`pump`).
    """
    ours, theirs = socket.socketpair()

    def pump() -> None:
        cfd, tfd = chan.fileno(), theirs.fileno()
        try:
            while True:
                r, _, _ = select.select([cfd, tfd], [], [])
                if cfd in r:
                    data = chan.recv(_CHUNK)
                    if not data:
                        break
                    theirs.sendall(data)
                if tfd in r:
                    data = theirs.recv(_CHUNK)
                    if not data:
                        break
                    chan.sendall(data)
        except OSError:
            pass
        finally:
            chan.close()
            theirs.close()

    thread = threading.Thread(target=pump, name="bench-channel-pair", daemon=True)
    thread.start()
    return ours, partial(thread.join, 5)


class BufferedChannel:
    """A channel as a socket for the next Transport, read in large chunks.

    paramiko's Packetizer reads 16 bytes, then the rest of each packet; on a
    bare Channel every such read deletes from the front of the channel's
    BufferedPipe (a memmove of up to the whole window). Here one large
    ``recv`` takes everything buffered and small reads are served from it.
    Benchmark-only comparison.
    """

    def __init__(self, chan: paramiko.Channel) -> None:
        self.chan = chan
        self.buf = b""
        self.pos = 0

    def recv(self, n: int) -> bytes:
        if self.pos >= len(self.buf):
            self.buf = self.chan.recv(max(n, _CHUNK))
            self.pos = 0
            if not self.buf:
                return b""
        out = self.buf[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def send(self, data: bytes) -> int:
        return self.chan.send(data)

    def sendall(self, data: bytes) -> None:
        self.chan.sendall(data)

    def settimeout(self, timeout: float | None) -> None:
        self.chan.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self.chan.gettimeout()

    def close(self) -> None:
        self.chan.close()

    @property
    def _closed(self) -> bool:  # paramiko's Transport.close() looks at sock._closed
        return bool(self.chan.closed)


def open_hand_chain(
    tb: TestbedInfo, hops: int, nodelay: bool = False, pair: bool = False,
    buffered: bool = False, gcm: bool = False,
) -> Conn:
    """``hops`` paramiko hops, each channel the next one's socket, then the target.

    With ``pair``, each channel is bridged into a socket pair first.
    """
    joins: list[Callable[[], None]] = []
    names = [f"h{i}" for i in range(1, hops + 1)] + ["target"]
    clients: list[paramiko.SSHClient] = []
    sock: Any = None
    try:
        for i, name in enumerate(names):
            port = tb.ports[name]
            if i == 0 and nodelay:
                sock = nodelay_socket(port)
            c = new_client(tb)
            clients.append(c)
            c.connect("127.0.0.1", port, sock=sock, **auth_kwargs(tb, gcm))
            if i + 1 < len(names):
                t = c.get_transport()
                assert t is not None
                sock = t.open_channel(
                    "direct-tcpip", ("127.0.0.1", tb.ports[names[i + 1]]), ("127.0.0.1", 0)
                )
                if pair:
                    sock, join = channel_pair(sock)
                    joins.append(join)
                elif buffered:
                    sock = BufferedChannel(sock)
    except BaseException:
        for c in reversed(clients):
            c.close()
        raise
    target = clients.pop()
    return ParamikoConn(target, [c.close for c in reversed(clients)] + joins)


def hand_hop(tb: TestbedInfo) -> paramiko.SSHClient:
    """An authenticated client to the hop (for the hand-built reuse reference)."""
    c = new_client(tb)
    c.connect("127.0.0.1", tb.ports["h1"], **auth_kwargs(tb))
    return c


def open_via_hop(tb: TestbedInfo, hop: paramiko.SSHClient) -> Conn:
    """The target through an already-open hop client (a second direct-tcpip channel)."""
    t = hop.get_transport()
    assert t is not None
    chan = t.open_channel("direct-tcpip", ("127.0.0.1", tb.ports["target"]), ("127.0.0.1", 0))
    c = new_client(tb)
    try:
        c.connect("127.0.0.1", tb.ports["target"], sock=chan, **auth_kwargs(tb))
    except BaseException:
        c.close()
        raise
    return ParamikoConn(c, [])


def open_hook(alias: str) -> Conn:
    """``SSHClient().connect(alias)`` with paraproxy's hook doing the rest."""
    c = paramiko.SSHClient()
    c.load_system_host_keys()
    try:
        c.connect(alias, timeout=20)
    except BaseException:
        c.close()
        raise
    return ParamikoConn(c, [])


# -- asyncssh ------------------------------------------------------------------------


class AsyncsshConn:
    """An asyncssh connection (optionally tunnelled through a hop connection)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conns: list[Any]) -> None:
        self.loop = loop
        self.conns = conns  # hop first, target last
        self.cipher = str(conns[-1].get_extra_info("send_cipher")) + "/" + str(
            conns[-1].get_extra_info("send_mac")
        )

    def download(self, nbytes: int) -> tuple[float, int]:
        return self.loop.run_until_complete(self._download(nbytes))

    async def _download(self, nbytes: int) -> tuple[float, int]:
        proc = await self.conns[-1].create_process(
            f"head -c {nbytes} /dev/zero", encoding=None
        )
        got = 0
        first = 0.0
        while True:
            data = await proc.stdout.read(_CHUNK)
            if not data:
                break
            if not got:
                first = time.perf_counter()
            got += len(data)
        end = time.perf_counter()
        await proc.wait()
        if got != nbytes:
            raise RuntimeError(f"asyncssh download: got {got} of {nbytes}")
        return end - first, got

    def upload(self, nbytes: int) -> float:
        return self.loop.run_until_complete(self._upload(nbytes))

    async def _upload(self, nbytes: int) -> float:
        proc = await self.conns[-1].create_process(UPLOAD_COMMAND, encoding=None)
        if await proc.stdout.readexactly(1) != b"R":
            raise RuntimeError("asyncssh upload: no ready byte")
        start = time.perf_counter()
        left = nbytes
        while left:
            n = min(left, _CHUNK)
            proc.stdin.write(_ZEROS[:n])
            await proc.stdin.drain()
            left -= n
        proc.stdin.write_eof()
        await proc.wait()
        return time.perf_counter() - start

    def exec_true(self) -> None:
        self.loop.run_until_complete(self.conns[-1].run("true", check=True))

    def close(self) -> None:
        self.loop.run_until_complete(self._close())

    async def _close(self) -> None:
        for conn in reversed(self.conns):
            conn.close()
            await conn.wait_closed()


#: One event loop per worker, made on first use.
_LOOP: dict[str, asyncio.AbstractEventLoop] = {}


def asyncssh_available() -> str | None:
    """None if asyncssh can be imported, else why not."""
    try:
        import asyncssh  # noqa: F401, PLC0415 - optional
    except ImportError as exc:
        return f"asyncssh not importable ({exc}); pip install asyncssh to measure it"
    return None


def open_asyncssh(tb: TestbedInfo, tunnel: bool) -> Conn:
    import asyncssh  # noqa: PLC0415 - optional

    loop = _LOOP.get("loop")
    if loop is None:
        loop = _LOOP["loop"] = asyncio.new_event_loop()
    opts = {
        "username": tb.user,
        "client_keys": [tb.key],
        "known_hosts": tb.known_hosts,
        "agent_path": None,
        "config": None,
    }

    async def go() -> list[Any]:
        conns: list[Any] = []
        try:
            if tunnel:
                conns.append(await asyncssh.connect("127.0.0.1", tb.ports["h1"], **opts))
            conns.append(
                await asyncssh.connect(
                    "127.0.0.1", tb.ports["target"], tunnel=conns[0] if conns else (), **opts
                )
            )
        except BaseException:
            for c in reversed(conns):
                c.close()
            raise
        return conns

    return AsyncsshConn(loop, loop.run_until_complete(go()))


# -- dispatch -------------------------------------------------------------------------


def open_variant(name: str, tb: TestbedInfo) -> Conn:
    """Open the connection a variant name describes."""
    base, _, arg = name.partition(":")
    if base == "direct":
        return open_direct(tb)
    if base == "direct+nodelay":
        return open_direct(tb, nodelay=True)
    if base == "direct+gcm":
        return open_direct(tb, nodelay=True, gcm=True)
    if base == "hand-chain+gcm":
        return open_hand_chain(tb, int(arg or 1), nodelay=True, buffered=True, gcm=True)
    if base in ("paramiko.ProxyCommand", "bridge", "pump"):
        return open_proxy(tb, base)
    if base == "hand-chain":
        return open_hand_chain(tb, int(arg or 1))
    if base == "hand-chain+nodelay":
        return open_hand_chain(tb, int(arg or 1), nodelay=True)
    if base == "hand-chain+buffered":
        return open_hand_chain(tb, int(arg or 1), nodelay=True, buffered=True)
    if base == "hand-chain+pair":
        return open_hand_chain(tb, int(arg or 1), nodelay=True, pair=True)
    if base in HOOK_ALIASES:
        return open_hook(HOOK_ALIASES[base])
    if base == "hook-chain":
        return open_hook(f"c{int(arg or 1)}")
    if base == "asyncssh":
        return open_asyncssh(tb, tunnel=False)
    if base == "asyncssh-tunnel":
        return open_asyncssh(tb, tunnel=True)
    raise ValueError(f"unknown variant {name!r}")


# -- OpenSSH as a process --------------------------------------------------------------


def ssh_argv(tb: TestbedInfo, name: str, command: str) -> list[str]:
    """argv for an OpenSSH variant: ``ssh`` (direct), ``ssh -J`` or ``ssh -J:N``."""
    base, _, arg = name.partition(":")
    if base == "ssh":
        return [SSH, "-F", tb.ssh_config, "target", command]
    if base == "ssh -J":
        hops = ",".join(f"h{i}" for i in range(1, int(arg or 1) + 1))
        return [SSH, "-F", tb.ssh_config, "-J", hops, "target", command]
    raise ValueError(f"unknown OpenSSH variant {name!r}")


def children_cpu() -> float:
    """CPU seconds (user+sys) of reaped children so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def ssh_transfer(argv: list[str], env: dict[str, str], direction: str, nbytes: int) -> float:
    """Run ``ssh`` streaming ``nbytes``; return seconds of streaming.

    Download: first byte to EOF on ssh's stdout. Upload: first write to exit.
    """
    if direction == "down":
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stderr is not None
        fd = proc.stdout.fileno()
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, _CHUNK)
        got = 0
        first = 0.0
        while True:
            data = os.read(fd, _CHUNK)
            if not data:
                break
            if not got:
                first = time.perf_counter()
            got += len(data)
        end = time.perf_counter()
        err = proc.stderr.read()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        if proc.returncode != 0 or got != nbytes:
            raise RuntimeError(f"ssh: status {proc.returncode}, got {got}: {err[-500:]!r}")
        return end - first
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    fd = proc.stdin.fileno()
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _CHUNK)
    if os.read(proc.stdout.fileno(), 1) != b"R":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"ssh: no ready byte: {proc.stderr.read()[-500:]!r}")
    view = memoryview(_ZEROS)
    start = time.perf_counter()
    left = nbytes
    while left:
        n = os.write(fd, view[: min(left, _CHUNK)])
        left -= n
    proc.stdin.close()
    err = proc.stderr.read()
    proc.wait()
    end = time.perf_counter()
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"ssh: status {proc.returncode}: {err[-500:]!r}")
    return end - start
