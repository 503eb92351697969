"""Throwaway OpenSSH servers on loopback for the benchmarks.

Everything lives in one temporary directory: a client key, one ed25519 host
key and one ``sshd_config`` per server, a known_hosts file, an ssh_config used
by ``ssh -F`` and by paraproxy (``PARAPROXY_CONFIG``), and a fake ``HOME``
whose ``~/.ssh/known_hosts`` is the same file. The servers set ``SHLVL`` for
sessions, so that bash does not read the user's ``~/.bashrc`` for every
command (Debian builds do, for commands run by sshd). No network namespace, no root:
as a normal user sshd runs on a high port and the user logs in as themselves.

:meth:`Testbed.stop` kills every server and whatever connection children they
still have, and removes the directory; it is safe to call twice.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH = shutil.which("ssh") or "/usr/bin/ssh"

#: Names of the servers: a target, and four hops for chains of 1 to 4 hops.
#: ``hop`` is an alias of ``h1`` (the one hop of every two-hop chain).
SERVER_NAMES = ("target", "h1", "h2", "h3", "h4")
MAX_HOPS = 4

_SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
AddressFamily inet
HostKey {hostkey}
PidFile {pidfile}
AuthorizedKeysFile {authorized_keys}
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
AllowAgentForwarding no
X11Forwarding no
PrintMotd no
UseDNS no
MaxStartups 200
MaxSessions 64
LogLevel INFO
Subsystem sftp internal-sftp
# Debian's bash sources ~/.bashrc for commands run by sshd when SHLVL is unset;
# a heavy .bashrc (pyenv init: ~250 ms here) would then be timed as SSH.
SetEnv SHLVL=1
"""


@dataclass
class Server:
    """One sshd: its name, port, files and process."""

    name: str
    port: int
    dir: str
    log: str
    pid: int = 0


@dataclass
class TestbedInfo:
    """What workers need to know about the testbed (JSON-serialisable)."""

    root: str
    user: str
    key: str
    known_hosts: str
    ssh_config: str
    home: str
    ports: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def dump(self, path: str) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str) -> TestbedInfo:
        """Read what :meth:`dump` wrote."""
        return cls(**json.loads(Path(path).read_text()))

    def hook_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a process that uses paraproxy's hook against this testbed."""
        env = self.python_env(base)
        env["PARAPROXY_CONFIG"] = self.ssh_config
        return env

    def plain_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for plain paramiko / OpenSSH (paraproxy's hook, if imported, is off)."""
        env = self.python_env(base)
        env["PARAPROXY_DISABLE"] = "1"
        return env

    def clean_env_nopyc(self) -> dict[str, str]:
        """Like :meth:`python_env`, but no bytecode cache for paraproxy's sources."""
        env = clean_env()
        env["HOME"] = self.home
        env.pop("PYTHONPYCACHEPREFIX", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def python_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """A clean environment whose Python caches bytecode in the testbed.

        Python writes and uses ``.pyc`` files as it does for an installed
        package, even where ``PYTHONDONTWRITEBYTECODE`` is set (as in some dev
        shells: paraproxy would then be compiled at every start), without
        writing into the source tree.
        """
        env = clean_env(base)
        env["HOME"] = self.home
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(self.root, "pycache")
        return env


def clean_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without agents or paraproxy settings."""
    env = dict(os.environ if base is None else base)
    for name in list(env):
        if name.startswith(("SSH_", "PARAPROXY_", "PARAMIKO_SSH_HOOK")):
            del env[name]
    env.setdefault("SHELL", "/bin/sh")
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Testbed:
    """Start :data:`SERVER_NAMES` sshd servers and write the client side files."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="paraproxy-bench-")
        self.servers: dict[str, Server] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logfiles: list[object] = []
        self.info: TestbedInfo | None = None

    # -- setup -------------------------------------------------------------

    def start(self) -> TestbedInfo:
        """Generate keys, start every server, wait until each one speaks SSH."""
        root = Path(self.root)
        user = getpass.getuser()
        key = root / "id_ed25519"
        _keygen(key, "bench-client")
        authorized = root / "authorized_keys"
        authorized.write_text(Path(f"{key}.pub").read_text())
        home = root / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        known_hosts = home / ".ssh" / "known_hosts"
        lines = []
        for name in SERVER_NAMES:
            sdir = root / name
            sdir.mkdir()
            hostkey = sdir / "ssh_host_ed25519_key"
            _keygen(hostkey, f"bench-{name}")
            server = self._start_server(name, sdir, hostkey, authorized)
            pub = Path(f"{hostkey}.pub").read_text().split()
            lines.append(f"[127.0.0.1]:{server.port} {pub[0]} {pub[1]}\n")
        known_hosts.write_text("".join(lines))
        cfg = root / "ssh_config"
        self.info = TestbedInfo(
            root=str(root),
            user=user,
            key=str(key),
            known_hosts=str(known_hosts),
            ssh_config=str(cfg),
            home=str(home),
            ports={n: s.port for n, s in self.servers.items()},
            logs={n: s.log for n, s in self.servers.items()},
        )
        cfg.write_text(ssh_config_text(self.info))
        shutil.copy(cfg, home / ".ssh" / "config")
        for server in self.servers.values():
            self._wait_ready(server)
        return self.info

    def _start_server(self, name: str, sdir: Path, hostkey: Path, authorized: Path) -> Server:
        """Start one sshd on a free port (retrying if the port was taken meanwhile)."""
        last = ""
        for _attempt in range(5):
            port = free_port()
            cfgfile = sdir / "sshd_config"
            cfgfile.write_text(
                _SSHD_CONFIG.format(
                    port=port,
                    hostkey=hostkey,
                    pidfile=sdir / "sshd.pid",
                    authorized_keys=authorized,
                )
            )
            log = sdir / "sshd.log"
            logf = open(log, "ab")  # noqa: SIM115 - closed in stop()
            self._logfiles.append(logf)
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(cfgfile)],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                start_new_session=True,
            )
            server = Server(name=name, port=port, dir=str(sdir), log=str(log), pid=proc.pid)
            if _listening(port, proc, 10.0):
                self.servers[name] = server
                self._procs[name] = proc
                return server
            _kill_group(proc)
            last = Path(log).read_text(errors="replace")[-2000:]
        raise RuntimeError(f"sshd {name} did not start:\n{last}")

    def _wait_ready(self, server: Server) -> None:
        """Wait until the server sends its banner."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"sshd {server.name} on port {server.port} sends no banner")

    # -- teardown ----------------------------------------------------------

    def stop(self) -> None:
        """Kill every server and its connection children; remove the directory."""
        for proc in self._procs.values():
            for pid in _descendants(proc.pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            _kill_group(proc)
        self._procs.clear()
        for f in self._logfiles:
            with contextlib.suppress(Exception):
                f.close()  # type: ignore[attr-defined]
        self._logfiles.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ssh_config_text(info: TestbedInfo) -> str:
    """The ssh_config for ``ssh -F`` and ``PARAPROXY_CONFIG``.

    Aliases: ``target``, ``hop`` (= h1), ``h1``-``h4`` reach servers directly;
    ``pc`` is the target through ``ProxyCommand nc %h %p``; ``tj`` through
    ``ProxyJump hop``; ``ts`` through ``ProxyCommand ssh -F CFG hop nc %h %p``
    (the ssh-hop exec form); ``c0``-``c4`` through ``ProxyJump h1,...,hN``.
    """
    t = info.ports["target"]
    blocks = [
        ("target", t, None),
        ("hop", info.ports["h1"], None),
        *((f"h{i}", info.ports[f"h{i}"], None) for i in range(1, MAX_HOPS + 1)),
        ("pc", t, "ProxyCommand nc %h %p"),
        ("tj", t, "ProxyJump hop"),
        ("ts", t, f"ProxyCommand ssh -F {info.ssh_config} hop nc %h %p"),
        ("c0", t, None),
        *(
            (f"c{n}", t, "ProxyJump " + ",".join(f"h{i}" for i in range(1, n + 1)))
            for n in range(1, MAX_HOPS + 1)
        ),
    ]
    out = ["# generated by benchmarks/servers.py\n"]
    for alias, port, extra in blocks:
        out.append(f"Host {alias}\n    HostName 127.0.0.1\n    Port {port}\n")
        if extra:
            out.append(f"    {extra}\n")
    out.append(
        "Host *\n"
        f"    User {info.user}\n"
        f"    IdentityFile {info.key}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {info.known_hosts}\n"
        "    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking yes\n"
        "    BatchMode yes\n"
        "    LogLevel ERROR\n"
        "    ControlMaster no\n"
        "    ControlPath none\n"
    )
    return "".join(out)


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until ``port`` accepts connections; False if sshd exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """TERM the process group, then KILL it if it lingers; reap the leader."""
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (sshd's connection children call setsid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
