"""The test bed itself: three namespaces, their links, sshds and client keys, with teardown."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Callable

from .netns import (
    ROUTE_PROTO,
    TMP_PREFIX,
    AddressLock,
    Namespace,
    TestbedError,
    cleanup_stale,
    ip,
    kill_processes,
    namespace_name,
    root_ifname,
)
from .sshd import (
    OptionValue,
    SshdHandle,
    find_program,
    fingerprint,
    generate_keys,
    inetd_command,
    public_key,
    start_sshd,
    stop_all,
    write_inetd_config,
)

__all__ = [
    "CLIENT_KEYS",
    "HOSTS",
    "SshHost",
    "SshTestbed",
    "build_testbed",
    "signals_interrupt",
]

#: Short host name -> (fully qualified name, last address octet group), in chain order.
HOSTS = ("gatekeeper", "yuka", "mayu")
FQDN = {"gatekeeper": "gatekeeper", "yuka": "yuka", "mayu": "mayu.kamakura"}
#: Client keys: one per host (authorized there only) and "all" (authorized everywhere).
CLIENT_KEYS = ("gatekeeper", "yuka", "mayu", "all")
#: Most seconds one ``ssh gatekeeper 'echo ready'`` may take when the test bed is built.
SESSION_CHECK_SECONDS = 10.0


@dataclass
class SshHost:
    """One host of the topology."""

    name: str  #: short name: gatekeeper, yuka, mayu
    hostname: str  #: the name the upstream host resolves: gatekeeper, yuka, mayu.kamakura
    address: str  #: the address its upstream neighbour (the client for gatekeeper) reaches
    addresses: tuple[str, ...]  #: all its addresses
    namespace: Namespace
    host_key: Path  #: private host key (ed25519)
    host_public_key: str  #: "ssh-ed25519 AAAA..."
    authorized_keys: Path  #: AuthorizedKeysFile of its sshds
    sshd: SshdHandle | None = None  #: the sshd on port 22

    @property
    def log_path(self) -> Path:
        """The log of the port-22 sshd."""
        assert self.sshd is not None
        return self.sshd.log_path

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every name the host goes by (for hosts files)."""
        return tuple(dict.fromkeys([self.hostname, self.name]))


@dataclass
class SshTestbed:
    """The running topology (see the package docstring). Build it with :func:`build_testbed`."""

    __test__ = False  # not a pytest test class

    net: str  #: first two octets, "198.18"
    run_tag: str  #: "<pid>-<rand>", part of every name this run creates
    workdir: Path  #: temp dir with keys, configs, logs (mode 700)
    hosts: dict[str, SshHost] = field(default_factory=dict)
    client_keys: dict[str, Path] = field(default_factory=dict)  #: name -> private key path
    sshds: list[SshdHandle] = field(default_factory=list)  #: every sshd started, in order
    root_ifname: str = ""  #: the client-side veth in the root namespace
    routes: list[str] = field(default_factory=list)  #: routes added to the root namespace
    _lock: AddressLock | None = None
    _own_lock: bool = False
    _closed: bool = False
    setup_seconds: float = 0.0

    # -- the hosts -------------------------------------------------------------------------
    @property
    def gatekeeper(self) -> SshHost:
        """The host reachable from the client (198.18.1.2)."""
        return self.hosts["gatekeeper"]

    @property
    def yuka(self) -> SshHost:
        """The host reachable only from gatekeeper (198.18.2.2)."""
        return self.hosts["yuka"]

    @property
    def mayu(self) -> SshHost:
        """mayu.kamakura, reachable only from yuka (198.18.3.2)."""
        return self.hosts["mayu"]

    def host(self, name: str) -> SshHost:
        """A host by short name, full name or any of its addresses."""
        for host in self.hosts.values():
            if name == host.name or name == host.hostname or name in host.addresses:
                return host
        raise KeyError(f"no test-bed host {name!r}; hosts: {sorted(self.hosts)}")

    @property
    def gatekeeper_noforward(self) -> SshdHandle:
        """gatekeeper's second sshd on port 2222: AllowTcpForwarding no, PermitOpen none."""
        return next(h for h in self.sshds if h.label == "gatekeeper-noforward")

    # -- keys and known_hosts --------------------------------------------------------------
    def key(self, name: str) -> Path:
        """Private key path of client key ``name``: gatekeeper, yuka, mayu (or mayu.kamakura),
        all, or one made by :meth:`new_client_key`."""
        if name in self.client_keys:
            return self.client_keys[name]
        return self.client_keys[self.host(name).name]

    def key_fingerprint(self, name: str) -> str:
        """``SHA256:...`` of client key ``name``, as sshd logs it on login."""
        return fingerprint(self.key(name))

    def new_client_key(
        self, name: str, *, passphrase: str = "", authorize_on: Sequence[str] = ()
    ) -> Path:
        """Generate client key ``id_<name>`` (optionally encrypted) and authorize it on hosts.

        The sshds read their authorized_keys at each login, so this takes effect at once.
        Keys stay authorized for the rest of the session: use a fresh ``name`` per test.
        """
        if name in self.client_keys:
            raise ValueError(f"client key {name!r} exists already")
        path = self.workdir / f"id_{name}"
        generate_keys({path: f"client-{name}"}, passphrase)
        self.client_keys[name] = path
        for host in authorize_on:
            with self.host(host).authorized_keys.open("a") as f:
                f.write(f"{public_key(path)} id_{name}\n")
        return path

    def extra_host_key(self, name: str) -> Path:
        """Private host key ``name`` besides the hosts' own, created on first use.

        For inetd-mode sshds and for ``start_sshd(host_key=...)`` (e.g. "host key changed").
        ``known_hosts_line(name, ...)`` gives its line.
        """
        path = self.workdir / f"hostkey_extra_{name}"
        if not path.exists():
            generate_keys({path: f"host-extra-{name}"})
        return path

    def host_public_key(self, host: str) -> str:
        """``ssh-ed25519 AAAA...`` of a topology host or of an extra host key."""
        try:
            return self.host(host).host_public_key
        except KeyError:
            path = self.workdir / f"hostkey_extra_{host}"
            if not path.exists():
                raise KeyError(
                    f"{host!r} is neither a test-bed host {sorted(self.hosts)} nor an extra "
                    f"host key made so far (see extra_host_key, sshd_inetd_command)"
                ) from None
            return public_key(path)

    def known_hosts_line(self, host: str, name: str) -> str:
        """A known_hosts line giving ``host``'s key under ``name`` (e.g. ``[198.18.1.2]:2222``).

        ``host`` is a topology host (gatekeeper, yuka, mayu, mayu.kamakura) or the name of an
        extra host key (see :meth:`extra_host_key`, :meth:`sshd_inetd_command`). ``name`` may
        be a comma-separated list of names.
        """
        return f"{name} {self.host_public_key(host)}"

    # -- running things --------------------------------------------------------------------
    def run_in(
        self, host: str, argv: Sequence[str], *, timeout: float = 15.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``host``'s namespace (``ip netns exec``); never raises on status."""
        return self.host(host).namespace.run(argv, timeout=timeout, input=input)

    def start_sshd(
        self,
        host: str,
        port: int,
        extra_options: Mapping[str, OptionValue] | None = None,
        *,
        label: str | None = None,
        extra_config: str = "",
        authorized_keys: Path | None = None,
        host_key: Path | None = None,
    ) -> SshdHandle:
        """Start another sshd in ``host``'s namespace, with ``host``'s keys unless given.

        Returns once it listens. Stop it with ``.stop()`` in the test (the leak check sees
        it otherwise); teardown of the test bed stops it anyway.
        """
        h = self.host(host)
        handle = start_sshd(
            h.namespace,
            port,
            extra_options,
            workdir=self.workdir,
            host_key=host_key or h.host_key,
            authorized_keys=authorized_keys or h.authorized_keys,
            label=label or f"{h.name}-{port}-{len(self.sshds)}",
            extra_config=extra_config,
        )
        self.sshds.append(handle)
        return handle

    def sshd_inetd_command(
        self,
        host_key_name: str = "proxied",
        *,
        authorized: Sequence[str] = CLIENT_KEYS,
        extra_options: Mapping[str, OptionValue] | None = None,
    ) -> str:
        """A ProxyCommand running a throwaway ``sshd -i`` over stdio in the root namespace.

        The OpenSSH regress suite's trick for one-hop tests without a port. It has its own
        host key, the extra host key ``host_key_name`` (created on first use; its line:
        ``inetd_known_hosts_line(alias, host_key_name)``), accepts the client keys
        ``authorized`` (default: the four of the test bed) and logs to :meth:`inetd_log_path`.
        Every run of the command is a fresh sshd process, which exits with the connection.
        """
        key = self.extra_host_key(host_key_name)
        auth = self.workdir / f"authorized_keys_inetd_{host_key_name}"
        auth.write_text("".join(f"{public_key(self.key(k))} {k}\n" for k in authorized))
        config = write_inetd_config(self.workdir, host_key_name, key, auth, extra_options)
        log = self.inetd_log_path(host_key_name)
        return inetd_command(config, log)

    def inetd_known_hosts_line(self, name: str, host_key_name: str = "proxied") -> str:
        """The known_hosts line for the inetd-mode host key ``host_key_name`` under ``name``."""
        return f"{name} {public_key(self.extra_host_key(host_key_name))}"

    def inetd_log_path(self, host_key_name: str = "proxied") -> Path:
        """The log file of the inetd-mode sshds using host key ``host_key_name``."""
        return self.workdir / f"sshd_inetd_{host_key_name}.log"

    # -- teardown --------------------------------------------------------------------------
    def close(self) -> None:
        """Tear everything down: processes, namespaces, veths, routes, files (idempotent).

        Runs every step even if one fails, then raises TestbedError listing the failures.
        """
        if self._closed:
            return
        self._closed = True
        errors = stop_all(list(reversed(self.sshds)))
        for host in reversed(list(self.hosts.values())):
            left = kill_processes(host.namespace.pids())
            if left:
                errors.append(f"{host.namespace.name}: processes survived SIGKILL: {left}")
        if self.root_ifname:
            try:
                ip("link", "del", self.root_ifname)
            except TestbedError as exc:
                if "Cannot find device" not in str(exc):
                    errors.append(str(exc))
        for route in self.routes:
            try:
                ip("route", "del", *route.split())
            except TestbedError as exc:
                errors.append(str(exc))
        for host in self.hosts.values():
            if host.namespace.path.exists():
                try:
                    ip("netns", "del", host.namespace.name)
                except TestbedError as exc:
                    errors.append(str(exc))
            shutil.rmtree(host.namespace.etc_dir, ignore_errors=True)
        try:
            Path("/etc/netns").rmdir()
        except OSError:
            pass  # not empty: another run uses it
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self._lock is not None and self._own_lock:
            self._lock.release()
        atexit.unregister(self.close)
        if errors:
            raise TestbedError("test bed teardown incomplete:\n  " + "\n  ".join(errors))

    def __enter__(self) -> SshTestbed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building --------------------------------------------------------------------------
    def _build(self, log: Callable[[str], None]) -> None:
        start = time.monotonic()
        n = self.net
        pid, rand = self.run_tag.split("-")
        addrs = {
            "gatekeeper": (f"{n}.1.2", f"{n}.2.1"),
            "yuka": (f"{n}.2.2", f"{n}.3.1"),
            "mayu": (f"{n}.3.2",),
        }
        keys: dict[Path, str] = {}
        for name in HOSTS:
            ns = Namespace(namespace_name(int(pid), rand, name), name)
            self.hosts[name] = SshHost(
                name,
                FQDN[name],
                addrs[name][0],
                addrs[name],
                ns,
                self.workdir / f"host_{name}",
                "",
                self.workdir / f"authorized_keys_{name}",
            )
            keys[self.workdir / f"host_{name}"] = f"host-{name}"
        for name in CLIENT_KEYS:
            self.client_keys[name] = self.workdir / f"id_{name}"
            keys[self.workdir / f"id_{name}"] = f"client-{name}"
        generate_keys(keys)
        for host in self.hosts.values():
            host.host_public_key = public_key(host.host_key)
            host.authorized_keys.write_text(
                f"{public_key(self.client_keys[host.name])} id_{host.name}\n"
                f"{public_key(self.client_keys['all'])} id_all\n"
            )
        self._write_etc(addrs)
        gk, yk, my = (self.hosts[h].namespace.name for h in HOSTS)
        self.root_ifname = root_ifname(int(pid), rand)
        # Everything under 198.18.2/24 and .3/24 is unreachable from the root namespace: fail
        # at once instead of sending the packets towards the default gateway.
        unreachable = [f"unreachable {n}.{i}.0/24 proto {ROUTE_PROTO}" for i in (2, 3)]
        ip(
            batch=[
                f"netns add {gk}",
                f"netns add {yk}",
                f"netns add {my}",
                f"link add {self.root_ifname} type veth peer name to-client netns {gk}",
                f"link add to-yuka netns {gk} type veth peer name to-gatekeeper netns {yk}",
                f"link add to-mayu netns {yk} type veth peer name to-yuka netns {my}",
                f"addr add {n}.1.1/24 dev {self.root_ifname}",
                f"link set {self.root_ifname} up",
                *(f"route replace {r}" for r in unreachable),
            ]
        )
        self.routes = unreachable
        ip(
            netns=gk,
            batch=[
                "link set lo up",
                f"addr add {n}.1.2/24 dev to-client",
                "link set to-client up",
                f"addr add {n}.2.1/24 dev to-yuka",
                "link set to-yuka up",
            ],
        )
        ip(
            netns=yk,
            batch=[
                "link set lo up",
                f"addr add {n}.2.2/24 dev to-gatekeeper",
                "link set to-gatekeeper up",
                f"addr add {n}.3.1/24 dev to-mayu",
                "link set to-mayu up",
            ],
        )
        ip(
            netns=my,
            batch=[
                "link set lo up",
                f"addr add {n}.3.2/24 dev to-yuka",
                "link set to-yuka up",
            ],
        )
        log(f"namespaces ready after {time.monotonic() - start:.3f} s")
        for host in self.hosts.values():
            host.sshd = start_sshd(
                host.namespace,
                22,
                workdir=self.workdir,
                host_key=host.host_key,
                authorized_keys=host.authorized_keys,
                label=host.name,
                wait=False,
            )
            self.sshds.append(host.sshd)
        self.sshds.append(
            start_sshd(
                self.gatekeeper.namespace,
                2222,
                {"AllowTcpForwarding": "no", "PermitOpen": "none"},
                workdir=self.workdir,
                host_key=self.gatekeeper.host_key,
                authorized_keys=self.gatekeeper.authorized_keys,
                label="gatekeeper-noforward",
                wait=False,
            )
        )
        for handle in self.sshds:
            handle.wait_ready()
        self._check_sessions()
        self.setup_seconds = time.monotonic() - start
        log(f"test bed ready after {self.setup_seconds:.3f} s")

    def _check_sessions(self) -> None:
        """Run one command on gatekeeper with OpenSSH's client; fail the build if it is slow.

        Every test runs commands through these sshds: a machine where a session takes
        seconds (a login shell stuck in a startup file, say) would otherwise turn each test
        into a timeout and the suite into hours. One clear error here instead.
        """
        known = self.workdir / "known_hosts_check"
        known.write_text(self.known_hosts_line("gatekeeper", self.gatekeeper.address) + "\n")
        argv = [
            find_program("ssh"), "-F", "none", "-i", str(self.key("gatekeeper")),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=none",
            f"root@{self.gatekeeper.address}", "echo ready",
        ]
        start = time.monotonic()
        try:
            done = subprocess.run(argv, check=False, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=SESSION_CHECK_SECONDS)
        except subprocess.TimeoutExpired:
            raise TestbedError(
                f"a command run through the test bed's sshd took over {SESSION_CHECK_SECONDS} s;"
                f" see {self.gatekeeper.log_path}"
            ) from None
        if done.stdout.strip() != "ready":
            raise TestbedError(
                f"ssh root@{self.gatekeeper.address} 'echo ready' failed (status"
                f" {done.returncode}): {done.stderr.strip()[-500:]}"
            )
        seconds = time.monotonic() - start
        if seconds > SESSION_CHECK_SECONDS / 2:
            raise TestbedError(
                f"a command run through the test bed's sshd took {seconds:.1f} s"
            )

    def _write_etc(self, addrs: Mapping[str, tuple[str, ...]]) -> None:
        """hosts, resolv.conf and nsswitch.conf for every namespace (bind-mounted over /etc)."""
        seen_from = {  # what each host knows: itself and its neighbours, by reachable address
            "gatekeeper": [("gatekeeper", addrs["gatekeeper"][0]), ("yuka", addrs["yuka"][0])],
            "yuka": [
                ("yuka", addrs["yuka"][0]),
                ("gatekeeper", addrs["gatekeeper"][1]),
                ("mayu", addrs["mayu"][0]),
            ],
            "mayu": [("mayu", addrs["mayu"][0]), ("yuka", addrs["yuka"][1])],
        }
        try:
            nsswitch = Path("/etc/nsswitch.conf").read_text()
        except OSError:
            nsswitch = "passwd: files\ngroup: files\nshadow: files\n"
        nsswitch = (
            "".join(
                line for line in nsswitch.splitlines(keepends=True) if not line.startswith("hosts:")
            )
            + "hosts: files dns\n"
        )
        for name, host in self.hosts.items():
            hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            for other, address in seen_from[name]:
                hosts += f"{address}\t{' '.join(self.hosts[other].aliases)}\n"
            host.namespace.write_etc(
                {
                    "hosts": hosts,
                    # No DNS query may leave the machine: nothing listens on 127.0.0.1:53 in there.
                    "resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
                    "nsswitch.conf": nsswitch,
                }
            )


def build_testbed(
    net: str = "198.18",
    *,
    lock: AddressLock | None = None,
    lock_timeout: float = 60.0,
    log: Callable[[str], None] = lambda message: None,
) -> SshTestbed:
    """Build the whole topology and return it running; on any failure tear down and raise.

    ``net`` gives the first two octets of every address. A run must hold the address lock
    of ``net`` (pass one already held, or it is taken here with ``lock_timeout``). Leftovers
    of dead runs are removed first. Teardown also runs at interpreter exit if ``close()`` was
    never called.
    """
    if os.geteuid() != 0:
        raise TestbedError("the namespace test bed needs root (ip netns, sshd on port 22)")
    for line in cleanup_stale():
        log(f"removed leftover {line}")
    own_lock = lock is None
    lock = lock or AddressLock(net)
    lock.acquire(lock_timeout, log)
    rand = secrets.token_hex(3)
    tag = f"{os.getpid()}-{rand}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{tag}-"))
    bed = SshTestbed(net, tag, workdir, _lock=lock, _own_lock=own_lock)
    atexit.register(bed.close)
    try:
        bed._build(log)
    except BaseException:
        try:
            bed.close()
        except TestbedError as exc:
            log(str(exc))
        raise
    return bed


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def signals_interrupt(
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGHUP),
) -> Iterator[None]:
    """Within the block, turn ``signals`` into KeyboardInterrupt, so that teardown runs.

    Only signals still at their default disposition are taken over (main thread only).
    """
    previous = {}
    for sig in signals:
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
