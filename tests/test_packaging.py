"""Packaging: the sdist and wheel build cleanly, pass ``twine check --strict``, carry
complete metadata and the typed marker, take their version from one place, and the wheel,
installed into a fresh virtual environment with its dependencies from the index, runs the
demo.

The distributions are built once for the module with ``python -m build`` (an isolated
build: the sdist first, then the wheel from the unpacked sdist, as a release would be).
"""

from __future__ import annotations

import email.parser
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _version() -> str:
    """The version, read as setup.py reads it (exec of paraproxy/_version.py)."""
    about: dict = {}
    exec((ROOT / "paraproxy" / "_version.py").read_text(), about)
    return str(about["__version__"])


VERSION = _version()

#: A warning or error in a build log (not a file name such as tests/configs/errors/...).
BAD_BUILD_LINE = re.compile(r"(^|\s)(warning|error|deprecat\w*)\b|\w+(Warning|Error)\b",
                            re.IGNORECASE)


def _run(argv: list[str], *, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    """Run ``argv`` outside the checkout, with no PYTHONPATH leaking the checkout in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"sdist": ..., "wheel": ..., "log": ...}`` built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    done = _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                cwd=out, timeout=110)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sdists = sorted(out.glob("paraproxy-*.tar.gz"))
    wheels = sorted(out.glob("paraproxy-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(out.iterdir())
    log = out / "build.log"
    log.write_text(done.stdout + done.stderr)
    return {"sdist": sdists[0], "wheel": wheels[0], "log": log}


def _source_files() -> set[str]:
    """The files of the folders the sdist carries: git's list in a checkout, else the disk's."""
    folders = ["paraproxy", "tests", "docs", "scripts", "benchmarks"]
    if (ROOT / ".git").exists():
        return set(subprocess.run(["git", "-C", str(ROOT), "ls-files", *folders],
                                  capture_output=True, text=True, check=True).stdout.split())
    found = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*"):
            parts = path.relative_to(ROOT).parts
            if path.is_file() and not {"__pycache__", "_build", "results"} & set(parts) \
                    and path.suffix not in (".pyc", ".pyo"):
                found.add("/".join(parts))
    return found


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(f"paraproxy-{VERSION}.dist-info/METADATA").decode()
    return email.parser.Parser().parsestr(text)


# -- building ----------------------------------------------------------------------------------


def test_names_carry_the_one_version(dist):
    assert dist["sdist"].name == f"paraproxy-{VERSION}.tar.gz"
    assert dist["wheel"].name == f"paraproxy-{VERSION}-py3-none-any.whl"


def test_build_is_clean(dist):
    # No setuptools deprecation or packaging warning (e.g. License classifiers, missing
    # files, unknown options); byte-compiling being off is setuptools' note, not a problem.
    lines = [line for line in dist["log"].read_text().splitlines()
             if BAD_BUILD_LINE.search(line) and "byte-compiling is disabled" not in line]
    assert lines == []


def test_twine_check_strict(dist):
    done = _run([sys.executable, "-m", "twine", "check", "--strict",
                 str(dist["sdist"]), str(dist["wheel"])], cwd=dist["sdist"].parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


# -- contents ----------------------------------------------------------------------------------


def test_sdist_contents(dist):
    with tarfile.open(dist["sdist"]) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for required in ("LICENSE", "README.rst", "setup.py", "pyproject.toml", "MANIFEST.in",
                     "noxfile.py", "paraproxy/py.typed", "paraproxy/_version.py",
                     # enough to run the tests from the sdist: fixtures, test bed, data
                     "tests/conftest.py", "tests/testbed/__init__.py", "tests/test_hook.py",
                     "tests/test_packaging.py", "tests/configs/basic.conf",
                     "docs/conf.py", "docs/index.rst", "scripts/test"):
        assert required in names, required
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    # Every source file in these folders (MANIFEST.in lists patterns, not folders).
    assert sorted(_source_files() - names) == []


def test_wheel_contents(dist):
    with zipfile.ZipFile(dist["wheel"]) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(f"paraproxy-{VERSION}.dist-info/entry_points.txt").decode()
    info = f"paraproxy-{VERSION}.dist-info"
    assert "paraproxy/py.typed" in names  # PEP 561 marker
    assert f"{info}/licenses/LICENSE" in names or f"{info}/LICENSE" in names
    # Exactly the package's modules: nothing stale from an old build/, no tests.
    modules = {n for n in names if not n.startswith(info)}
    expected = {f"paraproxy/{p.name}" for p in (ROOT / "paraproxy").glob("*.py")}
    assert modules == expected | {"paraproxy/py.typed"}
    assert re.search(r"^paraproxy\s*=\s*paraproxy\.__main__:main$", entry_points, re.M)


def test_wheel_metadata_is_complete(dist):
    meta = _metadata(dist["wheel"])
    assert meta["Name"] == "paraproxy"
    assert meta["Version"] == VERSION
    assert meta["Summary"] and "paramiko" in meta["Summary"]
    # SPDX expression (PEP 639) from setuptools 77 on; the License field before that.
    assert (meta["License-Expression"] or meta["License"]) == "LGPL-2.1-or-later"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.9"
    assert meta["Description-Content-Type"] == "text/x-rst"
    assert "drop-in add-on for" in meta.get_payload()  # the README is the description
    requires = meta.get_all("Requires-Dist")
    assert any(re.fullmatch(r"paramiko(<6,>=3\.0|>=3\.0,<6)", r) for r in requires), requires
    classifiers = meta.get_all("Classifier")
    for wanted in ("Typing :: Typed", "Programming Language :: Python :: 3 :: Only",
                   "Operating System :: POSIX :: Linux", "Development Status :: 4 - Beta"):
        assert wanted in classifiers
    if meta["License-Expression"]:
        # PEP 639: a License-Expression and License classifiers must not both be given.
        assert not [c for c in classifiers if c.startswith("License ::")]


def test_version_lives_in_one_place():
    assert re.fullmatch(r'__version__ = "[^"]+"', "\n".join(
        line for line in (ROOT / "paraproxy" / "_version.py").read_text().splitlines()
        if line and not line.startswith(('"""', "#"))))
    literal = re.compile(re.escape(VERSION))
    places = [ROOT / "setup.py", ROOT / "pyproject.toml", ROOT / "docs" / "conf.py",
              *sorted((ROOT / "paraproxy").glob("*.py"))]
    holding = [p.relative_to(ROOT).as_posix() for p in places
               if p.exists() and literal.search(p.read_text())]
    assert holding == ["paraproxy/_version.py"]
    assert "version" not in (ROOT / "pyproject.toml").read_text().split("[tool.", 1)[0]


# -- installing --------------------------------------------------------------------------------


def test_wheel_in_a_fresh_venv_runs_the_demo(dist, tmp_path):
    venv = tmp_path / "venv"
    done = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    # The wheel itself; its dependencies (paramiko ...) from the index, as a user gets them.
    done = _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                 str(dist["wheel"])], cwd=tmp_path, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr

    probe = ("import importlib.metadata as m, pathlib, paraproxy, paramiko\n"
             "pkg = pathlib.Path(paraproxy.__file__).parent\n"
             "print(pkg)\n"
             "print(paraproxy.__version__, m.version('paraproxy'))\n"
             "print((pkg / 'py.typed').is_file(), paraproxy.is_installed())\n")
    done = _run([str(python), "-c", probe], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where, versions, marks = done.stdout.splitlines()
    assert Path(where).is_relative_to(venv)  # the installed copy, not the checkout
    assert versions == f"{VERSION} {VERSION}"
    assert marks == "True True"

    done = _run([str(python), "-m", "paraproxy", "demo", "--hops", "1", "-q"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gatekeeper was reached through its ProxyCommand." in done.stdout
    assert "\ngatekeeper\n" in done.stdout  # `hostname` on the demo's gatekeeper

    done = _run([str(venv / "bin" / "paraproxy"), "--help"], cwd=tmp_path)  # console script
    assert done.returncode == 0, done.stderr
    assert "demo" in done.stdout
