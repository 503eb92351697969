"""The byte store under a chain's links: every byte once, in order, with paramiko's semantics.

The end-to-end tests (SFTP and 1 GiB checksums through the chain) prove the data path as a
whole; these pin down the edges a transfer only hits by chance: reads that split packets,
data buffered before the link took the channel over, timeouts and close.
"""

from __future__ import annotations

import random
import threading

import pytest
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

from paraproxy._link import _store_chunks


def _pipe_with(*packets: bytes) -> BufferedPipe:
    pipe = BufferedPipe()
    for packet in packets:
        pipe.feed(packet)
    return pipe


def test_bytes_buffered_before_the_takeover_come_first_and_once():
    pipe = _pipe_with(b"SSH-2.0-", b"OpenSSH\r\n")
    _store_chunks(pipe)
    pipe.feed(b"next")
    _store_chunks(pipe)  # a second takeover changes nothing
    assert pipe.read(1 << 20) == b"SSH-2.0-OpenSSH\r\nnext"
    assert len(pipe) == 0


def test_reads_of_any_size_return_the_stream_in_order():
    rng = random.Random(7)
    packets = [bytes([i % 251]) * rng.randint(1, 5000) for i in range(300)]
    pipe = _pipe_with()
    _store_chunks(pipe)
    for packet in packets:
        pipe.feed(packet)
    out = bytearray()
    while len(pipe):
        out += pipe.read(rng.choice([1, 16, 4096, 32768, 1 << 20]))
    assert bytes(out) == b"".join(packets)


def test_a_reader_waits_for_data_and_times_out_like_paramiko():
    pipe = _pipe_with()
    _store_chunks(pipe)
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.0)
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.05)
    feeder = threading.Timer(0.05, pipe.feed, (b"late",))
    feeder.start()
    try:
        assert pipe.read(10, timeout=10) == b"late"
    finally:
        feeder.join()


def test_close_ends_the_stream_after_what_was_buffered():
    pipe = _pipe_with(b"last words")
    _store_chunks(pipe)
    event = threading.Event()
    pipe.set_event(event)
    assert event.is_set()
    pipe.close()
    assert pipe.read(4) == b"last"
    assert pipe.empty() == b" words"
    assert pipe.read(4) == b""
    assert event.is_set()  # closed: select() on the channel keeps waking
