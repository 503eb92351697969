"""The hook: wrap ``paramiko.SSHClient.connect`` and ``close`` so they follow ssh_config.

:func:`install` saves the exact originals from ``SSHClient.__dict__`` and puts
transparent wrappers in their place; :func:`uninstall` puts the originals back,
but only while our wrappers are still the ones installed (anyone who wrapped on
top of us keeps their wrapper, and gets a :class:`ParaproxyWarning`).

The connect wrapper binds the caller's arguments by name against the original
signature, so it fits paramiko 3.x, 4.x and 5.x alike, and then:

* passes through untouched when the caller gave ``sock=`` (Fabric and others
  bring their own), when ``PARAPROXY_DISABLE=1``, or when no config applies to
  the host: then paramiko behaves exactly as without paraproxy;
* otherwise resolves the host as ``ssh`` would (arguments the caller actually
  passed are the command line, and beat the config), plans the route, builds
  it (:class:`paraproxy.jump.Chain`) and lets the original ``connect`` speak SSH
  to the target over the route's last link, looking up the host key under the
  name OpenSSH would use.

Everything opened for a client is owned by it: ``close()`` and garbage
collection of the client close the chain too.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import paramiko

from paraproxy import _route, _verbose, config
from paraproxy._readconf import COMMAND_LINE
from paraproxy._tokens import check_caller_names
from paraproxy.errors import ParaproxyError, ParaproxyWarning
from paraproxy.jump import Chain, HopOptions, host_key_name, session_summary

__all__ = ["chain_of", "install", "is_installed", "uninstall"]

logger = logging.getLogger(__name__)

#: Set to 1 to make the hook pass every call straight through.
DISABLE_ENV = "PARAPROXY_DISABLE"
#: A config file that replaces the default files, like ``ssh -F``.
CONFIG_ENV = "PARAPROXY_CONFIG"

_MARK = "__paraproxy_wrapper__"
_CHAIN_ATTR = "_paraproxy_chain"
_lock = threading.RLock()
_saved: dict[str, Any] = {}


def install() -> bool:
    """Install the hook on ``paramiko.SSHClient``; return False if it already was.

    .. versionadded:: 2.0
    """
    with _lock:
        if is_installed():
            return False
        cls = paramiko.SSHClient
        # The class dict, not getattr: we must restore exactly what was there.
        original_connect = cls.__dict__["connect"]
        original_close = cls.__dict__["close"]
        _saved["connect"] = original_connect
        _saved["close"] = original_close
        cls.connect = _wrap_connect(original_connect, original_close)  # type: ignore[method-assign]
        cls.close = _wrap_close(original_close)  # type: ignore[method-assign]
        logger.debug("installed on paramiko %s", paramiko.__version__)
        return True


def uninstall() -> bool:
    """Restore paramiko's own ``connect``/``close``; return False if there was nothing to undo.

    .. versionadded:: 2.0
    """
    with _lock:
        if not _saved:
            return False
        cls = paramiko.SSHClient
        ours = all(getattr(cls.__dict__.get(n), _MARK, False) for n in ("connect", "close"))
        if not ours:
            warnings.warn(
                "paraproxy.uninstall(): SSHClient.connect/close were wrapped again after "
                "paraproxy; leaving them in place",
                ParaproxyWarning,
                stacklevel=2,
            )
            return False
        cls.connect = _saved.pop("connect")  # type: ignore[method-assign]
        cls.close = _saved.pop("close")  # type: ignore[method-assign]
        logger.debug("uninstalled")
        return True


def is_installed() -> bool:
    """Whether our wrapper is the ``connect`` paramiko's SSHClient has now.

    .. versionadded:: 2.0
    """
    return bool(getattr(paramiko.SSHClient.__dict__.get("connect"), _MARK, False))


def disabled() -> bool:
    """Whether ``PARAPROXY_DISABLE`` asks for plain paramiko."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "yes", "true", "on")


# -- wrappers ------------------------------------------------------------------


def _wrap_connect(original: Callable[..., None], original_close: Callable[..., None]) -> Any:
    """Build the connect wrapper around paramiko's ``original``."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def connect(self: paramiko.SSHClient, *args: Any, **kwargs: Any) -> None:
        # Bind first: a wrong call fails exactly as it would without us.
        bound = signature.bind(self, *args, **kwargs)
        if disabled():
            return original(self, *args, **kwargs)
        _verbose.enable_from_env()
        if bound.arguments.get("sock") is not None:
            logger.debug("sock= given by caller; not proxying")
            return original(self, *args, **kwargs)
        if _CHAIN_ATTR in self.__dict__:
            # Reconnecting: what the last connect opened goes first.
            original_close(self)
            _close_chain(self)
        _Connect(self, bound.arguments, original, original_close).run()
        return None

    setattr(connect, _MARK, True)
    return connect


def _wrap_close(original: Callable[..., None]) -> Any:
    """Build the close wrapper: paramiko's close, then everything we opened."""

    @functools.wraps(original)
    def close(self: paramiko.SSHClient) -> None:
        try:
            original(self)
        finally:
            _close_chain(self)

    setattr(close, _MARK, True)
    return close


def chain_of(client: paramiko.SSHClient) -> Chain | None:
    """The chain paraproxy built for ``client``'s connection, or ``None`` (for inspection).

    .. versionadded:: 2.0
    """
    finalizer = client.__dict__.get(_CHAIN_ATTR)
    info = finalizer.peek() if finalizer is not None else None
    if info is None:
        return None
    close = info[1]
    return getattr(close, "__self__", None)


def _close_chain(client: paramiko.SSHClient) -> None:
    """Close the chain attached to ``client``, if any (idempotent)."""
    finalizer = client.__dict__.pop(_CHAIN_ATTR, None)
    if finalizer is not None:
        finalizer()


# -- one connect -----------------------------------------------------------------


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
        self.client.__dict__[_CHAIN_ATTR] = weakref.finalize(self.client, chain.close)
        deadline = _Deadline(kwargs.get("timeout"), chain, self.client)
        try:
            kwargs["sock"] = chain.open(self.client)
            logger.info("%s: SSHAUTH %s@%s", route.target.label, kwargs["username"],
                        route.target.config.host)
            self.original(self.client, **kwargs)
        except BaseException as exc:
            deadline.cancel()
            error = self._failure(chain, exc)
            self.original_close(self.client)
            _close_chain(self.client)
            if error is exc:
                raise
            raise error from exc
        deadline.cancel()
        logger.info("%s: connected: %s", route.target.label,
                    session_summary(self.client, kwargs["hostname"], kwargs["port"]))

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
        if hc.identity_files and kwargs.get("key_filename") is None:
            existing = [p for p in hc.identity_files if os.path.exists(p)]
            kwargs["key_filename"] = existing or None
            # OpenSSH uses its default keys only when no IdentityFile is given.
            kwargs.setdefault("look_for_keys", False)
        if hc.identities_only:
            kwargs.setdefault("allow_agent", False)
        if kwargs.get("timeout") is None and hc.connect_timeout is not None:
            kwargs["timeout"] = hc.connect_timeout
        if kwargs.get("banner_timeout") is None and kwargs.get("timeout") is not None:
            # ConnectTimeout covers the banner and key exchange too (ssh_config(5)).
            kwargs["banner_timeout"] = kwargs["timeout"]
        for path in hc.user_known_hosts_files:
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

    def _failure(self, chain: Chain, exc: BaseException) -> BaseException:
        """The exception to raise for a failed connect: name the link that broke."""
        if isinstance(exc, ParaproxyError) or not isinstance(exc, Exception):
            return exc
        if chain.expired is not None:
            return chain.link_failure(chain.current, exc, self.client)
        if isinstance(exc, (paramiko.AuthenticationException, paramiko.BadHostKeyException)):
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
