"""A private HOME for the client side of a test, and a guard against the real ~/.ssh."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GUARD", "RealSshDirGuard", "SshHome"]


@dataclass
class SshHome:
    """A temporary HOME with ``~/.ssh`` (mode 700); see the ``ssh_home`` fixture."""

    path: Path  #: the HOME directory

    @property
    def ssh_dir(self) -> Path:
        """``~/.ssh``."""
        return self.path / ".ssh"

    @property
    def config_path(self) -> Path:
        """``~/.ssh/config`` (may not exist yet)."""
        return self.ssh_dir / "config"

    @property
    def known_hosts_path(self) -> Path:
        """``~/.ssh/known_hosts`` (may not exist yet)."""
        return self.ssh_dir / "known_hosts"

    def _write(self, path: Path, text: str) -> Path:
        path.write_text(text)
        path.chmod(0o600)
        return path

    def write_config(self, text: str) -> Path:
        """Write ``~/.ssh/config`` (mode 600) and return its path."""
        return self._write(self.config_path, text)

    def write_known_hosts(self, lines: Iterable[str]) -> Path:
        """Write ``~/.ssh/known_hosts`` (mode 600) with ``lines`` and return its path."""
        return self._write(self.known_hosts_path, "".join(f"{line}\n" for line in lines))

    def write_file(self, relative: str, text: str) -> Path:
        """Write any file under HOME (parents created, mode 600), e.g. ``.ssh/config.d/x``."""
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return self._write(path, text)

    def copy_key(self, private_key: Path, name: str = "id_ed25519") -> Path:
        """Copy a key pair (and its .pub) into ``~/.ssh/<name>`` (mode 600); return its path."""
        target = self.ssh_dir / name
        shutil.copyfile(private_key, target)
        target.chmod(0o600)
        pub = Path(f"{private_key}.pub")
        if pub.exists():
            shutil.copyfile(pub, f"{target}.pub")
        return target


@dataclass
class RealSshDirGuard:
    """An audit hook that refuses, while enabled, any open/listdir of the real ``~/.ssh``.

    The real directory is the one of the passwd entry and of the HOME the run started with.
    Violations raise PermissionError in the offending code and are recorded, so the test
    fails even if the code swallowed the error.
    """

    enabled: bool = False
    violations: list[str] = field(default_factory=list)
    _roots: tuple[str, ...] = ()

    def install(self) -> None:
        """Register the hook (audit hooks can never be removed; it is inert when disabled)."""
        homes = {pwd.getpwuid(os.getuid()).pw_dir, os.environ.get("HOME", "")}
        self._roots = tuple(
            os.path.realpath(os.path.join(h, ".ssh")) for h in homes if h and h != "/"
        )
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.enabled or event not in ("open", "os.listdir", "os.scandir"):
            return
        target = args[0] if args else None
        if not isinstance(target, (str, bytes, os.PathLike)):
            return
        path = os.path.realpath(os.fsdecode(target))
        if any(path == root or path.startswith(root + os.sep) for root in self._roots):
            self.violations.append(f"{event} {path}")
            raise PermissionError(13, "tests must not touch the real ~/.ssh", path)


#: The one guard of the test session (installed and switched by tests/conftest.py).
GUARD = RealSshDirGuard()
