"""A fault-injecting ProxyCommand: relay stdin/stdout to HOST:PORT, and misbehave on cue.

    python tests/_faults_relay.py MODE HOST PORT [--ignore-term] [--linger] [--pidfile F]

MODE:
  plain  relay until both sides are done
  kex    relay the banners and the client's KEXINIT, then die (status 7) when the client
         sends its key-exchange init (SSH_MSG_KEX_ECDH_INIT and friends, 30-34)
  auth   relay the whole key exchange, then die (status 8) on the client's first
         encrypted packet (the ssh-userauth service request)
--ignore-term  ignore SIGTERM (and SIGHUP)
--linger       after the relay is done, sleep forever instead of exiting
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable


def main(argv: list[str]) -> int:
    mode, host, port = argv[0], argv[1], int(argv[2])
    flags = argv[3:]
    if "--ignore-term" in flags:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if "--pidfile" in flags:
        with open(flags[flags.index("--pidfile") + 1], "w") as f:
            f.write(str(os.getpid()))
    sock = socket.create_connection((host, port))
    state = "banner"
    pending = b""
    up_open = down_open = True
    while up_open or down_open:
        fds = ([0] if up_open else []) + ([sock] if down_open else [])
        ready, _, _ = select.select(fds, [], [])
        if 0 in ready:
            data = _read(lambda: os.read(0, 65536))
            if not data:
                up_open = False
                _quiet(lambda: sock.shutdown(socket.SHUT_WR))
            elif mode == "plain" or state == "done":
                _quiet(lambda data=data: sock.sendall(data))
            else:
                pending += data
                forward, state, die = _scan(pending, state, mode)
                sock.sendall(pending[:forward])
                pending = pending[forward:]
                if die:
                    sys.stderr.write(f"fault relay: dying during {mode} as asked\n")
                    sys.stderr.flush()
                    return 7 if mode == "kex" else 8
        if sock in ready:
            data = _read(lambda: sock.recv(65536))
            if not data:
                down_open = False
                _quiet(lambda: os.close(1))
            else:
                try:
                    os.write(1, data)
                except OSError:
                    down_open = False
    if "--linger" in flags:
        while True:
            time.sleep(3600)
    return 0


def _read(func: Callable[[], bytes]) -> bytes:
    """A read where a reset counts as EOF."""
    try:
        return func()
    except OSError:
        return b""


def _quiet(func: Callable[[], object]) -> None:
    try:
        func()
    except OSError:
        pass


def _scan(buf: bytes, state: str, mode: str) -> tuple[int, str, bool]:
    """How many bytes of ``buf`` to forward, the new state, and whether to die now."""
    pos = 0
    if state == "banner":
        end = buf.find(b"\n")
        if end < 0:
            return 0, state, False
        pos = end + 1
        state = "packets"
    if state == "encrypted":
        return pos, state, mode == "auth" and len(buf) > pos
    while len(buf) - pos >= 6:
        length = int.from_bytes(buf[pos:pos + 4], "big")
        if len(buf) - pos < 4 + length:
            break
        msg = buf[pos + 5]
        if mode == "kex" and 30 <= msg <= 34:
            return pos, state, True
        pos += 4 + length
        if msg == 21:  # NEWKEYS: everything after it is encrypted
            state = "encrypted"
            return pos, state, mode == "auth" and len(buf) > pos
    return pos, state, False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
