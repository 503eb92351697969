"""The client side of the tests that log into the test bed's sshds: configs, HOMEs, helpers.

One copy of what the end-to-end tests (``test_sshd_*``, ``test_ecosystem``, ``test_cli_sshd``,
the hardening tests through ``tests/_faults.py``) all need: how each host is reached and with
which key (:data:`IDENTITIES`, :func:`identities`), the original README's config
(:data:`ORIGINAL`), a HOME holding the keys and known hosts (:func:`client_home`), a client
connected through the hook (:func:`connected`), a command's output (:func:`run`) and the
logins an sshd accepted (:func:`logins`).

Importing this module imports :mod:`paraproxy`, which installs the hook: :func:`connected`
goes through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import paramiko

import paraproxy  # noqa: F401 - installs the hook: connected() drives SSHClient.connect

from .bed import FQDN, HOSTS, SshTestbed
from .home import SshHome

__all__ = [
    "GATEKEEPER",
    "HOSTS",
    "IDENTITIES",
    "ORIGINAL",
    "client_home",
    "connected",
    "identities",
    "known_hosts_lines",
    "logins",
    "run",
]

#: gatekeeper's address, the only one the client reaches (configs say ``HostName`` it).
GATEKEEPER = "198.18.1.2"


def identities(*, gatekeeper: str = "", yuka: str = "", mayu: str = "") -> str:
    """ssh_config saying how each host is reached from here and with which key (one per host).

    ``gatekeeper``, ``yuka``, ``mayu``: more option lines for that host's block (one option a
    line, without indentation), after its ``IdentityFile``; e.g. ``mayu="ProxyJump
    gatekeeper,yuka"``. ``Host *`` gives ``User root`` last.
    """

    def block(pattern: str, options: Sequence[str], extra: str) -> str:
        lines = [*options, *extra.splitlines()]
        return f"Host {pattern}\n" + "".join(f"    {line}\n" for line in lines)

    return (
        block("gatekeeper", [f"HostName {GATEKEEPER}", "IdentityFile ~/.ssh/id_gatekeeper"],
              gatekeeper)
        + block("yuka", ["IdentityFile ~/.ssh/id_yuka"], yuka)
        + block("mayu.kamakura", ["IdentityFile ~/.ssh/id_mayu"], mayu)
        + block("*", ["User root"], "")
    )


#: How each test-bed host is reached from here, and with which key (one per host).
IDENTITIES = identities()

#: The original paraproxy README's config, verbatim (tests put :data:`IDENTITIES` around it).
ORIGINAL = """\
Host yuka
\tProxyCommand ssh -q -A -x gatekeeper 'nc -w1 %h 22'

Host *.kamakura
\tProxyCommand ssh -q -A -x yuka 'nc -w 1 %h 22'
"""


def known_hosts_lines(
    testbed: SshTestbed,
    *,
    hosts: Sequence[str] = HOSTS,
    gatekeeper_as: Sequence[str] = (GATEKEEPER,),
) -> list[str]:
    """known_hosts lines for ``hosts`` (short names), in order, named as OpenSSH would.

    gatekeeper's key is given under each name of ``gatekeeper_as`` (its address by default;
    add e.g. ``"gatekeeper"`` or ``f"[{GATEKEEPER}]:2223"``), the others under their full
    name (``yuka``, ``mayu.kamakura``).
    """
    lines: list[str] = []
    for host in hosts:
        names = gatekeeper_as if host == "gatekeeper" else (FQDN[host],)
        lines.extend(testbed.known_hosts_line(host, name) for name in names)
    return lines


def client_home(
    ssh_home: SshHome,
    testbed: SshTestbed,
    *,
    host_keys: bool = True,
    id_all: bool = False,
    known: Sequence[str] = HOSTS,
    gatekeeper_as: Sequence[str] = (GATEKEEPER,),
    config: str | None = None,
) -> SshHome:
    """Fill ``ssh_home`` (the fixture's HOME) with client keys and known hosts; return it.

    ``host_keys``: copy each host's own key as ``~/.ssh/id_<host>`` (authorized there only).
    ``id_all``: also copy the key authorized everywhere as ``~/.ssh/id_ed25519``.
    ``known``, ``gatekeeper_as``: the known_hosts lines, see :func:`known_hosts_lines`.
    ``config``: if given, written as ``~/.ssh/config``.
    """
    if host_keys:
        for name in HOSTS:
            ssh_home.copy_key(testbed.key(name), f"id_{name}")
    if id_all:
        ssh_home.copy_key(testbed.key("all"), "id_ed25519")
    ssh_home.write_known_hosts(
        known_hosts_lines(testbed, hosts=known, gatekeeper_as=gatekeeper_as)
    )
    if config is not None:
        ssh_home.write_config(config)
    return ssh_home


def connected(host: str, **kwargs: Any) -> paramiko.SSHClient:
    """The issue's program: ``load_system_host_keys()``, then ``connect(host, **kwargs)``.

    Through the hook (paraproxy is imported). The client is closed if ``connect`` fails.
    """
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    try:
        client.connect(host, **kwargs)
    except BaseException:
        client.close()
        raise
    return client


def run(client: paramiko.SSHClient, command: str) -> str:
    """Run ``command`` on ``client``'s server; return its stdout, stripped."""
    _, stdout, _ = client.exec_command(command)
    return stdout.read().decode().strip()


def logins(
    testbed: SshTestbed,
    host: str,
    key: str | None = None,
    since: int = 0,
    *,
    user: str | None = None,
) -> int:
    """How many times ``host``'s port-22 sshd accepted client key ``key`` (default: ``host``'s).

    Counts the log's ``Accepted publickey`` lines naming the key's fingerprint, from byte
    offset ``since`` (a :meth:`SshdHandle.log_mark`); ``user``: only logins as that user.
    """
    fp = testbed.key_fingerprint(host if key is None else key)
    accepted = "Accepted publickey" if user is None else f"Accepted publickey for {user} "
    sshd = testbed.host(host).sshd
    assert sshd is not None, f"{host} has no sshd"
    text = sshd.log_text(since=since)
    return sum(1 for line in text.splitlines() if accepted in line and fp in line)
