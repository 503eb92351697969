"""paraproxy: make paramiko's ``SSHClient.connect`` reach hosts the way OpenSSH does.

Importing the package installs the hook on :class:`paramiko.SSHClient` (unless
``PARAPROXY_DISABLE=1``): from then on ``connect()`` follows ``~/.ssh/config``
and ``/etc/ssh/ssh_config`` (ProxyCommand, ProxyJump, ssh hops), as ``ssh``
does. This is an import with a side effect on purpose, meant for
applications; a library should not import paraproxy on its users' behalf.
"""

from __future__ import annotations

import logging

from paraproxy import _verbose
from paraproxy._version import __version__
from paraproxy.errors import (
    ChainError,
    ConfigError,
    HopAuthenticationError,
    HopChannelError,
    HopConnectError,
    HopError,
    HopHostKeyError,
    InvalidNameError,
    ParaproxyError,
    ParaproxyWarning,
    ProxyCommandError,
)
from paraproxy.hook import disabled, install, is_installed, uninstall

__all__ = [
    "ChainError",
    "ConfigError",
    "HopAuthenticationError",
    "HopChannelError",
    "HopConnectError",
    "HopError",
    "HopHostKeyError",
    "InvalidNameError",
    "ParaproxyError",
    "ParaproxyWarning",
    "ProxyCommandError",
    "__version__",
    "install",
    "is_installed",
    "uninstall",
]

# A library keeps quiet unless asked: without this, logging's last resort would
# print paraproxy's warnings on stderr in programs that configure no logging.
logging.getLogger("paraproxy").addHandler(logging.NullHandler())
_verbose.enable_from_env()
if not disabled():
    install()
