"""Sample a worker with py-spy while it streams data, and summarise where time goes.

py-spy samples every thread of the worker (paramiko does its work in
Transport threads, which cProfile would not see). Only non-idle samples are
kept, so the counts show where CPU goes, per thread and per function.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

RATE = 250


def py_spy() -> str | None:
    """The py-spy executable (next to this Python first), or None."""
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    return shutil.which("py-spy")


def record_argv(exe: str, pid: int, out: Path) -> list[str]:
    return [exe, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
            "--threads", "--nonblocking", "-o", str(out)]


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+):\d+\)$")


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Per-thread sample counts, and the top self frames and files.

    paramiko names its Transport threads ``Thread-N``; in a chain the hop's
    Transport was started first, so it has the lower number.
    """
    threads: Counter[str] = Counter()
    self_frames: Counter[str] = Counter()
    self_files: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        if "Worker._settle" in stack:
            continue  # the worker waiting for the previous connection's threads
        _, _, rest = stack.partition(": ")
        frames = rest.split(";")
        name = frames[0] if frames else "?"
        threads[name] += count
        total += count
        if len(frames) > 1:
            leaf = frames[-1]
            m = _FRAME.match(leaf)
            func = m.group("func") if m else leaf
            file = Path(m.group("file")).name if m else "?"
            self_frames[f"{func} ({file})"] += count
            self_files[file] += count
    return {
        "rate": RATE,
        "samples": total,
        "threads": threads.most_common(),
        "self_frames": self_frames.most_common(top),
        "self_files": self_files.most_common(top),
    }
