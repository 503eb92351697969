"""paraproxy.config without the oracle: files, precedence, Include safety, Match, tokens.

Each test gets a private HOME; config files are passed explicitly (or the default
paths are monkeypatched), so the real ~/.ssh and /etc/ssh/ssh_config are never read.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import time
from pathlib import Path

import paramiko
import pytest

from paraproxy import _match, config
from paraproxy.errors import ConfigError, InvalidNameError

CORPUS = Path(__file__).parent / "configs"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME with ~/.ssh (700)."""
    path = tmp_path / "home"
    (path / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.setenv("SHELL", "/bin/sh")
    return path


@pytest.fixture
def unit(tmp_path: Path, home: Path) -> Path:
    """tests/configs/unit copied with @DIR@ replaced, mode 644."""
    target = tmp_path / "configs"
    for source in CORPUS.rglob("*"):
        dest = target / source.relative_to(CORPUS)
        if source.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source.read_bytes().replace(b"@DIR@", str(target).encode()))
        dest.chmod(0o644)
    return target / "unit"


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    """Write a config file with a given mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def resolve(path: Path, host: str, **kwargs: object) -> config.HostConfig:
    """resolve() with exactly one config file."""
    return config.resolve(host, config_files=[str(path)], **kwargs)  # type: ignore[arg-type]


# -- sources and precedence ---------------------------------------------------------


def test_user_file_before_system_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default order: ~/.ssh/config first, then the system file; first value wins."""
    user = write(home / ".ssh" / "config", "Host h\n  Port 1111\n", 0o600)
    system = write(tmp_path / "ssh_config", "Host h\n  Port 2222\n  User sys\n")
    monkeypatch.setattr(config, "DEFAULT_CONFIG_FILES", ("~/.ssh/config", str(system)))
    hc = config.resolve("h")
    assert (hc.port, hc.user) == (1111, "sys")
    assert hc.origins["port"] == (str(user), 2)
    assert hc.origins["user"] == (str(system), 3)


def test_default_files_may_be_missing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing default files are fine; the defaults apply."""
    monkeypatch.setattr(config, "DEFAULT_CONFIG_FILES", ("~/.ssh/config", str(home / "nope")))
    hc = config.resolve("plain")
    assert (hc.hostname, hc.port, hc.configured) == ("plain", 22, False)
    assert hc.proxy_command is None and hc.proxy_jump is None


def test_explicit_missing_file_is_an_error(home: Path) -> None:
    """A missing -F file is an error, as with ssh."""
    with pytest.raises(ConfigError, match="Can't open user config file"):
        config.resolve("h", config_files=[str(home / "missing")])


def test_user_file_permissions(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group/world-writable user file is refused; the system file is not checked."""
    write(home / ".ssh" / "config", "Port 1\n", 0o664)
    system = write(tmp_path / "sys", "Port 2\n", 0o666)
    monkeypatch.setattr(config, "DEFAULT_CONFIG_FILES", ("~/.ssh/config", str(system)))
    with pytest.raises(ConfigError, match="Bad owner or permissions"):
        config.resolve("h")
    (home / ".ssh" / "config").chmod(0o600)
    assert config.resolve("h").port == 1


def test_file_edited_after_first_read_is_honoured(home: Path) -> None:
    """Files are read at every call; the cache notices the change."""
    path = write(home / "cfg", "Host h\n  Port 1000\n")
    assert resolve(path, "h").port == 1000
    write(path, "Host h\n  Port 1001\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert resolve(path, "h").port == 1001


def test_caller_arguments_beat_config(home: Path) -> None:
    """user=/port= beat the files and are %r/%p."""
    path = write(home / "cfg", "Host h\n  User cfg\n  Port 2200\n  ProxyCommand nc %r %p\n")
    hc = resolve(path, "h", user="bob", port=2299)
    assert (hc.user, hc.port) == ("bob", 2299)
    assert hc.origins["user"] == ("<command line>", 0)
    assert hc.expand(hc.proxy_command or "", "proxycommand") == "nc bob 2299"


def test_options_are_highest_precedence(home: Path) -> None:
    """-o options beat everything; -i style paths keep their spaces."""
    path = write(home / "cfg", "Host h\n  Port 2200\n  IdentityFile ~/.ssh/cfgkey\n")
    opts = [("Port", "3300"), ("IdentityFile", "/a path/key"), ("ProxyJump", "u@j:22")]
    hc = resolve(path, "h", options=opts, port=4400)
    assert hc.port == 3300
    assert hc.identity_files == ("/a path/key", str(home / ".ssh" / "cfgkey"))
    assert hc.proxy_jump == "u@j:22"


@pytest.mark.parametrize("keyword", ["Host", "Match", "Include"])
def test_block_keywords_refused_as_options(home: Path, keyword: str) -> None:
    """Host, Match and Include are not command-line options."""
    path = write(home / "cfg", "")
    with pytest.raises(ConfigError, match="not supported as a command-line option"):
        resolve(path, "h", options=[(keyword, "x")])


def test_caller_names_checked_before_anything(unit: Path, home: Path) -> None:
    """A bad name is refused before Match exec can see it."""
    with pytest.raises(InvalidNameError):
        resolve(unit / "match_exec.conf", "run-me;id")
    with pytest.raises(InvalidNameError):
        resolve(unit / "match_exec.conf", "run-me", user="$(id)")
    with pytest.raises(InvalidNameError):
        resolve(unit / "match_exec.conf", "run-me", options=[("User", "a\nb")])
    assert not (home / "exec-out").exists()


def test_trusted_names_skip_the_check(home: Path) -> None:
    """check_names=False is for names that came from trusted config."""
    path = write(home / "cfg", "")
    assert resolve(path, "odd$name", check_names=False).hostname == "odd$name"


# -- values --------------------------------------------------------------------------


def test_values_origins_and_accessors(unit: Path) -> None:
    """First value wins, accumulating keywords collect, aliases fold, origins point at lines."""
    path = unit / "values.conf"
    hc = resolve(path, "v")
    assert hc.get("USER") == "first" and hc.user == "first"
    assert hc.get_all("sendenv") == ("LANG", "LC_*", "FOO")
    assert hc.get_all("IdentityFile") == ("~/.ssh/one", "~/.ssh/two")
    assert hc.get("tcpkeepalive") == "no"  # KeepAlive is the obsolete spelling
    assert hc.get_all("localforward") == ("8080 localhost:80", "8081 localhost:81")
    assert hc.origins["identityfile"] == (str(path), 4)
    assert hc.get("ciphers") is None and hc.get_all("ciphers") == ()
    assert hc.configured


def test_token_values(home: Path) -> None:
    """%l is gethostname() (no DNS), %C is sha1(%l%h%p%r%j), %k defaults to the name given."""
    path = write(home / "cfg", "Host t\n  HostName Real\n  ProxyJump gw\n")
    hc = resolve(path, "t", user="u", port=2222)
    tv = hc.token_values
    assert tv["l"] == socket.gethostname() and tv["L"] == tv["l"].split(".")[0]
    assert (tv["h"], tv["n"], tv["p"], tv["r"], tv["j"], tv["k"]) == (
        "real", "t", "2222", "u", "gw", "t",
    )  # fmt: skip
    assert tv["d"] == str(home) and tv["i"] == str(os.getuid())
    assert tv["C"] == hashlib.sha1(f"{tv['l']}real2222ugw".encode()).hexdigest()


def test_host_key_alias_and_identity_expansion(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HostKeyAlias is lowercased and is %k; IdentityFile expands ~, tokens and ${ENV}."""
    monkeypatch.setenv("KEYDIR", "/keys")
    path = write(home / "cfg", "Host a\n  HostKeyAlias Alias6\n  IdentityFile ${KEYDIR}/%k_%h\n")
    hc = resolve(path, "a")
    assert hc.host_key_alias == "alias6"
    assert hc.identity_files == ("/keys/alias6_a",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("IdentityFile ${NOPE}", "env var ${NOPE} has no value"),
        ("IdentityFile %x", "unknown key %x"),
        ("UserKnownHostsFile /kh%", "invalid format"),
    ],
)
def test_path_expansion_errors(home: Path, line: str, message: str) -> None:
    """An unset variable or bad token in a path is an error citing the line."""
    path = write(home / "cfg", f"Host a\n  {line}\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        resolve(path, "a")
    assert info.value.line == 2


def test_booleans_and_timeouts(home: Path) -> None:
    """ForwardAgent (flag or path), IdentitiesOnly, ConnectTimeout in seconds."""
    path = write(home / "cfg", "Host a\n ForwardAgent /tmp/agent\n IdentitiesOnly YES\n"
                               " ConnectTimeout 1m30s\nHost b\n ConnectTimeout 0\n")  # fmt: skip
    a, b = resolve(path, "a"), resolve(path, "b")
    assert (a.forward_agent, a.identities_only, a.connect_timeout) == (True, True, 90.0)
    assert (b.forward_agent, b.identities_only, b.connect_timeout) == (False, False, None)
    assert "forwardagent /tmp/agent\n" in a.to_ssh_g()


def test_errors_cite_file_and_line(home: Path) -> None:
    """ConfigError is a paramiko.ConfigParseError reading 'PATH line N: reason'."""
    path = write(home / "cfg", "Host a\n\n  Port nope\n")
    with pytest.raises(paramiko.ConfigParseError) as info:
        resolve(path, "zzz")
    assert str(info.value) == f"{path} line 3: Bad port 'nope'."


def test_invalid_proxyjump_in_inactive_block(unit: Path) -> None:
    """ProxyJump is syntax-checked even where it does not apply."""
    with pytest.raises(ConfigError, match='Invalid ProxyJump "localhost,jumpbox:22bad22"'):
        resolve(unit / "proxyjump_invalid.conf", "h")


# -- User tokens (OpenSSH 10.0+) --------------------------------------------------------


def test_user_tokens_and_env(unit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config User expands tokens and ${ENV}; the literal form is trusted as is."""
    monkeypatch.setenv("PARAPROXY_TEST_USER", "envuser")
    monkeypatch.setenv("PARAPROXY_BAD_USER", "bad;user")
    path = unit / "user_tokens.conf"
    local = resolve(path, "x").token_values["u"]
    assert resolve(path, "tok").user == f"{local}-tok"
    assert resolve(path, "env").user == "envuser"
    assert resolve(path, "literal").user == "lit;eral"
    with pytest.raises(ConfigError, match="invalid characters"):
        resolve(path, "bad-env")
    assert resolve(path, "tok", user="cli%u").user == "cli%u"  # command line: not expanded


# -- Include ---------------------------------------------------------------------------


def test_include_tokens_env_and_relative(unit: Path, home: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Relative includes live in ~/.ssh; %h and ${ENV} expand (9.9+)."""
    write(home / ".ssh" / "inc-ih.conf", "Port 2901\n")
    write(tmp_path / "incdir" / "env-inc.conf", "User from-env-inc\n")
    monkeypatch.setenv("PARAPROXY_INC_DIR", str(tmp_path / "incdir"))
    hc = resolve(unit / "include_tokens.conf", "ih")
    assert (hc.port, hc.user) == (2901, "from-env-inc")


def test_include_depth_limit(unit: Path) -> None:
    """A self-include stops at depth 16 with OpenSSH's message."""
    with pytest.raises(ConfigError, match="Too many recursive configuration includes"):
        resolve(unit / "include_depth.conf", "h")


def test_include_refuses_non_regular_and_big_files(home: Path, tmp_path: Path) -> None:
    """FIFOs, devices and files over 16 MiB are refused (libssh CVE-2026-0965)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(16 * 1024 * 1024 + 1)
    for target in (fifo, Path("/dev/zero")):
        path = write(home / "cfg", f"Include {target}\n")
        with pytest.raises(ConfigError, match="not a regular file"):
            resolve(path, "h")
    (tmp_path / "dir.d").mkdir()
    path = write(home / "cfg", f"Include {tmp_path}/dir*\nPort 2\n")
    assert resolve(path, "h").port == 2  # a directory reads as empty, as in OpenSSH
    path = write(home / "cfg", f"Include {big}\n")
    with pytest.raises(ConfigError, match="larger than"):
        resolve(path, "h")


def test_include_permissions_checked(home: Path, tmp_path: Path) -> None:
    """Included files get the owner/permission check, even from an -F file."""
    inc = write(tmp_path / "inc", "Port 1\n", 0o646)
    path = write(home / "cfg", f"Include {inc}\n")
    with pytest.raises(ConfigError, match="Bad owner or permissions"):
        resolve(path, "h")


def test_tilde_include_refused_in_system_file(home: Path, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:  # fmt: skip
    """'~' in an Include of the system file is 'bad include path'."""
    system = write(tmp_path / "sys", "Include ~/x\n")
    monkeypatch.setattr(config, "DEFAULT_CONFIG_FILES", ("~/.ssh/config", str(system)))
    with pytest.raises(ConfigError, match="bad include path"):
        config.resolve("h")


# -- Match ------------------------------------------------------------------------------


def test_match_tagged_localnetwork_version(unit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """9.4+/10.0 criteria: Tag/tagged, localnetwork, version, command, sessiontype."""
    path = unit / "match_new_criteria.conf"
    assert resolve(path, "tagged-host").port == 2601
    assert resolve(path, "other", options=[("Tag", "prod")]).port == 2601
    assert resolve(path, "lo-net").port == 2602
    fake = [ipaddress.ip_address("10.1.1.1"), ipaddress.ip_address("fd00::9")]
    monkeypatch.setattr(_match, "local_addresses", lambda: fake)
    assert resolve(path, "doc-net").port == 22
    fake.append(ipaddress.ip_address("203.0.113.77"))
    assert resolve(path, "doc-net").port == 2603
    assert resolve(path, "ver").port == 2604
    cmd = resolve(path, "cmd")
    assert (cmd.port, cmd.user) == (22, "shell-no-command")
    assert resolve(path, "rc").user == "exec-session"
    assert resolve(path, "untagged").host_key_alias == "untagged"
    assert resolve(path, "untagged", options=[("Tag", "t")]).host_key_alias is None


def test_match_localnetwork_bad_list(home: Path) -> None:
    """A malformed CIDR list is a Match error."""
    path = write(home / "cfg", "Match localnetwork 10.0.0.0/33\n  Port 1\n")
    with pytest.raises(ConfigError, match="Bad Match condition"):
        resolve(path, "h")


def test_match_exec(unit: Path, home: Path) -> None:
    """exec expands tokens, runs under $SHELL, is skipped after a failed criterion."""
    path = unit / "match_exec.conf"
    hc = resolve(path, "run-me", user="u1", port=2345)
    assert hc.host_key_alias == "ran"
    local = hc.token_values["u"]
    assert (home / "exec-out").read_text() == f"run-me run-me 2345 u1 {local} run-me\n"
    assert not (home / "should-not-exist").exists()
    assert resolve(path, "shell").port == 2704


def test_match_exec_timeout(unit: Path) -> None:
    """A hanging exec is bounded and reported."""
    start = time.monotonic()
    with pytest.raises(ConfigError, match="timed out"):
        resolve(unit / "match_exec.conf", "slow", exec_timeout=0.5)
    assert time.monotonic() - start < 10


def test_canonicalize_triggers_second_pass(unit: Path) -> None:
    """CanonicalizeHostname re-reads the files with Host matching the HostName."""
    hc = resolve(unit / "canonical.conf", "short")
    assert (hc.hostname, hc.port, hc.user) == ("short.example.com", 2801, "canon")


def test_to_ssh_g_format(home: Path) -> None:
    """One lowercase 'keyword value' per line; multi-values on several lines."""
    path = write(home / "cfg", "Host g\n  IdentityFile /a\n  IdentityFile /b\n"
                               "  ProxyJump ssh://u@j:2022\n")  # fmt: skip
    text = resolve(path, "g").to_ssh_g()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert "identityfile /a" in lines and "identityfile /b" in lines
    assert "proxyjump u@j:2022" in lines
    assert all(line.split(" ", 1)[0].islower() for line in lines)


def test_jump_token_is_last_hop_host(home: Path) -> None:
    """%j is the last hop's host, as ssh.c's options.jump_host; raw value kept."""
    path = write(home / "cfg", "Host j\n  ProxyJump u1@a:2221,u2@[::1]:2222 # c\n")
    hc = resolve(path, "j")
    assert hc.proxy_jump == "u1@a:2221,u2@[::1]:2222"
    assert hc.token_values["j"] == "::1"
    assert "proxyjump u1@a:2221,u2@[::1]:2222\n" in hc.to_ssh_g()


def test_command_line_jump_names_validated(home: Path) -> None:
    """A ProxyJump option gets the caller-name rules; config lines do not (trusted)."""
    path = write(home / "cfg", "Host cfg\n  ProxyJump user;x@host;y\n")
    assert resolve(path, "cfg").proxy_jump == "user;x@host;y"
    with pytest.raises(InvalidNameError):
        resolve(path, "h", options=[("ProxyJump", "user;x@host")])
    hc = resolve(path, "h", options=[("ProxyJump", "user;x@host")], check_names=False)
    assert hc.proxy_jump == "user;x@host"


def test_match_exec_single_quotes_group(home: Path) -> None:
    """Match arguments split like other lines (OpenSSH 10.x): single quotes group words."""
    path = write(home / "cfg", "Match exec 'test %n = sq'\n  HostKeyAlias quoted\n")
    assert resolve(path, "sq").host_key_alias == "quoted"
    assert resolve(path, "other").host_key_alias is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Match sessiontype=shell x", "Unsupported Match attribute sessiontype=shell"),
        ("Match host", "missing argument for Match 'host'"),
        ("Match host=", "Missing Match criteria for host"),
        ("Match final all", None),
        ("Match canonical final all", "cannot be combined"),
        ("Match exec '%x' host x", "unknown key %x"),
        ("Match host nomatch exec %x", "unknown key %x"),  # expanded even when skipped
    ],
)
def test_match_line_errors(home: Path, line: str, message: str | None) -> None:
    """key=value only for the criteria OpenSSH lists; exec tokens checked even if skipped."""
    path = write(home / "cfg", f"{line}\n  Port 1\n")
    if message is None:
        resolve(path, "h")
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve(path, "h")


def test_negated_final_does_not_ask_for_second_pass(home: Path) -> None:
    """Only a non-negated 'final' requests the second pass (readconf.c)."""
    text = "Host a\n  HostName b\nHost b\n  Port 2\nMatch !final host zzz\n"
    assert resolve(write(home / "cfg", text), "a").port == 22
    text = text.replace("!final", "final")
    assert resolve(write(home / "cfg", text), "a").port == 2


def test_identityfile_none_dropped(home: Path) -> None:
    """'IdentityFile none' is skipped by ssh.c; the raw value stays visible."""
    path = write(home / "cfg", "Host n\n  IdentityFile none\n  IdentityFile ~/.ssh/k\n")
    hc = resolve(path, "n")
    assert hc.identity_files == (str(home / ".ssh" / "k"),)
    assert hc.get_all("identityfile") == ("none", "~/.ssh/k")


def test_include_with_unset_variable_is_skipped(home: Path, tmp_path: Path) -> None:
    """OpenSSH logs an Include whose ${VAR} is unset and goes on; '~' checked after expansion."""
    path = write(home / "cfg", "Include ${PARAPROXY_UNSET_VAR}/x\nPort 7\n")
    assert resolve(path, "h").port == 7


def test_configured_only_for_file_lines(home: Path) -> None:
    """configured: some file line applied; command-line values do not count."""
    path = write(home / "cfg", "Host known\n  Port 2\n")
    assert resolve(path, "known").configured
    assert not resolve(path, "other", user="x", options=[("Port", "3")]).configured


def test_cache_notices_a_replaced_file(home: Path) -> None:
    """A file replaced by rename (new inode, same size and mtime) is read again."""
    path = write(home / "cfg", "Port 1001\n")
    stamp = os.stat(path).st_mtime_ns
    assert resolve(path, "h").port == 1001
    fresh = write(home / "cfg.new", "Port 1002\n")
    os.utime(fresh, ns=(stamp, stamp))
    os.replace(fresh, path)
    assert resolve(path, "h").port == 1002


def test_expand_proxyjump_and_unknown_keyword(home: Path) -> None:
    """expand() uses the keyword's token set; %u is not a ProxyJump token."""
    path = write(home / "cfg", "Host x\n  HostName real\n  Port 2022\n")
    hc = resolve(path, "x", user="bob")
    assert hc.expand("%r@%h:%p,%n", "ProxyJump") == "bob@real:2022,x"
    with pytest.raises(ConfigError, match="unknown key %u"):
        hc.expand("%u", "proxyjump")


def test_known_hosts_none(home: Path) -> None:
    """'none' (any case) means no files; beside other files it is an error (ssh.c)."""
    path = write(home / "cfg", "Host a\n  UserKnownHostsFile NONE\n  GlobalKnownHostsFile none\n"
                               "Host b\n  UserKnownHostsFile none /x\n")  # fmt: skip
    hc = resolve(path, "a")
    assert (hc.user_known_hosts_files, hc.global_known_hosts_files) == ((), ())
    with pytest.raises(ConfigError, match="appears with other entries"):
        resolve(path, "b")


def test_sendenv_accumulates_and_removes(home: Path) -> None:
    """SendEnv adds names; -PATTERN removes earlier ones; '=' is an invalid name."""
    path = write(home / "cfg", "Host s\n  SendEnv LANG LC_ALL LC_CTYPE\n  SendEnv -LC_* TERM\n")
    assert resolve(path, "s").get_all("sendenv") == ("LANG", "TERM")
    path = write(home / "cfg", "SendEnv A=B\n")
    with pytest.raises(ConfigError, match="Invalid environment name"):
        resolve(path, "s")
