"""``PARAMIKO_SSH_HOOK_VERBOSE=1``: report every step on stderr through :mod:`logging`.

paraproxy never configures logging otherwise (a library must not); this one
opt-in switch, kept from paraproxy 1.x, attaches a stderr handler to the
``paraproxy`` logger at DEBUG. It is checked at import and at every
``connect()``, so setting it at run time works too.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

__all__ = ["VERBOSE_ENV", "enable", "enable_from_env"]

VERBOSE_ENV = "PARAMIKO_SSH_HOOK_VERBOSE"

_lock = threading.Lock()
_handler: logging.Handler | None = None


def enable() -> logging.Handler:
    """Attach the stderr handler to the ``paraproxy`` logger (once) and return it."""
    global _handler  # noqa: PLW0603 - one handler per process, guarded by _lock
    with _lock:
        if _handler is None:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("paraproxy: %(message)s"))
            handler.setLevel(logging.DEBUG)
            root = logging.getLogger("paraproxy")
            root.addHandler(handler)
            root.setLevel(logging.DEBUG)
            _handler = handler
        return _handler


def enable_from_env() -> None:
    """Enable verbose output if ``PARAMIKO_SSH_HOOK_VERBOSE`` is set to a true value."""
    if _handler is None and os.environ.get(VERBOSE_ENV, "").strip().lower() in (
        "1", "yes", "true", "on",
    ):
        enable()
