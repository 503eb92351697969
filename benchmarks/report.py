"""Summaries, the goals of issue 6, and the markdown/JSON reports."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1e6
GIB = float(1 << 30)


@dataclass
class Summary:
    """Median, min, max and count of some samples."""

    median: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary | None:
        vals = [v for v in values if v is not None]
        if not vals:
            return None
        return cls(statistics.median(vals), min(vals), max(vals), len(vals))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.lo, "max": self.hi, "n": self.n}


def ratio(a: Summary | None, b: Summary | None) -> float | None:
    """a.median / b.median, or None when either is missing."""
    if a is None or b is None or b.median == 0:
        return None
    return a.median / b.median


def fx(value: float | None, digits: int = 2) -> str:
    """``1.23x`` or ``-``."""
    return "-" if value is None else f"{value:.{digits}f}x"


def fnum(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def frange(s: Summary | None, scale: float = 1.0, digits: int = 1) -> str:
    if s is None:
        return "-"
    return f"{s.lo * scale:.{digits}f}-{s.hi * scale:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table with aligned columns."""
    rows = [list(map(str, r)) for r in rows]
    widths = [len(h) for h in header]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in rows)
    return "\n".join(out)


def linear_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


# -- docs ------------------------------------------------------------------------

BEGIN = ".. BEGIN LATEST REPORT (written by benchmarks/run.py --update-docs)"
END = ".. END LATEST REPORT"


def update_docs(path: Path, markdown: str) -> bool:
    """Replace the report between the markers in ``path`` by ``markdown`` as a literal block."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        return False
    block = "::\n\n" + "\n".join(("    " + ln).rstrip() for ln in markdown.splitlines()) + "\n"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    new = pattern.sub(lambda _m: f"{BEGIN}\n\n{block}\n{END}", text)
    path.write_text(new)
    return True


def jsonable(obj: Any) -> Any:
    """Summaries and nested containers as plain JSON values."""
    if isinstance(obj, Summary):
        return obj.as_dict()
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj
