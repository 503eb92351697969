"""The paramiko Transport paraproxy's connections use (hops, and the target unless the
caller brings a ``transport_factory`` of its own).

Two things paramiko's :class:`~paramiko.Transport` drops that a chain needs:

* why a hop refused a channel: sshd says ``Connection refused`` or
  ``getaddrinfo: Name or service not known``, but paramiko keeps only the
  generic text of the code (``Connect failed``);
* its handshake timer: a key exchange that dies before the first packet is
  handled never cancels paramiko's 15 s timer thread, which then outlives the
  connection. :class:`HopTransport` cancels it when its thread ends, however
  it ends, and :func:`finish` does the same for a transport of another class;
* its own progress during a rekey: when the peer closes a channel while a key
  re-exchange we started is under way, paramiko's transport thread answers the
  close by waiting for the re-exchange to finish, which only that same thread
  can finish: the connection stalls 30 s and dies ("Key-exchange timed out").
  It happens whenever a transfer ends as the rekey threshold is crossed, as a
  1 GiB download does at paramiko's 512 MiB limit. :class:`HopTransport`
  defers such messages of its own thread to the end of the re-exchange;
* the order of a channel's last messages: paramiko checks that a channel is
  open, then sends its data outside the channel's lock, so the data can follow
  the channel's CLOSE. sshd answers with "data packet referred to nonexistent
  channel" and disconnects, which on a hop shared by many connections (hop
  reuse) drops all of them. :class:`HopTransport` never sends a channel's
  data, EOF or window adjustment once the channel is closed;
* a delayed-ACK stall of 40 ms at the first channel opened after a login, per
  hop: :meth:`HopTransport.settle` (measured: 62 ms per extra hop before,
  22 after, ``docs/benchmarks.rst``).

paramiko before 3.5 dispatches messages through a class-level table, which
method overrides do not reach; :class:`HopTransport` gives itself its own.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paramiko

__all__ = ["HopTransport", "finish"]

logger = logging.getLogger(__name__)

#: Most seconds :meth:`HopTransport.settle` waits: the delayed-ACK stall it avoids
#: (Linux: 40 ms).
SETTLE = 0.04

_MSG_GLOBAL_REQUEST = 80
_MSG_NEWKEYS = 21
_MSG_CHANNEL_OPEN_FAILURE = 92

#: CHANNEL_WINDOW_ADJUST, CHANNEL_DATA, CHANNEL_EXTENDED_DATA, CHANNEL_EOF (RFC 4254):
#: the messages that must never follow a channel's CLOSE.
_CHANNEL_TRAFFIC = frozenset({93, 94, 95, 96})


def _aead_first(ciphers: tuple[str, ...]) -> tuple[str, ...]:
    """paramiko's cipher list with its AES-GCM ciphers moved to the front."""
    aead = tuple(c for c in ciphers if c.endswith("-gcm@openssh.com"))
    return aead + tuple(c for c in ciphers if c not in aead)


class HopTransport(paramiko.Transport):
    """A Transport that remembers why channels were refused, and stops all its threads.

    It also prefers AES-GCM. paramiko lists it last; OpenSSH prefers an AEAD
    cipher too (chacha20-poly1305, which paramiko lacks), and AES-GCM is in its
    default list. Through a chain one process decrypts every layer under one
    GIL, and the per-packet HMAC of aes128-ctr is the largest cost: measured,
    a two-hop download goes from 149 to 318 MB/s (``docs/benchmarks.rst``).
    ``disabled_algorithms`` still applies.
    """

    _preferred_ciphers = _aead_first(
        paramiko.Transport._preferred_ciphers  # type: ignore[attr-defined]
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusals_lock = threading.Lock()
        #: The peer's own words for the last refused channel open.
        self.last_refusal: str | None = None
        self._deferred: list[paramiko.Message] = []
        self._by_remote: dict[int, paramiko.Channel] = {}
        self._greeted = threading.Event()
        if "_handler_table" not in vars(self):
            # paramiko before 3.5 dispatches through a class-level table of plain
            # functions, where overriding a handler changes nothing: give this
            # transport its own table, pointing at our handlers (called with self).
            table = dict(paramiko.Transport._handler_table)  # type: ignore[attr-defined]
            cls = type(self)
            table[_MSG_NEWKEYS] = cls._parse_newkeys
            table[_MSG_GLOBAL_REQUEST] = cls._parse_global_request
            table[_MSG_CHANNEL_OPEN_FAILURE] = cls._parse_channel_open_failure
            self._handler_table = table

    def settle(self, timeout: float = SETTLE) -> bool:
        """After authentication, make the first channel open cost no delayed-ACK stall.

        sshd's reply to the login waits for our ACK (Nagle), which our kernel
        delays by 40 ms unless we send something: an ``SSH_MSG_IGNORE``, as
        OpenSSH itself sends, carries it at once. sshd then opens the session
        with a global request (``hostkeys-00@openssh.com``). A channel opened
        before those bytes arrive gets its confirmation stuck behind them, the
        same way; opened after, its packet carries their ACK, on every TCP leg
        of a chain. So: send the IGNORE, then wait up to ``timeout`` s for the
        request. Returns whether it came; never waits longer than the stall it
        avoids.
        """
        if not self.is_authenticated():
            return False
        try:
            self.send_ignore()
        except (EOFError, OSError, paramiko.SSHException):
            return False  # the connection just died: its next use will say so
        return self._greeted.wait(timeout)

    def _parse_global_request(self, m: paramiko.Message) -> None:
        """paramiko's handling (it declines), then note that the server has spoken."""
        try:
            super()._parse_global_request(m)  # type: ignore[misc]
        finally:
            self._greeted.set()

    def _send_user_message(self, data: paramiko.Message) -> None:
        """Send, or, from this transport's own thread during a rekey, send after it."""
        if threading.current_thread() is self and not self.clear_to_send.is_set():
            # Waiting here would wait for ourselves (see the module docstring); the
            # protocol allows no such message before NEWKEYS anyway.
            self._deferred.append(data)
            return
        super()._send_user_message(data)  # type: ignore[misc]

    def _send_message(self, data: paramiko.Message) -> None:
        """Send, unless it is a closed channel's data, EOF or window adjustment."""
        # Called with clear_to_send_lock held (or during kex), as every CLOSE is:
        # so "closed" can not turn true between this check and the send.
        view = data.packet.getbuffer()
        try:
            stale = view[0] in _CHANNEL_TRAFFIC and self._channel_closed(
                int.from_bytes(view[1:5], "big")
            )
        finally:
            view.release()
        if stale:
            logger.debug("dropping a message for a closed channel")
            return
        super()._send_message(data)  # type: ignore[misc]

    def _channel_closed(self, remote_id: int) -> bool:
        """Whether our channel with the peer's id ``remote_id`` is gone or closed."""
        chan = self._by_remote.get(remote_id)
        if chan is None or chan.closed:
            # Rebuild: ids are reused after a channel is freed.
            channels: Any = getattr(self, "_channels")  # noqa: B009 - paramiko private
            self._by_remote = {c.remote_chanid: c for c in channels.values()}
            chan = self._by_remote.get(remote_id)
        return chan is None or bool(chan.closed)

    def _parse_newkeys(self, m: paramiko.Message) -> None:
        """Finish the re-exchange, then send what this thread held back during it."""
        super()._parse_newkeys(m)  # type: ignore[misc]
        held, self._deferred = self._deferred, []
        for data in held:
            super()._send_user_message(data)  # type: ignore[misc]

    def _parse_channel_open_failure(self, m: paramiko.Message) -> None:
        """Keep the peer's description of the failure, then let paramiko handle it."""
        try:
            peek = paramiko.Message(m.asbytes())
            peek.get_int()  # channel id
            peek.get_int()  # reason code
            description = peek.get_text().strip()
        except Exception:  # a malformed message is paramiko's to reject
            description = ""
        with self._refusals_lock:
            self.last_refusal = description or None
        super()._parse_channel_open_failure(m)  # type: ignore[misc]

    def run(self) -> None:
        """paramiko's transport thread; on the way out, stop the handshake timer too."""
        try:
            super().run()
        finally:
            finish(self)

    def close(self) -> None:
        """Close, and cancel the handshake timer paramiko may have left running."""
        super().close()
        finish(self)


def finish(transport: paramiko.Transport | None) -> None:
    """Cancel a dead transport's handshake timer (idempotent, harmless when done)."""
    packetizer = getattr(transport, "packetizer", None)
    if packetizer is not None:
        try:
            packetizer.complete_handshake()
        except Exception:
            logger.debug("handshake timer", exc_info=True)
