"""One wrapped ``connect()``: resolve the host, plan the route, build it, hand over.

Kept apart from :mod:`paraproxy.hook` so that ``import paraproxy`` stays cheap:
the config and chain machinery loads at the first ``connect()`` that needs it.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import paramiko

from paraproxy import _route, config
from paraproxy._readconf import COMMAND_LINE
from paraproxy._tokens import check_caller_names
from paraproxy._transport import HopTransport, finish
from paraproxy.errors import HopConnectError, ParaproxyError
from paraproxy.hook import attach_chain, close_chain
from paraproxy.jump import Chain, HopOptions, hop_event, host_key_name, session_summary

__all__ = ["CONFIG_ENV", "connect"]

logger = logging.getLogger("paraproxy.hook")

#: A config file that replaces the default files, like ``ssh -F``.
CONFIG_ENV = "PARAPROXY_CONFIG"


def connect(
    client: paramiko.SSHClient,
    arguments: dict[str, Any],
    original: Callable[..., None],
    original_close: Callable[..., None],
) -> None:
    """Connect ``client`` as ssh would, or exactly as paramiko would."""
    _Connect(client, arguments, original, original_close).run()


class _Connect:
    """One call of the wrapped ``connect``: resolve, plan, build, hand over."""

    def __init__(
        self,
        client: paramiko.SSHClient,
        arguments: dict[str, Any],
        original: Callable[..., None],
        original_close: Callable[..., None],
    ) -> None:
        self.client = client
        self.passed = {k: v for k, v in arguments.items() if k != "self"}
        self.original = original
        self.original_close = original_close

    def run(self) -> None:
        """Connect the client as ssh would, or exactly as paramiko would."""
        files = os.environ.get(CONFIG_ENV) or None
        config_files = [files] if files else None
        hc = self._resolve(config_files)
        if not _applies(hc):
            logger.debug("config: nothing for %s that paramiko would use; plain connect",
                         hc.host)
            self.original(self.client, **self.passed)
            return
        logger.debug("config: %s -> user %s, hostname %s, port %d, %s", hc.host, hc.user,
                     hc.hostname, hc.port, _proxy_words(hc))
        route = _route.plan(hc, config_files)
        logger.info("plan: %s", route.describe())
        kwargs = self._target_kwargs(route)
        chain = Chain(route, self._hop_options(kwargs), self.original)
        attach_chain(self.client, weakref.finalize(self.client, chain.close))
        deadline = _Deadline(kwargs.get("timeout"), chain, self.client)
        opened = False
        try:
            kwargs["sock"] = chain.open(self.client)
            opened = True
            logger.info("%s: SSHAUTH %s@%s", route.target.label, kwargs["username"],
                        route.target.config.host)
            self.original(self.client, **kwargs)
        except BaseException as exc:
            deadline.cancel()
            error = self._failure(chain, exc, opened)
            transport = self.client.get_transport()
            self.original_close(self.client)
            finish(transport)
            close_chain(self.client)
            if error is exc:
                raise
            raise error from exc
        deadline.cancel()
        transport = self.client.get_transport()
        if isinstance(transport, HopTransport):
            transport.settle()  # the caller's first exec_command costs no 40 ms stall
        logger.info("%s: connected: %s", route.target.label,
                    session_summary(self.client, kwargs["hostname"], kwargs["port"]),
                    extra=hop_event(route.target.label, "connected"))

    def _resolve(self, config_files: list[str] | None) -> config.HostConfig:
        """Look the host up; passed arguments are the command line."""
        hostname = self.passed["hostname"]
        username = self.passed.get("username")
        check_caller_names(hostname, username)
        return config.resolve(
            hostname,
            user=username,
            port=self.passed.get("port"),
            config_files=config_files,
        )

    def _target_kwargs(self, route: _route.Route) -> dict[str, Any]:
        """paramiko's arguments for the target: the caller's, completed by the config."""
        hc = route.target.config
        kwargs = dict(self.passed)
        kwargs["hostname"], kwargs["port"] = host_key_name(route.target)
        kwargs["username"] = hc.user
        # Ours stops its handshake timer however the handshake ends (paramiko's
        # may outlive a failed connect by 15 s); a caller's own factory wins.
        if kwargs.get("transport_factory") is None:
            kwargs["transport_factory"] = HopTransport
        if hc.get_all("identityfile") and kwargs.get("key_filename") is None:
            existing = [p for p in hc.identity_files if os.path.exists(p)]
            kwargs["key_filename"] = existing or None
            # OpenSSH uses its default keys only when no IdentityFile is given
            # (`IdentityFile none` included).
            kwargs.setdefault("look_for_keys", False)
        if hc.identities_only:
            kwargs.setdefault("allow_agent", False)
        if kwargs.get("timeout") is None and hc.connect_timeout is not None:
            kwargs["timeout"] = hc.connect_timeout
        if kwargs.get("banner_timeout") is None and kwargs.get("timeout") is not None:
            # ConnectTimeout covers the banner and key exchange too (ssh_config(5)).
            kwargs["banner_timeout"] = kwargs["timeout"]
        for path in (*hc.user_known_hosts_files, *hc.global_known_hosts_files):
            _load_system_keys(self.client, path)
        return kwargs

    def _hop_options(self, kwargs: dict[str, Any]) -> HopOptions:
        """What of the caller's arguments applies to hops (never password or pkey)."""
        return HopOptions(
            timeout=kwargs.get("timeout"),
            banner_timeout=self.passed.get("banner_timeout"),
            auth_timeout=self.passed.get("auth_timeout"),
            allow_agent=bool(self.passed.get("allow_agent", True)),
            look_for_keys=bool(self.passed.get("look_for_keys", True)),
            passphrase=self.passed.get("passphrase"),
            disabled_algorithms=self.passed.get("disabled_algorithms"),
        )

    def _failure(self, chain: Chain, exc: BaseException, opened: bool) -> BaseException:
        """The exception to raise for a failed connect: name the link that broke."""
        if isinstance(exc, ParaproxyError) or not isinstance(exc, Exception):
            return exc
        if not opened:
            # Something unexpected while building the hops: say which one.
            return HopConnectError(chain.current.label, f"failed: {exc!r}")
        if chain.expired is not None:
            return chain.link_failure(chain.current, exc, self.client)
        if isinstance(exc, (paramiko.AuthenticationException, paramiko.BadHostKeyException)):
            if chain.link_died(exc):
                # paramiko reports EOF during auth as an authentication failure.
                return chain.link_failure(chain.route.target, exc, self.client)
            # The route worked; the target said no. Exactly paramiko's own error.
            return exc
        transport = self.client.get_transport()
        if transport is not None and transport.is_authenticated():
            return exc
        if isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
            return exc
        return chain.link_failure(chain.route.target, exc, self.client)


class _Deadline:
    """ConnectTimeout over the whole route: cut it if the target's key exchange is not
    done in time (authentication is bounded by ``auth_timeout`` instead, as in OpenSSH).

    One timer thread, only while ``connect()`` runs.
    """

    def __init__(self, seconds: float | None, chain: Chain, client: paramiko.SSHClient) -> None:
        self._timer: threading.Timer | None = None
        if seconds is None:
            return
        self._seconds = float(seconds)
        self._chain = chain
        self._client = client
        self._timer = threading.Timer(self._seconds, self._fire)
        self._timer.name = f"paraproxy-deadline[{chain.route.target.config.host}]"
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        """Abort the chain unless the target's key exchange already finished."""
        transport = self._client.get_transport()
        if transport is not None and transport.session_id is not None:
            return
        self._chain.abort(self._seconds)

    def cancel(self) -> None:
        """Stop the timer and wait for it (it never blocks for long)."""
        if self._timer is not None:
            self._timer.cancel()
            if self._timer is not threading.current_thread():
                self._timer.join(5.0)


#: Keywords that change what paramiko does; a host with none of them set is
#: connected exactly as plain paramiko would (Debian's `Host *` SendEnv does not count).
_ACTIVE_KEYWORDS = frozenset({
    "hostname", "port", "user", "identityfile", "identitiesonly", "connecttimeout",
    "userknownhostsfile", "globalknownhostsfile", "hostkeyalias",
})


def _applies(hc: config.HostConfig) -> bool:
    """Whether the config says anything about ``hc`` that paraproxy acts on."""
    if hc.proxy_command is not None or hc.proxy_jump is not None:
        return True
    return any(
        keyword in _ACTIVE_KEYWORDS and path != COMMAND_LINE
        for keyword, (path, _line) in hc.origins.items()
    )


def _proxy_words(hc: config.HostConfig) -> str:
    """``proxycommand nc %h %p`` / ``proxyjump a,b`` / ``direct`` for the log."""
    if hc.proxy_command is not None:
        return f"proxycommand {hc.proxy_command}"
    if hc.proxy_jump is not None:
        return f"proxyjump {hc.proxy_jump}"
    return "direct"


def _load_system_keys(client: paramiko.SSHClient, path: str) -> None:
    """Add a UserKnownHostsFile to the client's system keys (never saved back)."""
    try:
        client.load_system_host_keys(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.debug("known_hosts %s unreadable: %s", path, exc)
