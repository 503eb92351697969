r"""The namespace test bed: real OpenSSH servers on the original paraproxy README's network.

::

    root namespace: the test process (the ssh client); no route beyond 198.18.1.0/24
    (198.18.2.0/24 and 198.18.3.0/24 are "unreachable" routes: fail at once, nothing leaves)
      |
      | veth  ppx<rand><pid> 198.18.1.1/24
      |
      | to-client 198.18.1.2/24
    +-----------------------------+  netns ppx-<pid>-<rand>-gatekeeper
    | gatekeeper                  |  sshd :22   (AllowTcpForwarding yes)
    |  hosts: gatekeeper, yuka    |  sshd :2222 (AllowTcpForwarding no, PermitOpen none)
    +-----------------------------+
      | to-yuka 198.18.2.1/24
      |
      | to-gatekeeper 198.18.2.2/24
    +-----------------------------+  netns ppx-<pid>-<rand>-yuka
    | yuka                        |  sshd :22
    |  hosts: yuka, gatekeeper,   |
    |         mayu.kamakura mayu  |
    +-----------------------------+
      | to-mayu 198.18.3.1/24
      |
      | to-yuka 198.18.3.2/24
    +-----------------------------+  netns ppx-<pid>-<rand>-mayu
    | mayu.kamakura (mayu)        |  sshd :22
    |  hosts: mayu.kamakura, yuka |
    +-----------------------------+

No IP forwarding and no routes beyond the connected subnets: from the root namespace only
gatekeeper answers, yuka only from gatekeeper, mayu.kamakura only from yuka. Names resolve
inside the namespaces through /etc/netns/<ns>/hosts (bind-mounted over /etc/hosts by
``ip netns exec``); each namespace's resolv.conf says ``nameserver 127.0.0.1`` where nothing
listens, so no DNS query leaves the machine. The client gets no hosts entry: configs say
``HostName 198.18.1.2``.

Every sshd is ``sshd -D -e -f <cfg>`` with its own ed25519 host key, ``UsePAM no``,
``PermitRootLogin prohibit-password``, public keys only, ``SetEnv SHLVL=1`` (so that bash
never runs root's real ``~/.bashrc`` for a session), ``LogLevel VERBOSE`` into
``<workdir>/sshd_<label>.log``. Building the test bed ends with one ``ssh gatekeeper 'echo
ready'``: a machine where a session is slow fails there, with the reason, not test by test.
Client keys: ``id_gatekeeper``, ``id_yuka``, ``id_mayu`` (each
authorized on its own host only) and ``id_all`` (authorized on all three), no passphrase.
``SshTestbed.sshd_inetd_command()`` gives a ProxyCommand running a throwaway ``sshd -i`` over
stdio in the root namespace (OpenSSH regress's trick for one-hop tests without a port).

Runs are isolated by name (``ppx-<pid>-<rand>-...``); runs using the same addresses take turns
through a machine-wide lock (see :class:`AddressLock`). Leftovers of dead runs are removed when
the next test bed is built.
"""

from __future__ import annotations

from .bed import CLIENT_KEYS, HOSTS, SshHost, SshTestbed, build_testbed, signals_interrupt
from .leaks import Leaks, Snapshot, check_back_to, wait_until
from .netns import AddressLock, Namespace, TestbedError, cleanup_stale
from .sshd import SSHD_DEFAULTS, SshdHandle, fingerprint, start_sshd

__all__ = [
    "CLIENT_KEYS",
    "HOSTS",
    "SSHD_DEFAULTS",
    "AddressLock",
    "Leaks",
    "Namespace",
    "Snapshot",
    "SshHost",
    "SshTestbed",
    "SshdHandle",
    "TestbedError",
    "build_testbed",
    "check_back_to",
    "cleanup_stale",
    "fingerprint",
    "signals_interrupt",
    "start_sshd",
    "wait_until",
]
