"""Exceptions raised by paraproxy.

Every error subclasses :class:`paramiko.SSHException`, and where paramiko
already has a class for the same failure (``ConfigParseError``,
``ProxyCommandFailure``, ``AuthenticationException``, ``ChannelException``)
the paraproxy error subclasses that too, so code written for plain paramiko
keeps catching what it caught before. :class:`HopConnectError` is also an
:class:`OSError`, as paramiko's own connection failures are. The one
deliberate exception is :class:`HopHostKeyError`: it covers unknown keys as
well as changed ones, so it is not a ``BadHostKeyException`` (which means
"changed"). Errors at the target itself, once the route to it works, are
paramiko's own, unchanged.
"""

from __future__ import annotations

import paramiko

__all__ = [
    "ConfigError",
    "HopAuthenticationError",
    "HopChannelError",
    "HopConnectError",
    "HopError",
    "HopHostKeyError",
    "InvalidNameError",
    "ChainError",
    "ParaproxyError",
    "ParaproxyWarning",
    "ProxyCommandError",
    "during",
]

#: How error messages name the phase of a connection a failure happened in.
_PHASES = {
    "banner": "before the SSH banner",
    "kex": "during key exchange",
    "auth": "during authentication",
    "session": "during the session",
}


def during(phase: str) -> str:
    """The words for a connection phase (``kex`` -> ``during key exchange``) in a message."""
    return _PHASES.get(phase, phase)


class ParaproxyError(paramiko.SSHException):
    """Base class of every exception paraproxy raises."""


class ParaproxyWarning(RuntimeWarning):
    """Warnings from paraproxy (a stuck thread, an uninstall that could not restore)."""


class ConfigError(ParaproxyError, paramiko.ConfigParseError):
    """An ssh_config file OpenSSH would refuse, with the file and line at fault.

    :param reason: what is wrong, in OpenSSH's words where it has some.
    :param path: the config file, or ``None`` when the error is not tied to one.
    :param line: the 1-based line number inside ``path``.
    """

    def __init__(self, reason: str, path: str | None = None, line: int | None = None):
        self.reason = reason
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path is None:
            return self.reason
        if self.line is None:
            return f"{self.path}: {self.reason}"
        return f"{self.path} line {self.line}: {self.reason}"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.reason, self.path, self.line))


class InvalidNameError(ParaproxyError, ValueError):
    """A host or user name from the caller that OpenSSH 9.6+ would refuse.

    Raised before the name reaches a shell, a config ``Match exec`` or a
    ProxyCommand (CVE-2023-51385).
    """

    def __init__(self, kind: str, name: str):
        self.kind = kind
        self.name = name
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} contains invalid characters"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.kind, self.name))


class ProxyCommandError(ParaproxyError, paramiko.ProxyCommandFailure):
    """A ProxyCommand that failed: it could not start, exited, or spoke garbage.

    :param command: the expanded command line, as given to the shell.
    :param error: what went wrong (``exited with status 3 before the SSH banner``).
    :param exit_status: the child's exit status; negative for a signal, ``None`` if running.
    :param stderr_tail: the last lines the child wrote on its stderr.
    :param phase: the connection phase the failure happened in (``banner``, ``kex``, ...).
    """

    def __init__(
        self,
        command: str,
        error: str,
        exit_status: int | None = None,
        stderr_tail: str = "",
        phase: str | None = None,
    ):
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail
        self.phase = phase
        paramiko.ProxyCommandFailure.__init__(self, command, error)

    def __str__(self) -> str:
        text = f"ProxyCommand {self.command!r}: {self.error}"
        if self.stderr_tail:
            text += "; its stderr ends with:\n" + self.stderr_tail
        return text

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (
            type(self),
            (self.command, self.error, self.exit_status, self.stderr_tail, self.phase),
        )


class ChainError(ParaproxyError):
    """A chain that can not be built at all: a loop, or more hops than allowed."""


class HopError(ParaproxyError):
    """A failure at one hop of a chain, naming the hop as ``hop 2/3 yuka (root@yuka:22)``.

    :param hop: the hop's label, e.g. ``hop 2/3 yuka (root@yuka:22)``.
    :param reason: what failed there.
    """

    def __init__(self, hop: str, reason: str):
        self.hop = hop
        self.reason = reason
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        return f"{self.hop}: {self.reason}"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.hop, self.reason))


class HopConnectError(HopError, OSError):
    """The hop could not be reached, or its SSH handshake failed.

    Also an :class:`OSError`, as paramiko's own connect failures are.
    """


class HopHostKeyError(HopError):
    """The hop's host key is unknown to the policy in force, or it changed.

    Deliberately not a :class:`paramiko.BadHostKeyException`: that one means
    "changed", and an unknown key must not be handled as if it were.
    """


class HopAuthenticationError(HopError, paramiko.AuthenticationException):
    """The hop refused every authentication method paraproxy tried."""


class HopChannelError(HopError, paramiko.ChannelException):
    """The hop refused or never answered the channel to the next host."""

    def __init__(self, hop: str, reason: str, code: int = 0):
        HopError.__init__(self, hop, reason)
        self.code = code
        self.text = reason

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.hop, self.reason, self.code))
