"""Rendering a resolved host the way ``ssh -G`` (OpenSSH 9.2p1) prints it.

Only the keywords paraproxy honours are printed; the differential tests compare
them line by line with the real ``ssh -G``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paraproxy._jumpspec import parse_proxy_jump
from paraproxy._keywords import parse_bool, parse_time

if TYPE_CHECKING:
    from paraproxy.config import HostConfig

__all__ = ["ssh_g_lines"]

# What `ssh -G` prints when nothing is configured (OpenSSH 9.2, readconf.c).
_DEFAULT_IDENTITY_FILES = (
    "~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa",
)  # fmt: skip
_DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
_DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


def ssh_g_lines(hc: HostConfig) -> list[tuple[str, str]]:
    """The (keyword, value) lines of ``ssh -G`` for the keywords paraproxy honours."""
    lines = [
        ("host", hc.host),
        ("user", hc.user),
        ("hostname", hc.hostname),
        ("port", str(hc.port)),
    ]
    lines.append(("identitiesonly", "yes" if hc.identities_only else "no"))
    if hc.host_key_alias is not None:
        lines.append(("hostkeyalias", hc.host_key_alias))
    # ssh -G (9.2) prints IdentityFile unexpanded, the defaults when none is set.
    lines += [("identityfile", f) for f in hc.get_all("identityfile") or _DEFAULT_IDENTITY_FILES]
    lines.append(
        (
            "globalknownhostsfile",
            " ".join(hc.global_known_hosts_files or _DEFAULT_GLOBAL_KNOWN_HOSTS),
        )
    )
    lines.append(("userknownhostsfile", _known_hosts_text(hc)))
    lines.append(("forwardagent", _forward_agent_text(hc.get("forwardagent"))))
    timeout = hc.get("connecttimeout")
    seconds = parse_time(timeout) if timeout not in (None, "none") else None
    lines.append(("connecttimeout", "none" if seconds is None else str(seconds)))
    if hc.proxy_command is not None:
        lines.append(("proxycommand", hc.proxy_command))
    if hc.proxy_jump is not None:
        lines.append(("proxyjump", _render_jump(hc.proxy_jump)))
    return lines


def _known_hosts_text(hc: HostConfig) -> str:
    """UserKnownHostsFile as ssh -G prints it: expanded, defaults when unset."""
    raw = hc.get_all("userknownhostsfile")
    if raw and raw[0].lower() == "none":
        return raw[0]
    if hc.user_known_hosts_files:
        return " ".join(hc.user_known_hosts_files)
    home = hc.token_values["d"]
    return " ".join(home + p[1:] for p in _DEFAULT_USER_KNOWN_HOSTS)


def _forward_agent_text(raw: str | None) -> str:
    """ForwardAgent as ssh -G prints it: yes/no, or the socket path."""
    if raw is None:
        return "no"
    flag = parse_bool(raw)
    return raw if flag is None else ("yes" if flag else "no")


def _render_jump(value: str) -> str:
    """ProxyJump as ssh -G prints it: earlier hops verbatim, the last one re-rendered."""
    hops = parse_proxy_jump(value)
    if not hops:
        return value
    word = value.split(None, 1)[0].split("#", 1)[0]
    head = word.rsplit(",", 1)[0] + "," if "," in word else ""
    last = hops[-1]
    numeric = ":" in last.host or all(c in "0123456789." for c in last.host)
    host = f"[{last.host}]" if numeric else last.host
    user = f"{last.user}@" if last.user is not None else ""
    port = f":{last.port}" if last.port is not None else ""
    return f"{head}{user}{host}{port}"
