"""The fault report: record each fault, bad-input and load case of a test run, render it as reST.

As a pytest plugin (``pytest_plugins = ["fault_report"]`` in a test module) it provides the
fixture ``fault_case``::

    def test_proxy_not_found(fault_case, ...):
        case = fault_case("ProxyCommand faults", "command not found", "error at once, status 127")
        with pytest.raises(ProxyCommandError) as info:
            ...
        case.seen(info.value)          # the error message the user gets
        case.note("took 0.03 s")       # a measurement worth showing

When ``$PARAPROXY_FAULT_REPORT`` names a file, every case is appended to it as one JSON line
once the test is over (after teardown, so the leak check counts): table, case, bound, result
(``passed``/``FAILED``), the error message seen and the notes, and the test's node id.

As a program it renders such a file::

    python tests/fault_report.py RESULTS.json > docs/faults.rst
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_ENV = "PARAPROXY_FAULT_REPORT"

#: Order of the tables in the report (others follow, alphabetically).
TABLE_ORDER = (
    "ProxyCommand faults",
    "Chain faults",
    "Bad input: config",
    "Bad input: chains",
    "Bad input: names",
    "Fuzzing",
    "Interrupts",
    "Load and endurance",
)


@dataclass
class FaultCase:
    """One case of one table, as recorded by a test."""

    table: str
    case: str
    bound: str
    message: str = ""
    notes: list[str] = field(default_factory=list)
    result: str = ""
    detail: str = ""
    nodeid: str = ""
    seconds: float = 0.0
    _start: float = field(default_factory=time.monotonic, repr=False)

    def seen(self, error: BaseException | str) -> None:
        """Record the error message the caller saw (``type: text``)."""
        if isinstance(error, BaseException):
            text = str(error).strip() or "(no message)"
            self.message = f"{type(error).__name__}: {text}"
        else:
            self.message = error

    def note(self, text: str) -> None:
        """Record a measurement or an observation."""
        self.notes.append(text)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_start")
        return data


# -- pytest plugin ------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the generator needs no pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    _cases_key = pytest.StashKey[list]()
    _failed_key = pytest.StashKey[list]()

    @pytest.fixture
    def fault_case(request: pytest.FixtureRequest) -> Iterator[Any]:
        """``fault_case(table, case, bound)`` -> a :class:`FaultCase` recorded after the test."""
        cases: list[FaultCase] = request.node.stash.setdefault(_cases_key, [])

        def make(table: str, case: str, bound: str) -> FaultCase:
            item = FaultCase(table, case, bound, nodeid=request.node.nodeid)
            cases.append(item)
            return item

        yield make

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        failures = item.stash.setdefault(_failed_key, [])
        if report.failed:
            failures.append(f"{report.when}: {_short(report)}")
        if report.when == "teardown":
            _write(item, failures)

    def _short(report: Any) -> str:
        """The first line of a failure that says something (``E   ...``), else the last."""
        text = str(report.longrepr or "")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        for line in lines:
            if line.startswith("E "):
                return line[1:].strip()[:300]
        for line in lines:
            if line.startswith("Failed:") or "leaked after" in line:
                return line.strip()[:300]
        return (lines[-1].strip() if lines else "failed")[:300]

    def _write(item: pytest.Item, failures: list[str]) -> None:
        cases: list[FaultCase] = item.stash.get(_cases_key, [])
        path = os.environ.get(REPORT_ENV)
        if not cases or not path:
            return
        lines = []
        for case in cases:
            case.seconds = round(time.monotonic() - case._start, 3)
            case.result = "FAILED" if failures else "passed"
            case.detail = "; ".join(failures)
            lines.append(json.dumps(case.to_json(), ensure_ascii=False) + "\n")
        # One write per test, O_APPEND: lines of parallel writers never interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, "".join(lines).encode())
        finally:
            os.close(fd)


# -- generator ----------------------------------------------------------------------------


def load(path: str) -> list[dict[str, Any]]:
    """Read a results file (JSON lines); the last record of a (table, case) wins."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                records[(rec["table"], rec["case"])] = rec
    return list(records.values())


_NOISE = [
    (re.compile(r"/tmp/pytest-of-[^/\s]+/pytest-\d+/[^/\s]+/"), "$TMP/"),
    (re.compile(r"/tmp/ppx-testbed-[^/\s]+/"), "$TESTBED/"),
    (re.compile(re.escape(sys.executable)), "python"),
    (re.compile(re.escape(os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/")),
     ""),
]


def _cell(text: str, limit: int = 400) -> str:
    """One table cell: a single line, bounded, with reST-significant characters made inert."""
    text = " ".join(str(text).split())
    for pattern, short in _NOISE:
        text = pattern.sub(short, text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text.replace("\\", "\\\\").replace("`", "'").replace("*", "\\*").replace("|", "\\|")


def render(records: list[dict[str, Any]], source: str = "") -> str:
    """The reST page for ``records``."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        tables.setdefault(rec["table"], []).append(rec)
    order = [t for t in TABLE_ORDER if t in tables] + sorted(set(tables) - set(TABLE_ORDER))
    passed = sum(1 for r in records if r["result"] == "passed")
    out = [
        "============",
        "Fault report",
        "============",
        "",
        ".. This file is generated: python tests/fault_report.py RESULTS.json > docs/faults.rst",
        "",
        "Every fault, bad input and load case of the hardening tests (``tests/test_faults_*.py``,",
        "``test_bad_input.py``, ``test_fuzz.py``, ``test_load.py``, ``test_interrupts.py``), the",
        "bound paraproxy must meet, and what happened in the recorded run. A case passes only if",
        "its test passed *and* the test left no process, zombie, thread, descriptor or",
        "temporary file behind (the ``no_leaks`` check of ``tests/conftest.py``).",
        "",
        "To regenerate::",
        "",
        "    PARAPROXY_FAULT_REPORT=/tmp/faults.json .venv/bin/pytest \\",
        "        tests/test_faults_proxycommand.py tests/test_faults_chain.py \\",
        "        tests/test_bad_input.py tests/test_fuzz.py tests/test_load.py \\",
        "        tests/test_interrupts.py",
        "    python tests/fault_report.py /tmp/faults.json > docs/faults.rst",
        "",
        f"Recorded run: {_run_info()}; {passed} of {len(records)} cases passed.",
        "",
    ]
    for name in order:
        rows = tables[name]
        out += [name, "=" * len(name), "", ".. list-table::", "   :header-rows: 1",
                "   :widths: 22 22 10 46", "", "   * - Case", "     - Bound", "     - Result",
                "     - Error message seen, measurements"]
        for rec in rows:
            result = rec["result"] if rec["result"] == "passed" else f"**{rec['result']}**"
            seen = rec.get("message") or ""
            extra = "; ".join(rec.get("notes") or [])
            if rec["result"] != "passed" and rec.get("detail"):
                extra = (extra + "; " if extra else "") + "failure: " + rec["detail"]
            body = "; ".join(p for p in (_cell(seen), _cell(extra)) if p) or "-"
            out += [
                f"   * - {_cell(rec['case'], 200)}",
                f"     - {_cell(rec['bound'], 200)}",
                f"     - {result} ({rec.get('seconds', 0):.2f} s)",
                f"     - {body}",
            ]
        out.append("")
    return "\n".join(out)


def _run_info() -> str:
    try:
        pm = importlib.metadata.version("paramiko")
    except Exception:  # pragma: no cover
        pm = "?"
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return (f"{day}, Python {platform.python_version()}, paramiko {pm}, "
            f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python tests/fault_report.py RESULTS.json > docs/faults.rst\n")
        return 2
    sys.stdout.write(render(load(argv[0]), argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
