"""Host-key checking for hops: the caller's keys and policy, under OpenSSH's names.

A hop is checked exactly as the caller's own client checks its target: its
known hosts (plus the hop's own UserKnownHostsFile/GlobalKnownHostsFile) and
its missing-host-key policy, before anything is sent to the hop. The name
looked up is the one OpenSSH uses (``sshconnect.c``): HostKeyAlias bare, else
the effective HostName, written ``[name]:port`` when the port is not 22.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from typing import Any

import paramiko

from paraproxy._route import Hop
from paraproxy.errors import HopHostKeyError

__all__ = [
    "RecordingPolicy",
    "changed_key_text",
    "fingerprint",
    "host_key_name",
    "hop_client",
    "lookup_name",
    "unknown_key_text",
    "verify_reused",
]

logger = logging.getLogger(__name__)


def host_key_name(hop: Hop) -> tuple[str, int]:
    """The (name, port) to hand paramiko so it looks the key up as OpenSSH would.

    HostKeyAlias is used bare, so it is passed with port 22 (paramiko then adds
    no ``[ ]:port``); otherwise the effective HostName and port.
    """
    alias = hop.config.host_key_alias
    if alias:
        return alias.lower(), 22
    return hop.config.hostname, hop.config.port


def lookup_name(hop: Hop) -> str:
    """The known_hosts name of ``hop``: ``yuka``, ``[yuka]:2222`` or the alias."""
    name, port = host_key_name(hop)
    return name if port == 22 else f"[{name}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """``ssh-ed25519 SHA256:...`` as OpenSSH prints it (``PKey.fingerprint`` needs 3.2+)."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class RecordingPolicy(paramiko.MissingHostKeyPolicy):
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


def _known_keys(caller: Any, hop: Hop) -> paramiko.HostKeys:
    """The caller's keys (its own and system ones) plus the hop's known_hosts files."""
    keys = paramiko.HostKeys()
    for source in (caller._host_keys, caller._system_host_keys):
        for name, entries in source.items():
            for ktype, key in entries.items():
                keys.add(name, ktype, key)
    for path in (*hop.config.user_known_hosts_files, *hop.config.global_known_hosts_files):
        try:
            keys.load(os.path.expanduser(path))
        except FileNotFoundError:
            pass  # a missing file is no error, as in OpenSSH
        except OSError as exc:
            logger.debug("known_hosts %s unreadable: %s", path, exc)
    return keys


def hop_client(caller: paramiko.SSHClient, hop: Hop) -> paramiko.SSHClient:
    """A client for ``hop`` that checks its key exactly as ``caller`` would."""
    # paramiko has no public API to share host-key state between clients;
    # these attributes have been stable from paramiko 1.x to 5.x.
    state: Any = caller
    client = paramiko.SSHClient()
    mine: Any = client
    mine._system_host_keys = _known_keys(state, hop)
    # Shared, so a policy that learns a key (AutoAddPolicy) teaches the caller's
    # client and saves where the caller's client saves.
    mine._host_keys = state._host_keys
    mine._host_keys_filename = state._host_keys_filename
    mine._policy = RecordingPolicy(state._policy)
    return client


def recording(client: paramiko.SSHClient | None) -> RecordingPolicy | None:
    """The recording policy of a hop client, if it has one."""
    policy = getattr(client, "_policy", None)
    return policy if isinstance(policy, RecordingPolicy) else None


def unknown_key_text(policy: RecordingPolicy) -> str:
    """Why an unknown host key was refused, with the key's fingerprint."""
    assert policy.rejected is not None
    name, key = policy.rejected
    return (
        f"host key for {name} is not known ({fingerprint(key)}); "
        f"refused by {type(policy.inner).__name__}"
    )


def changed_key_text(name: str, got: paramiko.PKey, expected: paramiko.PKey) -> str:
    """Why a changed host key was refused, with both fingerprints."""
    return (
        f"HOST KEY FOR {name} HAS CHANGED: got {fingerprint(got)}, "
        f"expected {fingerprint(expected)}"
    )


def verify_reused(caller: paramiko.SSHClient, hop: Hop, client: paramiko.SSHClient) -> None:
    """Check an already-open hop's key against ``caller``'s keys and policy.

    A shared hop was verified for whoever opened it; a new user must agree with
    its own known hosts, as it would have on a fresh connection.
    """
    transport = client.get_transport()
    assert transport is not None
    key = transport.get_remote_server_key()
    name = lookup_name(hop)
    known = _known_keys(caller, hop).lookup(name)
    expected = known.get(key.get_name()) if known is not None else None
    if expected is None:
        policy = RecordingPolicy(getattr(caller, "_policy"))  # noqa: B009 - private attr
        try:
            policy.missing_host_key(caller, name, key)
        except Exception as exc:
            raise HopHostKeyError(hop.label, unknown_key_text(policy)) from exc
    elif expected != key:
        raise HopHostKeyError(hop.label, changed_key_text(name, key, expected))
