"""paraproxy: make paramiko's ``SSHClient.connect`` reach hosts the way OpenSSH does.

Importing the package installs the hook (unless ``PARAPROXY_DISABLE=1``); see
:func:`install`.
"""

from __future__ import annotations

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
]
