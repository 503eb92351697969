"""The documentation builds with warnings as errors, and its tested examples really run.

Two checks:

* ``sphinx-build -W --keep-going -b html docs OUT`` succeeds. The build itself runs
  ``python -m paraproxy ...`` for every ``paraproxy-output`` directive (``docs/conf.py``),
  so a CLI example whose command fails, or exits with another status than the page
  says, fails the build too.
* Python examples marked for testing run, each in a fresh interpreter, against three
  in-process :class:`~paraproxy._demoserver.DemoServer` s standing for the original
  README's network (gatekeeper reachable, yuka only from gatekeeper, mayu.kamakura only
  from yuka).

Marking an example in a page (the comment is invisible in the output)::

    .. test: readme-config proxyjump-config

    .. code-block:: python

        ...

runs the block once per name, with ``~/.ssh/config`` made of the page block whose
``:name:`` is that name (any page) after a three-line overlay that puts ``gatekeeper``
on its loopback port (first value wins, so the overlay beats ``HostName 198.18.1.2``).
The block runs as written: a temporary HOME holds the client key as ``~/.ssh/id_ed25519``
and every server's key in ``~/.ssh/known_hosts``. If the next code block has
``:class: test-output``, the example's stdout must be exactly that text. Every one of
the three servers must have been connected to by an example that connects, so it cannot
pass by going around the chain.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from paraproxy import config
from paraproxy._demoserver import DemoServer, new_ed25519_key

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: One example may take this long (it connects through three servers).
EXAMPLE_TIMEOUT = 60.0
#: The whole Sphinx build (it runs the demo twice and a dozen CLI commands).
BUILD_TIMEOUT = 120.0

_CODE_BLOCK = re.compile(r"^(?P<indent> *)\.\. code-block::\s*(?P<language>\S+)\s*$")
_TEST_MARK = re.compile(r"^ *\.\. test:(?![:])(?P<names>.*)$")
_OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
_OVERLAY = """\
# tests/test_docs.py: the README's gatekeeper, on loopback
Host gatekeeper
    HostName 127.0.0.1
    Port {port}

"""


@dataclass
class Block:
    """One ``code-block`` of a page, with its options and any ``.. test:`` mark."""

    page: str
    line: int
    language: str
    options: dict[str, str]
    text: str
    tests: tuple[str, ...] = ()
    expected: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """``quickstart.rst:33``."""
        return f"{self.page}:{self.line}"


def _parse_page(path: Path) -> list[Block]:
    """Every code block of one page, in order; marks and expected outputs attached."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    mark: tuple[str, ...] = ()
    i = 0
    while i < len(lines):
        test = _TEST_MARK.match(lines[i])
        if test:
            mark = tuple(test.group("names").split())
            i += 1
            continue
        found = _CODE_BLOCK.match(lines[i])
        if not found:
            i += 1
            continue
        indent = len(found.group("indent"))
        block = Block(path.name, i + 1, found.group("language"), {}, "", mark)
        mark = ()
        i += 1
        while i < len(lines) and lines[i].strip().startswith(":"):
            option = _OPTION.match(lines[i].strip())
            if option:
                block.options[option.group("key")] = option.group("value").strip()
            i += 1
        body: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            body.append(lines[i])
            i += 1
        block.text = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        blocks.append(block)
    for block, following in zip(blocks, blocks[1:]):
        if block.tests and "test-output" in following.options.get("class", "").split():
            block.expected = following.text
    return blocks


def _all_blocks() -> list[Block]:
    """The code blocks of every page of the docs."""
    return [b for page in sorted(DOCS.glob("*.rst")) for b in _parse_page(page)]


BLOCKS = _all_blocks()
CONFIGS = {b.options["name"]: b for b in BLOCKS if "name" in b.options}
EXAMPLES = [(b, name) for b in BLOCKS if b.tests for name in b.tests]


# -- the build ------------------------------------------------------------------------------


def test_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    if importlib.util.find_spec("sphinx") is None:
        pytest.fail("sphinx is not installed: pip install -e '.[test]'", pytrace=False)
    result = subprocess.run(
        [
            sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
            "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout}\n{result.stderr}"
    html = (tmp_path / "html" / "quickstart.html").read_text()
    # The build ran the demo: its verbose lines are on the page.
    assert "SSHAUTH demo@mayu.kamakura" in html


# -- the markers ----------------------------------------------------------------------------


def test_the_quickstart_example_is_tested_with_both_configs() -> None:
    quickstart = [b for b in BLOCKS if b.page == "quickstart.rst" and b.language == "python"]
    assert quickstart, "no Python example in quickstart.rst"
    assert set(quickstart[0].tests) == {"readme-config", "proxyjump-config"}
    assert quickstart[0].expected == "mayu.kamakura\n"


@pytest.mark.parametrize("name", sorted({n for b in BLOCKS for n in b.tests}))
def test_every_config_a_test_names_exists(name: str) -> None:
    assert name in CONFIGS, f"no code block with :name: {name} in docs/*.rst"
    assert "gatekeeper" in CONFIGS[name].text


def test_every_tested_block_is_python() -> None:
    assert EXAMPLES
    assert all(b.language == "python" for b, _ in EXAMPLES)


# -- the examples ---------------------------------------------------------------------------


@dataclass
class Network:
    """Three DemoServers laid out as the original README's hosts, and the client key file."""

    servers: dict[str, DemoServer]
    key_file: Path

    def connections(self) -> dict[str, int]:
        """How many connections each server has accepted so far."""
        return {name: server.connection_count() for name, server in self.servers.items()}


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    """gatekeeper -> yuka -> mayu.kamakura, each reachable only through the one before."""
    key_file = tmp_path / "id_ed25519"
    key = new_ed25519_key(key_file)
    mayu = DemoServer("mayu.kamakura", [key])
    yuka = DemoServer("yuka", [key], hosts={"mayu.kamakura": mayu.address})
    gatekeeper = DemoServer("gatekeeper", [key], hosts={"yuka": yuka.address})
    try:
        yield Network({"gatekeeper": gatekeeper, "yuka": yuka, "mayu.kamakura": mayu}, key_file)
    finally:
        for server in (gatekeeper, yuka, mayu):
            server.close()


def _home(tmp_path: Path, network: Network, config_text: str) -> Path:
    """A HOME whose ~/.ssh holds the overlay and the page's config, the key, known_hosts."""
    home = tmp_path / "home"
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    gatekeeper = network.servers["gatekeeper"]
    files = {
        "config": _OVERLAY.format(port=gatekeeper.port) + config_text,
        "known_hosts": "".join(
            server.known_hosts_line(f"[127.0.0.1]:{server.port}" if name == "gatekeeper"
                                    else name) + "\n"
            for name, server in network.servers.items()
        ),
    }  # fmt: skip
    for name, text in files.items():
        (ssh_dir / name).write_text(text)
        (ssh_dir / name).chmod(0o600)
    shutil.copy(network.key_file, ssh_dir / "id_ed25519")
    (ssh_dir / "id_ed25519").chmod(0o600)
    return home


def _environment(home: Path) -> dict[str, str]:
    """The example's environment: that HOME and its config only, no agent, no switches."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("PARAPROXY_", "SSH_")) and k != "PARAMIKO_SSH_HOOK_VERBOSE"
    }  # fmt: skip
    # Only ~/.ssh/config: whatever /etc/ssh/ssh_config holds on this machine stays out.
    env.update(
        HOME=str(home), PARAPROXY_CONFIG=str(home / ".ssh" / "config"), SHELL="/bin/sh",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )  # fmt: skip
    return env


@pytest.mark.parametrize(
    ("block", "config_name"), EXAMPLES, ids=[f"{b.where}-{n}" for b, n in EXAMPLES]
)
def test_example_runs_through_the_chain(
    block: Block, config_name: str, network: Network, tmp_path: Path
) -> None:
    home = _home(tmp_path, network, CONFIGS[config_name].text)
    before = network.connections()
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", block.text],
        cwd=tmp_path, env=_environment(home), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT, check=False,
    )  # fmt: skip
    report = f"example {block.where} with {config_name}:\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report
    assert "Traceback" not in result.stderr, report
    if block.expected is not None:
        assert result.stdout == block.expected, report
    if ".connect(" in block.text:
        after = network.connections()
        assert all(after[name] > before[name] for name in after), (after, report)


# -- drift between the code and the pages ---------------------------------------------------


def test_every_environment_switch_is_documented_in_the_quickstart() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "paraproxy").glob("*.py"))
    switches = set(re.findall(r"[\"'](PARAPROXY_[A-Z_]+|PARAMIKO_SSH_HOOK_VERBOSE)[\"']", source))
    assert {"PARAMIKO_SSH_HOOK_VERBOSE", "PARAPROXY_DISABLE"} <= switches
    quickstart = (DOCS / "quickstart.rst").read_text()
    missing = sorted(s for s in switches if f"``{s}" not in quickstart)
    assert not missing, f"switches not in docs/quickstart.rst: {missing}"


def test_every_keyword_paraproxy_resolves_is_in_the_config_reference() -> None:
    # The list lives in paraproxy.config's docstring ("Keywords resolved for paraproxy").
    doc = inspect.getdoc(config) or ""
    section = doc.split("Keywords resolved for paraproxy", 1)[1].split("Every other", 1)[0]
    keywords = set(re.findall(r"\b[A-Z][A-Za-z]+\b", re.sub(r"\([^)]*\)", "", section)))
    assert {"HostName", "ProxyCommand", "ProxyJump", "IdentityFile"} <= keywords
    reference = (DOCS / "config.rst").read_text()
    missing = sorted(k for k in keywords if f"``{k}``" not in reference)
    assert not missing, f"keywords not in docs/config.rst: {missing}"
