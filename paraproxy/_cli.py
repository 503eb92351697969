"""``python -m paraproxy run`` and ``check``: connect through the hook, as a program would.

``run HOST -- COMMAND...`` behaves like ``ssh HOST COMMAND``: the words are
joined with spaces for the remote shell, stdin, stdout and stderr are
streamed, and the exit status is the remote command's. ``check HOST``
connects hop by hop and reports each hop's time, host key and how it was
verified, and the authentication method; the first failure is named.

Both use the caller's known hosts (``~/.ssh/known_hosts`` and the config's
UserKnownHostsFile) and paramiko's default policy: an unknown host key is
refused, as ``ssh -o BatchMode=yes`` would.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import paramiko

import paraproxy
from paraproxy.errors import ParaproxyError

__all__ = ["check", "run"]

_CHUNK = 32768


@dataclass(frozen=True)
class Target:
    """Where to connect, as the command line said it."""

    host: str
    user: str | None = None
    port: int | None = None
    config_file: str | None = None


def _connected(target: Target) -> paramiko.SSHClient:
    """A client connected to ``target`` through the hook; closed on failure."""
    paraproxy.install()
    if target.config_file:
        os.environ["PARAPROXY_CONFIG"] = target.config_file
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    kwargs: dict[str, object] = {}
    if target.user is not None:
        kwargs["username"] = target.user
    if target.port is not None:
        kwargs["port"] = target.port
    try:
        client.connect(target.host, **kwargs)  # type: ignore[arg-type]
    except BaseException:
        client.close()
        raise
    return client


def run(target: Target, command: list[str]) -> int:
    """Run ``command`` on ``target``; return its exit status (255 if we could not connect)."""
    try:
        client = _connected(target)
    except (paramiko.SSHException, OSError, ParaproxyError) as exc:
        print(f"paraproxy: {exc}", file=sys.stderr)
        return 255  # ssh's own status for "could not connect"
    with contextlib.closing(client):
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        channel.exec_command(" ".join(command))
        feeder = _feed_stdin(channel, sys.stdin.buffer)
        _drain(channel, sys.stdout.buffer, sys.stderr.buffer)
        status = channel.recv_exit_status()
        channel.close()
        feeder.join(0.5)  # a reader blocked on a terminal is a daemon; we do not wait
    return status


def _feed_stdin(channel: paramiko.Channel, stdin: BinaryIO) -> threading.Thread:
    """Copy our stdin to the channel in a daemon thread; EOF becomes the channel's EOF."""

    def feed() -> None:
        try:
            while True:
                data = os.read(stdin.fileno(), _CHUNK)
                if not data:
                    break
                channel.sendall(data)
            channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the remote side is gone, or stdin is closed: nothing to send

    thread = threading.Thread(target=feed, name="paraproxy-run-stdin", daemon=True)
    thread.start()
    return thread


def _drain(channel: paramiko.Channel, stdout: BinaryIO, stderr: BinaryIO) -> None:
    """Copy the channel's stdout and stderr to ours until the command is done."""
    with selectors.DefaultSelector() as sel:
        sel.register(channel, selectors.EVENT_READ)
        while True:
            moved = False
            while channel.recv_ready():
                stdout.write(channel.recv(_CHUNK))
                moved = True
            while channel.recv_stderr_ready():
                stderr.write(channel.recv_stderr(_CHUNK))
                moved = True
            if moved:
                stdout.flush()
                stderr.flush()
                continue
            if channel.exit_status_ready() or channel.closed:
                break
            sel.select(1.0)


def check(target: Target) -> int:
    """Connect hop by hop and report each hop; 0 if the target was reached."""
    started = time.monotonic()
    with _hop_events() as events:
        try:
            client = _connected(target)
        except (paramiko.SSHException, OSError, ParaproxyError) as exc:
            _report(events, started)
            print(f"FAILED  {exc}")
            return 1
    client.close()
    _report(events, started)
    print(f"OK      {target.host} reached in {(time.monotonic() - started) * 1000:.0f} ms")
    return 0


@contextlib.contextmanager
def _hop_events() -> Iterator[list[logging.LogRecord]]:
    """Collect paraproxy's per-hop log records while connecting."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if hasattr(record, "paraproxy_hop"):
                records.append(record)

    handler = Collect(logging.INFO)
    root = logging.getLogger("paraproxy")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(old_level or logging.INFO, logging.INFO))
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _report(records: list[logging.LogRecord], started: float) -> None:
    """One line per hop reached: time taken, host key and how it was known, auth method."""
    previous = started
    for record in records:
        stamp = record.created - (time.time() - time.monotonic())
        took = (stamp - previous) * 1000
        previous = stamp
        label = record.paraproxy_hop  # type: ignore[attr-defined]
        if record.paraproxy_event == "reused":  # type: ignore[attr-defined]
            print(f"REUSED  {label}  {took:7.1f} ms  the open connection, checked again")
            continue
        message = record.getMessage().split(": ", 1)[-1]
        print(f"OK      {label}  {took:7.1f} ms  {message}")
