"""Hop reuse: one authenticated connection per hop, shared by every chain through it.

A :class:`Segment` is one hop's SSH connection together with everything it
stands on: the link it was reached by (a socket, a channel on the previous
hop, or a ProxyCommand) and a counted reference to the previous segment. A
segment is closed when its last user releases it, which releases its
predecessor in turn, so a shared bastion is logged into once and closed when
the last connection through it closes.

Segments are shared only between routes that reach the hop the same way, as
the same user, with the same keys (the :attr:`Segment.key`). ``PARAPROXY_REUSE=0``
turns sharing off: every chain then builds and owns its own hops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Hashable, Iterator

import paramiko

__all__ = ["POOL", "HopPool", "Segment", "reuse_enabled"]

logger = logging.getLogger(__name__)

REUSE_ENV = "PARAPROXY_REUSE"


def reuse_enabled() -> bool:
    """Whether hops may be shared (``PARAPROXY_REUSE``, on unless 0/no/false/off)."""
    return os.environ.get(REUSE_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


class Segment:
    """One hop's connection and what it stands on; closed when its last user releases it."""

    def __init__(
        self, label: str, key: Hashable | None, prev: Segment | None = None, hop: object = None
    ) -> None:
        self.label = label
        #: The segment this one's link runs over (``None`` for the first hop).
        self.prev = prev
        #: The planned hop it connects (to open a private twin when a shared one is full).
        self.hop = hop
        #: What makes two routes' hops interchangeable; ``None``: never shared.
        self.key = key
        #: The hop's client, once connected.
        self.client: paramiko.SSHClient | None = None
        #: How many chains hold this segment (directly or through the hops above it).
        self.users = 1
        #: Closed in reverse: release of the previous segment first in, so it runs last.
        self.stack = contextlib.ExitStack()

    def alive(self) -> bool:
        """Whether the hop's transport still carries traffic."""
        transport = self.client.get_transport() if self.client is not None else None
        return transport is not None and transport.is_active()

    def close(self) -> None:
        """Close the hop, its link, then let go of the previous hop (never raises)."""
        try:
            self.stack.close()
        except Exception:
            logger.debug("%s: error while closing", self.label, exc_info=True)


class HopPool:
    """The process's shared hops, counted by their users; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments: dict[Hashable, Segment] = {}
        self._building: dict[Hashable, tuple[threading.Lock, int]] = {}

    def acquire(self, key: Hashable) -> Segment | None:
        """A live shared segment for ``key`` with one more user, or ``None``."""
        with self._lock:
            segment = self._segments.get(key)
            if segment is None:
                return None
            if not segment.alive():
                # Dead: its users see EOF and release it; nobody new may join.
                del self._segments[key]
                return None
            segment.users += 1
        logger.info("%s: reusing the open connection (%d users)", segment.label, segment.users,
                    extra={"paraproxy_hop": segment.label, "paraproxy_event": "reused"})
        return segment

    def retain(self, segment: Segment) -> Segment:
        """One more user of a segment already held."""
        with self._lock:
            segment.users += 1
        return segment

    def publish(self, segment: Segment) -> None:
        """Offer a freshly built segment to later routes (if it has a key)."""
        if segment.key is None:
            return
        with self._lock:
            self._segments.setdefault(segment.key, segment)

    def release(self, segment: Segment) -> None:
        """One user fewer; the last one closes the segment."""
        with self._lock:
            segment.users -= 1
            last = segment.users <= 0
            if last and self._segments.get(segment.key) is segment:
                del self._segments[segment.key]
        if last:
            segment.close()

    @contextlib.contextmanager
    def building(self, key: Hashable | None) -> Iterator[None]:
        """Hold while looking up or building ``key``, so one hop is logged into once."""
        if key is None:
            yield
            return
        lock = self._enter(key)
        try:
            with lock:
                yield
        finally:
            self._leave(key)

    def _enter(self, key: Hashable) -> threading.Lock:
        """The build lock of ``key``, counted so it can be dropped when unused."""
        with self._lock:
            lock, count = self._building.get(key, (threading.Lock(), 0))
            self._building[key] = (lock, count + 1)
            return lock

    def _leave(self, key: Hashable) -> None:
        """Drop the build lock of ``key`` once nobody waits on it."""
        with self._lock:
            lock, count = self._building[key]
            if count <= 1:
                del self._building[key]
            else:
                self._building[key] = (lock, count - 1)

    def __len__(self) -> int:
        """How many shared segments are open."""
        with self._lock:
            return len(self._segments)


#: The pool every chain of this process uses.
POOL = HopPool()
