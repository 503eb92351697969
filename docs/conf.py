"""Sphinx configuration for paraproxy's documentation.

Build with warnings as errors, as the tests do (``tests/test_docs.py``)::

    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

Only Sphinx's built-in theme (alabaster) is used, and nothing is fetched at build
time. Two local directives keep the pages true to the code: ``paraproxy-output``
runs ``python -m paraproxy ...`` while the docs are built and shows what it
printed, so the CLI examples are real output; ``paraproxy-docstring`` inserts a
bullet list from a module docstring (the departures from OpenSSH), so a list
kept in the code is the list on the page.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging as sphinx_logging
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# autodoc imports paraproxy; the builder itself has no business being hooked.
os.environ["PARAPROXY_DISABLE"] = "1"

_about: dict[str, str] = {}
exec((ROOT / "paraproxy" / "_version.py").read_text(), _about)

project = "paraproxy"
author = "the paraproxy authors"
copyright = "2011-2026, the paraproxy authors; LGPL-2.1-or-later"
release = _about["__version__"]
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]
default_role = "literal"
highlight_language = "none"
pygments_style = "sphinx"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"

html_theme = "alabaster"
html_theme_options = {
    "description": "paramiko's SSHClient.connect, the way OpenSSH reaches hosts",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_static_path: list[str] = []
html_show_sourcelink = False

logger = sphinx_logging.getLogger(__name__)

#: How long one ``paraproxy-output`` command may take.
_COMMAND_TIMEOUT = 60.0


class ParaproxyOutput(SphinxDirective):
    """Run ``python -m paraproxy ARGS`` at build time and show the command and its output.

    The directive's content, if any, is written to a file named ``ssh_config`` in an
    empty working directory first (pass ``-F ssh_config`` to use it) and shown above
    the output unless ``:hide-config:`` is given. The command runs as a user called
    ``alice`` with ``HOME=/home/alice`` and no paraproxy variables, so the output does
    not depend on who builds the docs. ``:returncode:`` (default 0) is checked, and
    ``:grep:`` keeps only the output lines matching a regular expression.
    """

    required_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = {  # noqa: RUF012 - docutils' API
        "returncode": directives.nonnegative_int,
        "hide-config": directives.flag,
        "grep": directives.unchanged_required,
    }

    def run(self) -> list[nodes.Node]:
        """Run the command and return the literal blocks to insert."""
        args = shlex.split(self.arguments[0])
        config = "\n".join(self.content).strip()
        with tempfile.TemporaryDirectory(prefix="paraproxy-docs-") as workdir:
            if config:
                path = Path(workdir, "ssh_config")
                path.write_text(config + "\n")
                path.chmod(0o600)
            result = self._execute(args, workdir)
        out = self._normalise(result.stdout)
        expected = self.options.get("returncode", 0)
        if result.returncode != expected:
            logger.warning(
                "paraproxy-output: `python -m paraproxy %s` exited with %s, not %s:\n%s",
                self.arguments[0],
                result.returncode,
                expected,
                out,
                location=self.get_location(),
            )
        if "grep" in self.options:
            pattern = re.compile(self.options["grep"])
            out = "\n".join(ln for ln in out.splitlines() if pattern.search(ln))
        shown = f"$ python -m paraproxy {self.arguments[0]}\n{out.rstrip()}"
        result_nodes: list[nodes.Node] = []
        if config and "hide-config" not in self.options:
            result_nodes.append(self._block(config, "ssh_config"))
        result_nodes.append(self._block(shown, None))
        return result_nodes

    def _execute(self, args: list[str], workdir: str) -> subprocess.CompletedProcess[str]:
        """Run the command in ``workdir`` with a neutral environment."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PARAPROXY_", "PARAMIKO_SSH_HOOK", "SSH_"))
        }
        env.update(
            HOME="/home/alice", LOGNAME="alice", USER="alice", SHELL="/bin/sh",
            PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", COLUMNS="88",
        )  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "paraproxy", *args],
            cwd=workdir, env=env, text=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=_COMMAND_TIMEOUT, check=False,
        )  # fmt: skip

    @staticmethod
    def _normalise(text: str) -> str:
        """Replace what differs between machines: this interpreter's path, temp dirs."""
        text = text.replace(sys.executable, "/usr/bin/python3")
        return re.sub(r"/tmp/paraproxy-[A-Za-z0-9_]+", "/tmp/paraproxy-demo", text)

    def _block(self, text: str, caption: str | None) -> nodes.Node:
        """A literal block, captioned like ``code-block``'s ``:caption:`` when asked."""
        block = nodes.literal_block(text, text)
        block["language"] = "none"
        self.set_source_info(block)
        if caption is None:
            return block
        container = nodes.container("", literal_block=True, classes=["literal-block-wrapper"])
        container += nodes.caption(caption, "", nodes.Text(caption))
        container += block
        return container


class DocstringList(SphinxDirective):
    """Insert the bullet list that follows ``:after:`` in a module's docstring.

    Keeps lists that live in the code (the departures from OpenSSH) and the pages
    from drifting apart: the page shows the module's current list, and a missing
    anchor or list fails the build.
    """

    required_arguments = 1
    option_spec = {"after": directives.unchanged_required}  # noqa: RUF012 - docutils' API

    def run(self) -> list[nodes.Node]:
        """Parse the list as if it were written in the page."""
        module = importlib.import_module(self.arguments[0])
        lines = inspect.cleandoc(module.__doc__ or "").splitlines()
        anchor = self.options["after"]
        items = _bullets_after(lines, anchor)
        if not items:
            logger.warning(
                "paraproxy-docstring: no bullet list after %r in %s's docstring",
                anchor,
                self.arguments[0],
                location=self.get_location(),
            )
            return []
        container = nodes.container()
        self.state.nested_parse(StringList(items, self.arguments[0]), 0, container)
        return container.children


def _bullets_after(lines: list[str], anchor: str) -> list[str]:
    """The ``*`` bullet list (with its continuation lines) after the line holding ``anchor``."""
    start = next((i for i, line in enumerate(lines) if anchor in line), None)
    if start is None:
        return []
    out: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("* ") or (out and (line.startswith("  ") or not line.strip())):
            out.append(line)
        elif out:
            break
    while out and not out[-1].strip():
        out.pop()
    return out


def setup(app: Sphinx) -> dict[str, object]:
    """Register the local directives."""
    app.add_directive("paraproxy-output", ParaproxyOutput)
    app.add_directive("paraproxy-docstring", DocstringList)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
