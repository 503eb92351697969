"""Plan the route to a host: which hops, in which order, each reached how.

Planning is pure: it reads ssh_config (through :func:`paraproxy.config.resolve`)
and parses commands, but opens no socket and starts no process. The result is a
frozen :class:`Route`, which :mod:`paraproxy.jump` then builds.

The rules are OpenSSH's (``ssh.c``, ``readconf.c:parse_jump``):

* ``ProxyJump h1,h2,h3`` visits h1 first. Only the leftmost hop's own
  ProxyJump or ProxyCommand is followed; the later ones are reached with ``-J``
  on their command line, which beats whatever their config says.
* A ProxyCommand that is an ``ssh`` invocation of a shape paraproxy fully
  understands (``ssh [opts] HOP RELAY`` or ``ssh [opts] -W host:port HOP``)
  becomes an in-process hop; HOP is resolved like a fresh ``ssh`` would
  resolve it, its own ProxyCommand or ProxyJump included. Anything else runs
  as a real ProxyCommand, and the log says why.
* A host seen twice in one chain (same user, host and port) is a loop, and
  chains longer than :data:`MAX_HOPS` are refused, both before connecting.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Union

from paraproxy import config as _config
from paraproxy._jumpspec import JumpHost, parse_proxy_jump
from paraproxy._sshcmd import NotRecognised, Relay, SshCommand, parse_ssh_command
from paraproxy.errors import ChainError, ConfigError

__all__ = [
    "MAX_HOPS",
    "Exec",
    "Forward",
    "Hop",
    "ProxyCommand",
    "Route",
    "Tcp",
    "plan",
]

logger = logging.getLogger(__name__)

#: The most hops a chain may have, the target included. OpenSSH has no limit
#: (a loop recurses through processes); open-remote-ssh refuses more than 10.
MAX_HOPS = int(os.environ.get("PARAPROXY_MAX_HOPS", "10") or 10)


@dataclass(frozen=True)
class Tcp:
    """Reach the hop with a TCP connection from this machine."""

    host: str
    port: int

    def describe(self) -> str:
        """``CONNECT host:port``, as the original paraproxy printed it."""
        return f"CONNECT {self.host}:{self.port}"


@dataclass(frozen=True)
class ProxyCommand:
    """Reach the hop through a local ProxyCommand (tokens already expanded)."""

    command: str
    why: str = ""
    #: ProxyUseFdpass: the command passes back a connected socket and exits.
    fdpass: bool = False

    def describe(self) -> str:
        """``PROXY 'command'``."""
        return f"PROXY {self.command!r}"


@dataclass(frozen=True)
class Forward:
    """Reach the hop through a direct-tcpip channel on the previous hop (``-W``/``-J``)."""

    host: str
    port: int

    def describe(self) -> str:
        """``--> JUMP host:port``."""
        return f"--> JUMP {self.host}:{self.port}"


@dataclass(frozen=True)
class Exec:
    """Reach the hop by running a relay command on the previous hop (``ssh HOP 'nc %h %p'``)."""

    command: str
    relay: Relay | None = None
    forward_agent: bool = False

    def describe(self) -> str:
        """``--> EXEC 'nc -w1 yuka 22'``."""
        return f"--> EXEC {self.command!r}"


Via = Union[Tcp, ProxyCommand, Forward, Exec]


@dataclass(frozen=True)
class Hop:
    """One host of a chain: its resolved config and how its transport is reached."""

    config: _config.HostConfig
    via: Via
    index: int = 0
    total: int = 0
    #: The (file, line) of the ProxyJump/ProxyCommand that decided ``via``, if any.
    origin: tuple[str, int] | None = None

    @property
    def label(self) -> str:
        """``hop 2/3 yuka (root@yuka:22)``: how errors and logs name this hop."""
        c = self.config
        return f"hop {self.index}/{self.total} {c.host} ({c.user}@{c.hostname}:{c.port})"

    @property
    def key(self) -> tuple[str, str, int]:
        """What makes two hops the same host: (user, host, port)."""
        c = self.config
        return (c.user, c.hostname, c.port)


@dataclass(frozen=True)
class Route:
    """Every hop to the target, in the order they are visited; the target is last."""

    hops: tuple[Hop, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def target(self) -> Hop:
        """The host the caller asked for."""
        return self.hops[-1]

    @property
    def is_chain(self) -> bool:
        """Whether SSH hops stand between this machine and the target."""
        return len(self.hops) > 1

    def describe(self) -> str:
        """``local -> gatekeeper -> yuka -> mayu.kamakura``."""
        names = ["local"]
        first = self.hops[0].via
        if isinstance(first, ProxyCommand):
            names.append(f"[{first.command}]")
        names.extend(h.config.host for h in self.hops)
        return " -> ".join(names)


Resolver = Callable[..., _config.HostConfig]


def plan(
    target: _config.HostConfig,
    config_files: Sequence[str] | None = None,
    resolve: Resolver | None = None,
) -> Route:
    """Turn a resolved target into the full route, following the config hop by hop.

    ``config_files`` are those the target was resolved with (``None``: the
    defaults); every hop is looked up in the same files, as ``ssh -F`` passes
    ``-F`` on to its jump hosts, unless a hop's ssh command line names its own.
    """
    planner = _Planner(resolve or _config.resolve, config_files)
    hops = planner.links(target, ())
    total = len(hops)
    numbered = tuple(
        dataclasses.replace(h, index=i, total=total) for i, h in enumerate(hops, start=1)
    )
    return Route(numbered, tuple(planner.notes))


class _Planner:
    """Walks the config from the target back to this machine."""

    def __init__(self, resolve: Resolver, config_files: Sequence[str] | None) -> None:
        self.resolve = resolve
        self.config_files = config_files
        self.notes: list[str] = []

    def links(self, hc: _config.HostConfig, seen: tuple[Hop, ...]) -> list[Hop]:
        """The hops that lead to ``hc``, ``hc`` itself last."""
        self._check(hc, seen)
        if hc.proxy_jump is not None:
            return self._jump(hc, seen)
        if hc.proxy_command is not None:
            return self._command(hc, seen)
        return [Hop(hc, Tcp(hc.hostname, hc.port))]

    def _check(self, hc: _config.HostConfig, seen: tuple[Hop, ...]) -> None:
        """Refuse a loop, or a chain longer than :data:`MAX_HOPS`."""
        key = (hc.user, hc.hostname, hc.port)
        names = [h.config.host for h in seen]
        if any(h.key == key for h in seen):
            cycle = " -> ".join([*names, hc.host])
            raise ChainError(f"jumphost loop via {hc.host}: {cycle}")
        if len(seen) >= MAX_HOPS:
            raise ChainError(
                f"chain to {seen[0].config.host} is longer than {MAX_HOPS} hops "
                f"({' -> '.join(names)} -> ...); set PARAPROXY_MAX_HOPS to allow more"
            )

    def _jump(self, hc: _config.HostConfig, seen: tuple[Hop, ...]) -> list[Hop]:
        """ProxyJump: the leftmost hop is resolved fully, the rest get ``-J`` semantics."""
        spec = hc.proxy_jump
        assert spec is not None
        jumps = _parse_jump(hc.expand(spec, "proxyjump"), hc)
        me = Hop(hc, Tcp(hc.hostname, hc.port))
        path = (*seen, me)
        first = self._resolve_jump(jumps[0], ())
        hops = self.links(first, path)
        origin = hc.origins.get("proxyjump")
        for jump in jumps[1:]:
            # Reached with "-J <earlier hops>" on its command line, which beats
            # the hop's own ProxyJump/ProxyCommand (ssh(1), -J).
            hop_hc = self._resolve_jump(jump, (("ProxyJump", "none"),))
            self._check(hop_hc, (*path, *hops))
            hops.append(Hop(hop_hc, Forward(hop_hc.hostname, hop_hc.port), origin=origin))
        hops.append(Hop(hc, Forward(hc.hostname, hc.port), origin=origin))
        return hops

    def _resolve_jump(
        self, jump: JumpHost, options: Sequence[tuple[str, str]]
    ) -> _config.HostConfig:
        """Resolve one ProxyJump element under its own name, as ``ssh`` would."""
        return self.resolve(
            jump.host,
            user=jump.user,
            port=jump.port,
            config_files=self.config_files,
            options=options,
            check_names=False,
        )

    def _command(self, hc: _config.HostConfig, seen: tuple[Hop, ...]) -> list[Hop]:
        """ProxyCommand: an in-process ssh hop when recognised, else a real command."""
        raw = hc.proxy_command
        assert raw is not None
        if raw.strip() == "-":
            path, line = hc.origins.get("proxycommand", (None, None))
            raise ConfigError(
                "ProxyCommand - (the connection on ssh's own stdin and stdout) has no "
                "meaning inside a Python program", path, line,
            )
        fdpass = (hc.get("proxyusefdpass") or "no").lower() == "yes"
        parsed = parse_ssh_command(raw, lambda word: hc.expand(word, "proxycommand"))
        if isinstance(parsed, NotRecognised) or fdpass:
            reason = parsed.reason if isinstance(parsed, NotRecognised) else "ProxyUseFdpass"
            command = hc.expand(raw, "proxycommand")
            if not reason.startswith("not an ssh command"):
                note = f"{hc.host}: running ProxyCommand as a process: {reason}"
                self.notes.append(note)
                logger.debug("plan: %s", note)
            return [Hop(hc, ProxyCommand(command, reason, fdpass),
                        origin=hc.origins.get("proxycommand"))]
        hop_hc = self._resolve_ssh_hop(parsed)
        me = Hop(hc, Tcp(hc.hostname, hc.port))
        hops = self.links(hop_hc, (*seen, me))
        hops.append(Hop(hc, _link_via(parsed, hop_hc), origin=hc.origins.get("proxycommand")))
        return hops

    def _resolve_ssh_hop(self, cmd: SshCommand) -> _config.HostConfig:
        """Resolve HOP of ``ssh [opts] HOP ...``; its command line beats its config."""
        return self.resolve(
            cmd.host,
            user=cmd.user,
            port=cmd.port,
            config_files=[cmd.config_file] if cmd.config_file else self.config_files,
            options=cmd.as_options(),
            check_names=False,
        )


def _link_via(cmd: SshCommand, hop_hc: _config.HostConfig) -> Via:
    """How the next host is reached through the ssh hop: ``-W`` or a relay command."""
    if cmd.forward is not None:
        return Forward(*cmd.forward)
    assert cmd.remote_command is not None
    return Exec(cmd.remote_command, cmd.relay, hop_hc.forward_agent)


def _parse_jump(value: str, hc: _config.HostConfig) -> tuple[JumpHost, ...]:
    """Parse an expanded ProxyJump value, citing where it came from on error."""
    try:
        jumps = parse_proxy_jump(value)
    except ValueError as exc:
        path, line = hc.origins.get("proxyjump", (None, None))
        raise ConfigError(str(exc), path, line) from None
    if not jumps:
        raise ConfigError(f'Invalid ProxyJump "{value}"')
    return jumps
