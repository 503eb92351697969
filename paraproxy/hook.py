"""The hook: wrap ``paramiko.SSHClient.connect`` and ``close`` so they follow ssh_config.

:func:`install` saves the exact originals from ``SSHClient.__dict__`` and puts
transparent wrappers in their place; :func:`uninstall` puts the originals back,
but only while our wrappers are still the ones installed (anyone who wrapped on
top of us keeps their wrapper, and gets a :class:`ParaproxyWarning`).

The connect wrapper binds the caller's arguments by name against the original
signature, so it fits paramiko 3.x, 4.x and 5.x alike, and then:

* passes through untouched when the caller gave ``sock=`` (Fabric and others
  bring their own), when ``PARAPROXY_DISABLE=1``, or when no config applies to
  the host: then paramiko behaves exactly as without paraproxy;
* otherwise resolves the host as ``ssh`` would (arguments the caller actually
  passed are the command line, and beat the config), plans the route, builds
  it (:class:`paraproxy.jump.Chain`) and lets the original ``connect`` speak SSH
  to the target over the route's last link, looking up the host key under the
  name OpenSSH would use.

Everything opened for a client is owned by it: ``close()`` and garbage
collection of the client close its chain too (a hop shared with other
connections stays open until its last user closes).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paramiko

from paraproxy import _verbose
from paraproxy.errors import ParaproxyWarning

if TYPE_CHECKING:
    from paraproxy.jump import Chain

__all__ = ["chain_of", "install", "is_installed", "uninstall"]

logger = logging.getLogger(__name__)

#: Set to 1 to make the hook pass every call straight through.
DISABLE_ENV = "PARAPROXY_DISABLE"

_MARK = "__paraproxy_wrapper__"
_CHAIN_ATTR = "_paraproxy_chain"
_lock = threading.RLock()
_saved: dict[str, Any] = {}


def install() -> bool:
    """Install the hook on ``paramiko.SSHClient``; return False if it already was.

    .. versionadded:: 2.0
    """
    with _lock:
        if is_installed():
            return False
        cls = paramiko.SSHClient
        # The class dict, not getattr: we must restore exactly what was there.
        original_connect = cls.__dict__["connect"]
        original_close = cls.__dict__["close"]
        _saved["connect"] = original_connect
        _saved["close"] = original_close
        cls.connect = _wrap_connect(original_connect, original_close)  # type: ignore[method-assign]
        cls.close = _wrap_close(original_close)  # type: ignore[method-assign]
        logger.debug("installed on paramiko %s", paramiko.__version__)
        return True


def uninstall() -> bool:
    """Restore paramiko's own ``connect``/``close``; return False if there was nothing to undo.

    .. versionadded:: 2.0
    """
    with _lock:
        if not _saved:
            return False
        cls = paramiko.SSHClient
        ours = all(getattr(cls.__dict__.get(n), _MARK, False) for n in ("connect", "close"))
        if not ours:
            warnings.warn(
                "paraproxy.uninstall(): SSHClient.connect/close were wrapped again after "
                "paraproxy; leaving them in place",
                ParaproxyWarning,
                stacklevel=2,
            )
            return False
        cls.connect = _saved.pop("connect")  # type: ignore[method-assign]
        cls.close = _saved.pop("close")  # type: ignore[method-assign]
        logger.debug("uninstalled")
        return True


def is_installed() -> bool:
    """Whether our wrapper is the ``connect`` paramiko's SSHClient has now.

    .. versionadded:: 2.0
    """
    return bool(getattr(paramiko.SSHClient.__dict__.get("connect"), _MARK, False))


def disabled() -> bool:
    """Whether ``PARAPROXY_DISABLE`` asks for plain paramiko."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "yes", "true", "on")


# -- wrappers ------------------------------------------------------------------


def _wrap_connect(original: Callable[..., None], original_close: Callable[..., None]) -> Any:
    """Build the connect wrapper around paramiko's ``original``."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def connect(self: paramiko.SSHClient, *args: Any, **kwargs: Any) -> None:
        # Bind first: a wrong call fails exactly as it would without us.
        bound = signature.bind(self, *args, **kwargs)
        if disabled():
            return original(self, *args, **kwargs)
        _verbose.enable_from_env()
        if bound.arguments.get("sock") is not None:
            logger.debug("sock= given by caller; not proxying")
            return original(self, *args, **kwargs)
        if _CHAIN_ATTR in self.__dict__:
            # Reconnecting: what the last connect opened goes first.
            original_close(self)
            close_chain(self)
        # Loaded here, not at import: `import paraproxy` must cost next to nothing.
        from paraproxy import _connect  # noqa: PLC0415

        _connect.connect(self, bound.arguments, original, original_close)
        return None

    setattr(connect, _MARK, True)
    return connect


def _wrap_close(original: Callable[..., None]) -> Any:
    """Build the close wrapper: paramiko's close, then everything we opened."""

    @functools.wraps(original)
    def close(self: paramiko.SSHClient) -> None:
        try:
            original(self)
        finally:
            close_chain(self)

    setattr(close, _MARK, True)
    return close


def chain_of(client: paramiko.SSHClient) -> Chain | None:
    """The chain paraproxy built for ``client``'s connection, or ``None`` (for inspection).

    .. versionadded:: 2.0
    """
    finalizer = client.__dict__.get(_CHAIN_ATTR)
    info = finalizer.peek() if finalizer is not None else None
    if info is None:
        return None
    close = info[1]
    return getattr(close, "__self__", None)


def attach_chain(client: paramiko.SSHClient, finalizer: weakref.finalize[Any, Any]) -> None:
    """Make ``client`` the owner of a chain (its finalizer closes the chain)."""
    client.__dict__[_CHAIN_ATTR] = finalizer


def close_chain(client: paramiko.SSHClient) -> None:
    """Close the chain attached to ``client``, if any (idempotent)."""
    finalizer = client.__dict__.pop(_CHAIN_ATTR, None)
    if finalizer is not None:
        finalizer()
