"""nox sessions: the paramiko version matrix (issue 7, item 4).

::

    nox -s matrix              # every paramiko version below, one virtualenv each
    nox -s "matrix(paramiko='3.0.0')"
    nox -s matrix -- -k chain  # arguments after -- go to pytest

Each session installs paraproxy the way a user does, from a wheel (built once per nox run
with ``python -m build``, sdist first and the wheel from the sdist, so nothing stale in
``build/`` can get in), together with one exact paramiko release, in its own virtualenv
under ``.venv/nox/`` (kept between runs: ``reuse_venv``), and runs the key test modules
against it. pytest is started as the ``pytest`` script from ``tests/``, not as
``python -m pytest`` from the root, so the checkout is not on ``sys.path``: the tests
import the installed copy (the session checks that first).

The versions are the oldest and newest release of each paramiko major version paraproxy
declares (``install_requires`` in setup.py), and pip resolves the wheel and the pinned
paramiko together, so a version outside the declared range fails to install instead of
being tested. mypy and
types-paramiko are not part of the matrix (the type check runs once, in scripts/test,
against the newest paramiko).

The sessions use the Python nox runs on (the machine's 3.11); the end-to-end modules
need what scripts/test needs: root, ``ip netns``, OpenSSH.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

#: Oldest and newest of each major version (pip index versions paramiko, 2026-11):
#: 3.0.0-3.5.1, 4.0.0 (the only 4.x), 5.0.0-5.1.0.
PARAMIKO_VERSIONS = ["3.0.0", "3.5.1", "4.0.0", "5.0.0", "5.1.0"]

#: The modules that exercise paramiko's API surface paraproxy relies on: the hook's
#: argument binding and wrapping, the ProxyCommand bridge, and real chains.
KEY_MODULES = [
    "tests/test_hook.py",
    "tests/test_proxycommand.py",
    "tests/test_sshd_proxycommand.py",
    "tests/test_sshd_chain.py",
]

#: paramiko before 3.4.1 reads ``algorithms.TripleDES`` at import, which cryptography 43+
#: deprecates ("TripleDES has been moved to cryptography.hazmat.decrepit..."); the suite
#: turns warnings into errors, and some tests require a silent stderr from a child Python.
#: For those releases that one warning, paramiko's own, is ignored, in pytest and (through
#: PYTHONWARNINGS) in the Pythons the tests start. Nothing else is.
CRYPTOGRAPHY_TRIPLEDES_FIXED = (3, 4, 1)
PARAMIKO_IMPORT_WARNING = "ignore:TripleDES has been moved"

#: What the key modules need besides paraproxy and paramiko (no mypy, no types-paramiko).
TEST_REQUIREMENTS = ["pytest>=7", "pytest-timeout>=2"]

nox.options.sessions = ["matrix"]
#: Under .venv/ (ignored by git, like the development environment itself), not .nox/.
nox.options.envdir = str(ROOT / ".venv" / "nox")
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

#: The interpreter nox itself runs on; the sessions' virtualenvs are made from it.
PYTHON = sys.executable

_CHECK_INSTALLED = """\
import sys, paramiko, paraproxy
from pathlib import Path
want = sys.argv[1]
assert paramiko.__version__ == want, (paramiko.__version__, want)
where = Path(paraproxy.__file__).resolve()
assert Path(sys.prefix).resolve() in where.parents, f"paraproxy not the installed copy: {where}"
print(f"paraproxy {paraproxy.__version__} from {where.parent}; paramiko {paramiko.__version__}")
"""


_wheels: list[Path] = []


def _wheel(session: nox.Session) -> Path:
    """The wheel of this checkout, built once per nox run (sdist, then wheel from it)."""
    if not _wheels or not _wheels[0].exists():
        out = ROOT / ".venv" / "nox" / "_dist"
        shutil.rmtree(out, ignore_errors=True)
        session.run(sys.executable, "-m", "build", "--outdir", str(out), str(ROOT),
                    external=True, silent=True)
        _wheels[:] = sorted(out.glob("paraproxy-*.whl"))
        if len(_wheels) != 1:
            session.error(f"expected one wheel in {out}, found {_wheels}")
    return _wheels[0]


@nox.session(python=PYTHON, reuse_venv=True)
@nox.parametrize("paramiko", PARAMIKO_VERSIONS)
def matrix(session: nox.Session, paramiko: str) -> None:
    """Run the key test modules against one paramiko release."""
    wheel = str(_wheel(session))
    pip = ["--disable-pip-version-check", "--quiet"]
    # This run's wheel replaces whatever an earlier run left in the reused virtualenv...
    session.install(*pip, "--force-reinstall", "--no-deps", wheel)
    # ...and one resolution pins paramiko: pip refuses a version outside install_requires.
    session.install(*pip, wheel, f"paramiko=={paramiko}", *TEST_REQUIREMENTS)
    warnings: list[str] = []
    # Five sessions follow the whole suite within CI's 90 minutes: each stops at 8.
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PARAPROXY_SUITE_BUDGET": "8"}
    if tuple(int(part) for part in paramiko.split(".")) < CRYPTOGRAPHY_TRIPLEDES_FIXED:
        warnings = ["-W", PARAMIKO_IMPORT_WARNING]
        env["PYTHONWARNINGS"] = PARAMIKO_IMPORT_WARNING
    # From tests/, not the checkout's root, so neither this check, nor `python -c` in the
    # tests' subprocesses, can pick up ./paraproxy; pytest still uses pyproject.toml.
    with session.chdir(ROOT / "tests"):
        session.run("python", "-c", _CHECK_INSTALLED, paramiko, env=env)
        session.run(
            "pytest",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            "-p",
            "no:cacheprovider",
            "-q",
            *warnings,
            *[str(ROOT / m) for m in KEY_MODULES],
            *session.posargs,
            env=env,
        )
