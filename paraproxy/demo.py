"""``python -m paraproxy demo``: see paraproxy work, with nothing to set up.

It starts three throwaway SSH servers in this process on 127.0.0.1, arranged like the
original paraproxy README (``gatekeeper`` reachable, ``yuka`` only from gatekeeper,
``mayu.kamakura`` only from yuka), writes a temporary ssh config with that README's
ProxyCommands, connects to ``mayu.kamakura`` with a plain ``paramiko.SSHClient`` while
paraproxy's hook is installed, runs ``hostname`` there and tells what happened. The only
process it spawns is gatekeeper's ProxyCommand, which runs on this Python interpreter
(:mod:`paraproxy._relay`), so no ``ssh``, ``nc``, root or user config is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import paramiko

from paraproxy._demoserver import DemoServer, new_ed25519_key

__all__ = ["main"]

log = logging.getLogger(__name__)

#: The hosts of the original README, in chain order.
_HOSTS = ("gatekeeper", "yuka", "mayu.kamakura")
_USER = "demo"
_TIMEOUT = 15.0

_CONFIG = """\
# Written by `python -m paraproxy demo`, removed when it ends.
# Three throwaway SSH servers on 127.0.0.1 play the hosts of paraproxy's original README:
# gatekeeper is reachable, yuka only from gatekeeper, *.kamakura only from yuka.

Host gatekeeper
    HostName 127.0.0.1
    Port {port}
    HostKeyAlias gatekeeper
    ProxyCommand {python} -m paraproxy._relay %h %p

Host yuka
    ProxyCommand ssh -q -A -x gatekeeper 'nc -w1 %h 22'

Host *.kamakura
    ProxyCommand ssh -q -A -x yuka 'nc -w 1 %h 22'

Host *
    User {user}
    IdentityFile {identity}
    UserKnownHostsFile {known_hosts}
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return 0 when the command ran at the far end, 1 otherwise."""
    args = _parser().parse_args(argv)
    target = _HOSTS[args.hops - 1]
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_quiet_servers())  # first in, so last out
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paraproxy-")))
            servers = _start_servers(stack, workdir)
            config = _write_files(workdir, servers)
            _show_setup(servers, config)
            stack.enter_context(_demo_environment(config, workdir))
            if not args.quiet:
                _verbose_output()
            output = _connect_and_run(target, workdir, servers)
            _show_summary(target, output, servers)
    except Exception as exc:
        print(f"\nparaproxy demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m paraproxy demo",
        description="Reach an SSH server through a chain of hops, all in-process on loopback.",
    )
    parser.add_argument(
        "--hops", type=int, choices=(1, 2, 3), default=3,
        help="1: gatekeeper through its ProxyCommand; 2: yuka behind it; "
        "3 (default): mayu.kamakura behind both",
    )  # fmt: skip
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no verbose log of paraproxy's steps"
    )
    return parser


def _start_servers(stack: contextlib.ExitStack, workdir: Path) -> dict[str, DemoServer]:
    """Start the three servers (innermost first: each needs the next one's address)."""
    client_key = new_ed25519_key(workdir / "id_ed25519")
    (workdir / "id_ed25519.pub").write_text(f"{client_key.get_name()} {client_key.get_base64()}\n")
    mayu = stack.enter_context(DemoServer("mayu.kamakura", [client_key]))
    # "Behind" is logical: a server's hosts map is its name service, so yuka is the
    # only one that knows where mayu.kamakura is, and gatekeeper the only one for yuka.
    yuka = stack.enter_context(
        DemoServer("yuka", [client_key], hosts={"mayu.kamakura": mayu.address})
    )
    gatekeeper = stack.enter_context(
        DemoServer("gatekeeper", [client_key], hosts={"yuka": yuka.address})
    )
    return {server.name: server for server in (gatekeeper, yuka, mayu)}


def _write_files(workdir: Path, servers: Mapping[str, DemoServer]) -> Path:
    """Write the ssh config and known_hosts; return the config's path."""
    known_hosts = workdir / "known_hosts"
    # Under the names OpenSSH looks up: the HostKeyAlias for gatekeeper, the bare name
    # for the others (port 22, as far as their clients know).
    known_hosts.write_text("".join(s.known_hosts_line(name) + "\n" for name, s in servers.items()))
    # At HOME/.ssh/config as well as PARAPROXY_CONFIG: whichever way a hop is looked
    # up, it finds this file. ssh refuses a config others can write: 0700 and 0600.
    ssh_dir = workdir / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    config = ssh_dir / "config"
    config.touch(mode=0o600)
    config.write_text(
        _CONFIG.format(
            port=servers["gatekeeper"].port,
            python=shlex.quote(sys.executable),
            user=_USER,
            identity=workdir / "id_ed25519",
            known_hosts=known_hosts,
        )
    )
    return config


def _show_setup(servers: Mapping[str, DemoServer], config: Path) -> None:
    """Say what was started and show the config."""
    print("paraproxy demo: three throwaway SSH servers in this process, on loopback")
    roles = ["reachable directly", "reachable only from gatekeeper", "reachable only from yuka"]
    for (name, server), role in zip(servers.items(), roles):
        print(f"  {name:<14} 127.0.0.1:{server.port:<6} {role}")
    print(f"\nssh config ({config}):")
    for line in config.read_text().splitlines():
        if line and not line.startswith("#"):
            print(f"  {line}")
    print()


@contextlib.contextmanager
def _demo_environment(config: Path, workdir: Path) -> Iterator[None]:
    """Make paraproxy read only the demo's config and nothing of the user's."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    python_path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    changes = {
        "PARAPROXY_CONFIG": str(config),  # replaces ~/.ssh/config and /etc/ssh/ssh_config
        "HOME": str(workdir),  # so nothing of the user's (~/.ssh keys, config) is found
        "SSH_AUTH_SOCK": None,  # nor their agent's keys
        "PARAPROXY_DISABLE": None,  # the demo is about the hook
        # The ProxyCommand runs `python -m paraproxy._relay`: find this very package.
        "PYTHONPATH": python_path,
    }
    saved = {name: os.environ.get(name) for name in changes}
    try:
        _set_environ(changes)
        yield
    finally:
        _set_environ(saved)


def _set_environ(values: Mapping[str, str | None]) -> None:
    """Set or (for None) remove environment variables."""
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def _quiet_servers() -> Iterator[None]:
    """Keep the servers' debug log out of the verbose output (the summary tells their side)."""
    server_log = logging.getLogger("paraproxy._demoserver")
    level = server_log.level
    server_log.setLevel(logging.CRITICAL)  # a client hanging up is an "error" to paramiko
    try:
        yield
    finally:
        server_log.setLevel(level)


def _verbose_output() -> None:
    """Show paraproxy's steps on stderr, as ``PARAMIKO_SSH_HOOK_VERBOSE=1`` does."""
    from paraproxy import _verbose  # noqa: PLC0415 - only the demo needs it

    _verbose.enable()


def _connect_and_run(target: str, workdir: Path, servers: Mapping[str, DemoServer]) -> str:
    """Connect to ``target`` the plain paramiko way, with the hook; return ``hostname``."""
    import paraproxy  # noqa: PLC0415 - importing is what installs the hook

    paraproxy.install()  # a no-op unless PARAPROXY_DISABLE kept the import from it
    print(f'paramiko.SSHClient().connect("{target}") with paraproxy imported:', flush=True)
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(str(workdir / "known_hosts"))
        client.connect(
            target,
            key_filename=str(workdir / "id_ed25519"),
            timeout=_TIMEOUT,
            allow_agent=False,
            look_for_keys=False,
        )
        _, stdout, stderr = client.exec_command("hostname", timeout=_TIMEOUT)
        output = stdout.read().decode(errors="replace").strip()
        status = stdout.channel.recv_exit_status()
        if status != 0:
            raise RuntimeError(f"hostname exited with {status}: {stderr.read()!r}")
        return output
    finally:
        client.close()


def _show_summary(target: str, output: str, servers: Mapping[str, DemoServer]) -> None:
    """Print the command's output and, server by server, what reached what."""
    print(f"\n$ hostname        # on {target}\n{output}\n")
    print("What the servers saw:")
    previous: DemoServer | None = None
    for name in _HOSTS[: _HOSTS.index(target) + 1]:
        server = servers[name]
        print(f"  {name:<14} reached {_reached(previous, server)}")
        for event in server.events():
            if event.kind not in ("CONNECT", "CLOSE"):
                print(f"  {'':<14}   {event.kind} {event.detail}")
        previous = server
    print(f"\n{_conclusion(target, servers)}")


def _conclusion(target: str, servers: Mapping[str, DemoServer]) -> str:
    """One sentence on the whole chain, claiming only what the servers' records show."""
    hops = _HOSTS[: _HOSTS.index(target)]
    if not hops:
        return f"{target} was reached through its ProxyCommand."
    clients = {
        event.detail.rsplit("(", 1)[-1].rstrip(")")
        for name in _HOSTS[: len(hops) + 1]
        for event in servers[name].events()
        if event.kind == "SSHAUTH"
    }
    text = f"{target} was reached through {' and '.join(hops)}."
    if clients and all(client.startswith("SSH-2.0-paramiko") for client in clients):
        text += (
            "\nEach hop's `ssh ... 'nc ...'` ProxyCommand was done in-process: every server"
            "\nwas spoken to by paramiko from this process, and no ssh was spawned."
        )
    return text


def _reached(previous: DemoServer | None, server: DemoServer) -> str:
    """How ``server`` was reached, from what its predecessor recorded."""
    if previous is None:
        return "through the ProxyCommand (python -m paraproxy._relay)"
    kinds = {event.kind for event in previous.events()}
    if "RELAY" in kinds:
        return f"through an nc relay run on {previous.name}"
    if "DIRECT-TCPIP" in kinds:
        return f"through a direct-tcpip channel of {previous.name}"
    return f"from {previous.name}"


if __name__ == "__main__":
    sys.exit(main())
