"""Shared fixtures: the namespace test bed, a private HOME, and leak checks after every test.

Fixtures
--------
``testbed`` (session)
    The running :class:`testbed.SshTestbed` (topology in ``tests/testbed/__init__.py``). Tests
    using it get the ``netns`` marker automatically. If it can not be built, every test using
    it ERRORs with the reason; nothing is ever skipped.
``ssh_home`` (function)
    A :class:`testbed.home.SshHome`: temporary HOME with ``~/.ssh`` (700), SSH_AUTH_SOCK unset,
    SHELL=/bin/sh.
``no_leaks`` (function, autouse)
    Fails a test that leaves file descriptors, threads, child processes (zombies included) or
    files in its private TMPDIR behind, after waiting a few seconds for them to go.
Every test also runs with a guard that refuses access to the real ``~/.ssh``. Property-based
(hypothesis) tests draw the same examples every run unless ``PARAPROXY_HYPOTHESIS=explore``;
a run stops with a failure past ``PARAPROXY_SUITE_BUDGET`` minutes.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # `import testbed` whatever pytest's import mode
    sys.path.insert(0, _TESTS)

from testbed import (  # noqa: E402
    AddressLock,
    Snapshot,
    SshTestbed,
    build_testbed,
    check_back_to,
    signals_interrupt,
)
from testbed.home import GUARD, SshHome  # noqa: E402
from testbed.leaks import wait_until  # noqa: E402

TESTBED_NET = "198.18"
#: How long a run waits for another run using the same addresses (seconds).
LOCK_WAIT = float(os.environ.get("PARAPROXY_TESTBED_LOCK_WAIT", "900"))
#: How long a test's leftovers get to go away before the test fails.
LEAK_GRACE = float(os.environ.get("PARAPROXY_LEAK_GRACE", "5"))

#: Minutes one pytest run may take; past it the run stops with a failure. A healthy run of
#: the whole suite takes about 5 on 2 cores, and CI allows 90 for everything: a machine
#: where something stalls gets a failed, named test instead of a cancelled CI job.
SUITE_BUDGET = float(os.environ.get("PARAPROXY_SUITE_BUDGET", "30"))

# Property-based tests draw the same examples on every run (CI must not pass or fail by
# luck); PARAPROXY_HYPOTHESIS=explore draws new ones each run, to hunt for more.
try:
    from hypothesis import settings
except ImportError:  # the paramiko matrix (noxfile.py) installs only what its modules use
    pass
else:
    settings.register_profile("repeatable", derandomize=True)
    settings.register_profile("explore", derandomize=False)
    settings.load_profile(
        "explore" if os.environ.get("PARAPROXY_HYPOTHESIS") == "explore" else "repeatable"
    )

_start_key = pytest.StashKey[float]()
_lock_key = pytest.StashKey[AddressLock]()
_bed_key = pytest.StashKey[SshTestbed]()
GUARD.install()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the clock of :data:`SUITE_BUDGET`."""
    session.config.stash[_start_key] = time.monotonic()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the run after this test once it has used up :data:`SUITE_BUDGET`."""
    minutes = (time.monotonic() - item.config.stash[_start_key]) / 60
    if minutes > SUITE_BUDGET and not item.session.shouldfail:
        item.session.shouldfail = (
            f"the run took {minutes:.1f} minutes, over its budget of {SUITE_BUDGET:g}"
            f" (PARAPROXY_SUITE_BUDGET); stopped after {item.nodeid}"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests using the test bed ``netns`` (before ``-m`` deselects)."""
    for item in items:
        if "testbed" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.netns)


def pytest_collection_finish(session: pytest.Session) -> None:
    """If a selected test uses the test bed, wait here for its addresses to be free.

    Waiting before any test starts keeps a busy machine from eating a test's timeout.
    """
    config = session.config
    if config.option.collectonly or _lock_key in config.stash:
        return
    if any("testbed" in getattr(item, "fixturenames", ()) for item in session.items):
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        lock = AddressLock(TESTBED_NET)
        lock.acquire(LOCK_WAIT, reporter.write_line if reporter else None)
        config.stash[_lock_key] = lock


def pytest_unconfigure(config: pytest.Config) -> None:
    """Release the address lock."""
    lock = config.stash.get(_lock_key, None)
    if lock is not None:
        lock.release()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how long the test bed took to build."""
    bed = terminalreporter.config.stash.get(_bed_key, None)
    if bed is not None:
        terminalreporter.write_line(
            f"namespace test bed: built in {bed.setup_seconds:.2f} s (run {bed.run_tag})"
        )


@pytest.fixture(scope="session")
def testbed(request: pytest.FixtureRequest) -> Iterator[SshTestbed]:
    """The namespace test bed with its four sshds, built once per session.

    SIGTERM and SIGHUP become KeyboardInterrupt meanwhile, so a cancelled CI job still
    tears it down; a SIGKILLed run is cleaned up by the next one.
    """
    lock = request.config.stash.get(_lock_key, None)
    with signals_interrupt():
        bed = build_testbed(TESTBED_NET, lock=lock, lock_timeout=LOCK_WAIT)
        request.config.stash[_bed_key] = bed
        try:
            yield bed
        finally:
            bed.close()


@pytest.fixture
def ssh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SshHome:
    """A temporary HOME with an empty ``~/.ssh`` (700); no agent; SHELL=/bin/sh."""
    home = SshHome(tmp_path / "home")
    home.ssh_dir.mkdir(parents=True, mode=0o700)
    home.ssh_dir.chmod(0o700)
    monkeypatch.setenv("HOME", str(home.path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("SSH_AGENT_PID", raising=False)
    monkeypatch.setenv("SHELL", "/bin/sh")
    return home


@pytest.fixture(autouse=True)
def _real_ssh_dir_guard() -> Iterator[None]:
    """Refuse, and fail the test on, any access to the real ``~/.ssh``."""
    GUARD.violations.clear()
    GUARD.enabled = True
    try:
        yield
    finally:
        GUARD.enabled = False
    if GUARD.violations:
        pytest.fail(
            "the test touched the real ~/.ssh (use the ssh_home fixture):\n  "
            + "\n  ".join(dict.fromkeys(GUARD.violations)),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def no_leaks(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Snapshot]:
    """Fail the test if it leaves fds, threads, children or TMPDIR files behind.

    Baseline: the state before the test, so session fixtures' processes (the sshds) and
    threads never count. The test gets its own empty TMPDIR (also ``tempfile.tempdir``).
    """
    tmpdir = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    before = Snapshot.take()
    yield before
    leaks = check_back_to(before, LEAK_GRACE)
    files: list[str] = []

    def tmp_empty() -> bool:
        files[:] = sorted(str(p) for p in tmpdir.iterdir())
        return not files

    wait_until(tmp_empty, 0.0 if leaks else 1.0)
    if not files:
        tmpdir.rmdir()
    if leaks or files:
        extra = "\n".join([f"{len(files)} file(s) left in TMPDIR:"] + [f"  {f}" for f in files])
        pytest.fail(
            f"leaked after {LEAK_GRACE} s:\n{leaks.describe()}" + (f"\n{extra}" if files else ""),
            pytrace=False,
        )
