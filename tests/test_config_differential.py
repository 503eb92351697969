"""paraproxy's resolution against ``ssh -G`` (OpenSSH 9.2p1, the oracle), keyword by keyword.

Every corpus file under ``tests/configs`` is resolved for a set of hosts, by
``ssh -G -F FILE [-l USER] [-p PORT] HOST`` and by :func:`paraproxy.config.resolve`;
the keywords paraproxy honours must print identically, and a config ssh refuses must
raise :class:`~paraproxy.errors.ConfigError`.  Hypothesis then generates configs.

Known 9.2 differences kept out of the oracle: ``%C`` (9.2 hashes without ``%j``),
tokens in ``User``/``Include`` (10.0/9.9), the 9.4+ Match criteria, and ``Match !final``
(9.2 then makes the second pass; 10.x does not).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraproxy import config
from paraproxy.errors import ConfigError

CORPUS = Path(__file__).parent / "configs"
SSH = shutil.which("ssh") or "/usr/bin/ssh"
HONOURED = (
    "user", "hostname", "port", "identityfile", "userknownhostsfile", "globalknownhostsfile",
    "hostkeyalias", "forwardagent", "identitiesonly", "connecttimeout", "proxycommand",
    "proxyjump",
)  # fmt: skip
PW_DIR = pwd.getpwuid(os.getuid()).pw_dir

Outcome = Optional[dict[str, list[str]]]


def _keep(text: str, home: str | None = None) -> dict[str, list[str]]:
    """Parse ``ssh -G`` text, keeping honoured keywords; map ssh's pw_dir onto HOME."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key not in HONOURED:
            continue
        if home is not None and key == "userknownhostsfile":
            value = " ".join(
                home + p[len(PW_DIR) :] if p == PW_DIR or p.startswith(PW_DIR + "/") else p
                for p in value.split(" ")
            )
        out.setdefault(key, []).append(value)
    return out


def ssh_g(
    path: Path, host: str, user: str | None, port: int | None, home: Path,
    options: tuple[tuple[str, str], ...] = (),
) -> Outcome:  # fmt: skip
    """Ask OpenSSH; None when it refuses the config."""
    argv = [SSH, "-G", "-F", str(path)]
    for key, value in options:
        argv += ["-o", f"{key}={value}"]
    argv += ["-l", user] if user else []
    argv += ["-p", str(port)] if port else []
    env = dict(os.environ, HOME=str(home))
    proc = subprocess.run(
        [*argv, "--", host], capture_output=True, text=True, env=env,
        stdin=subprocess.DEVNULL, timeout=30, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return None
    return _keep(proc.stdout, str(home))


def ours(
    path: Path, host: str, user: str | None, port: int | None,
    options: tuple[tuple[str, str], ...] = (),
) -> Outcome:  # fmt: skip
    """Ask paraproxy; None when it raises ConfigError."""
    try:
        hc = config.resolve(host, user=user, port=port, config_files=[str(path)], options=options)
    except ConfigError:
        return None
    return _keep(hc.to_ssh_g())


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of tests/configs with @DIR@ replaced by its location; HOME is private."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    target = tmp_path / "configs"
    for source in CORPUS.rglob("*"):
        dest = target / source.relative_to(CORPUS)
        if source.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source.read_bytes().replace(b"@DIR@", str(target).encode()))
        dest.chmod(0o644)
    return target


def compare(corpus: Path, name: str, host: str, user: str | None = None,
            port: int | None = None) -> None:  # fmt: skip
    """Assert paraproxy and ssh -G agree on one lookup."""
    home = Path(os.environ["HOME"])
    expected = ssh_g(corpus / name, host, user, port, home)
    got = ours(corpus / name, host, user, port)
    assert got == expected, f"{name} {host} -l {user} -p {port}"


CASES = (
    [
        ("basic.conf", "gatekeeper", None, None),
        ("basic.conf", "gatekeeper", "bob", 2299),
        ("basic.conf", "web[12]", None, None),
        ("basic.conf", "web1", None, None),
        ("basic.conf", "webx", None, None),
        ("basic.conf", "app.internal", None, None),
        ("basic.conf", "db.internal", None, None),
        ("basic.conf", "foo", None, None),
        ("basic.conf", "FOO", None, None),
        ("basic.conf", "Unknown-Host", None, None),
        ("syntax.conf", "eq", None, None),
        ("syntax.conf", "quoted-host", None, None),
        ("syntax.conf", "other", "carol", None),
        ("crlf.conf", "crlf", None, None),
        ("known_hosts.conf", "kh", None, None),
        ("known_hosts.conf", "kh", "dave", 2345),
        ("known_hosts.conf", "kh-none", None, None),
        ("known_hosts.conf", "alias", None, None),
        ("second_pass.conf", "alias", None, None),
        ("second_pass.conf", "real", None, None),
        ("no_second_pass.conf", "alias", None, None),
        ("match.conf", "m1", None, None),
        ("match.conf", "m2", "bob", None),
        ("match.conf", "m2", "bobby", None),
        ("match.conf", "m3", "alice", None),
        ("match.conf", "m9x", "alice", None),
        ("match.conf", "m5", None, None),
        ("match.conf", "m6", None, None),
        ("match.conf", "m7", None, None),
        ("match.conf", "m8", None, None),
        ("match.conf", "m9", None, None),
        ("include_main.conf", "inc-glob", None, None),
        ("include_main.conf", "inc-target", None, None),
        ("include_main.conf", "no-leak", None, None),
        ("include_main.conf", "other-name", None, None),
        ("include_main.conf", "after-include", None, None),
        ("ipv6.conf", "v6", None, None),
        ("ipv6.conf", "v6long", None, None),
        ("ipv6.conf", "v4", None, None),
        ("ipv6.conf", "v4short", None, None),
        ("ignore_unknown.conf", "h", None, None),
        ("deprecated.conf", "h", None, None),
        ("realworld.conf", "bastion", None, None),
        ("realworld.conf", "ssh-host", None, None),
        ("realworld.conf", "10.1.1.7", None, None),
        ("realworld.conf", "prod-web", "alice", None),
        ("realworld.conf", "prod-bastion", None, None),
        ("realworld.conf", "db.corp.example.com", None, 2200),
        ("realworld.conf", "bastion.corp.example.com", None, None),
        ("realworld.conf", "github.com", None, None),
        ("realworld.conf", "GitHub.com", None, None),
        ("include_state.conf", "st1", None, None),
        ("include_state.conf", "st2", None, None),
        ("include_state.conf", "nothing", None, None),
        ("tokens_misc.conf", "pct", None, None),
        ("tokens_misc.conf", "scoped", None, None),
        ("tokens_misc.conf", "exn", None, None),
        ("tokens_misc.conf", "exo", None, None),
    ]
    + [
        ("proxy_precedence.conf", host, None, None)
        for host in (
            "cmd-first",
            "jump-first",
            "cmd-none",
            "jump-none",
            "jump-none-quirk",
            "dash",
            "verbatim",
            "uri",
            "v6",
            "numeric",
            "at-user",
            "trailing-colon",
            "commented",
            "tokens",
            "anything-else",
        )
    ]
    + [("proxy_precedence.conf", "tokens", "bob", 2299)]
)


@pytest.mark.parametrize(("name", "host", "user", "port"), CASES)
def test_corpus_matches_ssh(corpus: Path, name: str, host: str, user: str | None,
                            port: int | None) -> None:  # fmt: skip
    """Every corpus lookup prints the honoured keywords exactly as ssh -G does."""
    compare(corpus, name, host, user, port)


@pytest.mark.parametrize(
    "host", ["1", "127.1", "0x7f.1", "FE80::1", "fe80::1%lo", "010.1.1.1", "::FFFF:1.2.3.4",
             "MiXeD.Example.COM"],
)  # fmt: skip
def test_address_literals_with_dev_null(corpus: Path, host: str) -> None:
    """-F /dev/null (a device, read as empty) and ssh's numeric canonical address forms."""
    home = Path(os.environ["HOME"])
    assert ours(Path("/dev/null"), host, None, None) == ssh_g(
        Path("/dev/null"), host, None, None, home
    )


def test_jump_loop_left_to_the_planner(corpus: Path) -> None:
    """ssh -G already refuses 'jumphost loop via self'; resolve() reports the raw
    ProxyJump and leaves loop detection to the chain planner (paraproxy._route)."""
    home = Path(os.environ["HOME"])
    assert ssh_g(corpus / "realworld.conf", "self", None, None, home) is None
    hc = config.resolve("self", config_files=[str(corpus / "realworld.conf")])
    assert (hc.hostname, hc.proxy_jump) == ("self", "self")


OPTION_CASES = [
    ("basic.conf", "gatekeeper", (("Port", "2001"), ("User", "optuser"))),
    ("basic.conf", "gatekeeper", (("IdentityFile", "/opt/key"), ("HostName", "opt-%h"))),
    ("proxy_precedence.conf", "cmd-first", (("ProxyJump", "u@optjump:22"),)),
    ("proxy_precedence.conf", "jump-first", (("ProxyCommand", "nc opt %h"),)),
    ("proxy_precedence.conf", "jump-first", (("proxyjump", "none"),)),
    ("proxy_precedence.conf", "cmd-none", (("ProxyCommand", "none"),)),
    ("match.conf", "m2", (("User", "bob"),)),
    ("syntax.conf", "eq", (("ConnectTimeout", "none"), ("ForwardAgent", "no"))),
    ("ignore_unknown.conf", "h", (("IgnoreUnknown", "nothing"),)),
]


@pytest.mark.parametrize(("name", "host", "options"), OPTION_CASES)
def test_options_match_ssh_dash_o(
    corpus: Path, name: str, host: str, options: tuple[tuple[str, str], ...]
) -> None:
    """options= behaves like ssh -o Key=Value (highest precedence, first wins)."""
    home = Path(os.environ["HOME"])
    expected = ssh_g(corpus / name, host, None, None, home, options)
    assert ours(corpus / name, host, None, None, options) == expected


ERRORS = sorted(p.name for p in (CORPUS / "errors").glob("*.conf"))


@pytest.mark.parametrize("name", ERRORS)
def test_errors_refused_by_both(corpus: Path, name: str) -> None:
    """A config ssh refuses raises ConfigError, and ssh does refuse it."""
    home = Path(os.environ["HOME"])
    assert ssh_g(corpus / "errors" / name, "h", None, None, home) is None
    with pytest.raises(ConfigError):
        config.resolve("h", config_files=[str(corpus / "errors" / name)])


# -- generated configs ------------------------------------------------------------

_NAMES = ("alpha", "beta", "Alpha", "web1", "web12", "db.internal", "x", "real1")
_PATTERNS = st.sampled_from(
    ["alpha", "beta", "Alpha", "*", "web?", "web*", "!beta", "!web1", "*.internal", "a*a",
     "web[12]", "?eta", "x"]
)  # fmt: skip
_WORD = st.text(alphabet="abcdefgh-._", min_size=1, max_size=8).filter(lambda w: w[0] not in "-.")
_PATH = st.sampled_from(["~/.ssh/id_a", "/keys/%h_%p", "%d/k_%r", "~/.ssh/%n", "/k/%%x"])


def _value_line(draw: st.DrawFn) -> str:
    """Draw one keyword line in one of the spellings ssh accepts."""
    keyword, value = draw(st.one_of(
        st.tuples(st.just("HostName"), st.one_of(_WORD, st.just("%h.example.com"))),
        st.tuples(st.just("Port"), st.integers(1, 65535).map(str)),
        st.tuples(st.just("User"), _WORD),
        st.tuples(st.just("IdentityFile"), _PATH),
        st.tuples(st.just("ProxyCommand"), st.sampled_from(
            ["nc %h %p", "ssh -W %h:%p gw", "none", "connect %r@%h  x=y # c"])),
        st.tuples(st.just("ProxyJump"), st.sampled_from(
            ["gw", "u@gw:2222", "none", "a,b:22", "ssh://u@j:2022", "[::1]:22"])),
        st.tuples(st.just("HostKeyAlias"), _WORD),
        st.tuples(st.just("ConnectTimeout"), st.sampled_from(["5", "1m", "none", "0"])),
        st.tuples(st.just("ForwardAgent"), st.sampled_from(["yes", "no", "True"])),
        st.tuples(st.just("IdentitiesOnly"), st.sampled_from(["yes", "no"])),
    ))  # fmt: skip
    if draw(st.booleans()):
        keyword = draw(st.sampled_from([keyword.lower(), keyword.upper(), keyword]))
    sep = draw(st.sampled_from([" ", "=", " = ", "\t"]))
    comment = draw(st.sampled_from(["", "", " # note"]))
    if keyword.lower() == "proxycommand":  # the rest of its line is the command
        comment = ""
    if keyword.lower() == "proxyjump" and value == "none":
        # OpenSSH then jumps via a host called "none"; paraproxy means none
        # (a documented departure, see paraproxy._jumpspec).
        comment = ""
    return f"    {keyword}{sep}{value}{comment}"


_CRITERION = st.sampled_from(
    ["host", "Host", "originalhost", "user", "localuser", "HOST="]
).flatmap(
    lambda name: st.tuples(
        st.just(name),
        st.sampled_from(["alpha", "*.internal", "web?,!web1", "ALPHA", "bob", "root", "*",
                         "!x", "real*", "alpha.example.com"]),
    )
)  # fmt: skip


@st.composite
def _match_line(draw: st.DrawFn) -> str:
    """A Match line: criteria (maybe negated, maybe key=value), or all/final/canonical."""
    # "!final" is left out: 9.2 made it ask for the second pass, 10.x does not.
    head = draw(st.sampled_from(["", "", "final ", "canonical ", "!canonical "]))
    if draw(st.integers(0, 6)) == 0:
        return "Match " + head + "all"
    parts = []
    for name, value in draw(st.lists(_CRITERION, min_size=1, max_size=3)):
        neg = "!" if draw(st.integers(0, 3)) == 0 else ""
        parts.append(f"{neg}{name}{value}" if name.endswith("=") else f"{neg}{name} {value}")
    if draw(st.integers(0, 5)) == 0:
        parts.append(draw(st.sampled_from(['exec "test %h = alpha"', "exec false", "!exec true"])))
    return "Match " + head + " ".join(parts)


def _block(draw: st.DrawFn) -> list[str]:
    """A Host or Match header followed by value lines."""
    if draw(st.integers(0, 4)) == 0:
        lines = [draw(_match_line())]
    else:
        patterns = draw(st.lists(_PATTERNS, min_size=1, max_size=3))
        lines = [draw(st.sampled_from(["Host", "host", "HOST"])) + " " + " ".join(patterns)]
    lines += [_value_line(draw) for _ in range(draw(st.integers(0, 4)))]
    if draw(st.integers(0, 5)) == 0:
        lines.append("# a comment line")
    return lines


@st.composite
def configs(draw: st.DrawFn) -> str:
    """A config of Host/Match blocks with value lines, sometimes an @INC@ include."""
    lines = [f"Port {draw(st.integers(1, 65535))}"] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 5))):
        lines += _block(draw)
        if draw(st.integers(0, 8)) == 0:
            lines.append("    Include @INC@")
    return "\n".join(lines) + "\n"


_OPTIONS = st.lists(
    st.sampled_from([
        ("Port", "2001"), ("User", "optuser"), ("ProxyJump", "optjump:22"),
        ("ProxyCommand", "nc opt %h"), ("ProxyJump", "none"), ("ProxyCommand", "none"),
        ("IdentityFile", "/opt/key_%h"), ("HostName", "opt-%h"), ("HostKeyAlias", "OptAlias"),
    ]),
    max_size=2,
).map(tuple)  # fmt: skip


@settings(
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=configs(), host=st.sampled_from(_NAMES), options=_OPTIONS,
       user=st.sampled_from([None, "bob"]), port=st.sampled_from([None, 2299]))  # fmt: skip
def test_generated_configs_match_ssh(
    corpus: Path,
    text: str,
    host: str,
    options: tuple[tuple[str, str], ...],
    user: str | None,
    port: int | None,
) -> None:
    """Hypothesis-generated configs resolve as ssh -G resolves them."""
    path = corpus / "generated.conf"
    included = corpus / "included.conf"
    included.write_text(
        "Host alpha web*\n  User from-include\n  Port 2424\nHost *\n  HostName %h.inc\n"
    )
    path.write_text(text.replace("@INC@", str(included)))
    home = Path(os.environ["HOME"])
    expected = ssh_g(path, host, user, port, home, options)
    assert ours(path, host, user, port, options) == expected, (text, options)


# -- every keyword, alone --------------------------------------------------------------

#: Keywords newer than the 9.2 oracle: paraproxy must accept them where 9.2 cannot.
NEWER_THAN_ORACLE = (
    "channeltimeout", "obscurekeystroketiming", "refuseconnection", "warnweakcrypto",
    "versionaddendum", "tag",
)  # fmt: skip


def test_every_keyword_accepted_or_refused_like_ssh(corpus: Path) -> None:
    """Each line of keyword_lines.txt alone: both accept it or both refuse it."""
    home = Path(os.environ["HOME"])
    path = corpus / "one-line.conf"
    mismatches = []
    for line in (CORPUS / "keyword_lines.txt").read_text().splitlines()[1:]:
        path.write_text(line + "\n")
        ok_ours = ours(path, "h", None, None) is not None
        if line.split()[0].lower() in NEWER_THAN_ORACLE:
            ok_ssh = not line.lower().endswith((" bogus", " extra"))
        else:
            ok_ssh = ssh_g(path, "h", None, None, home) is not None
        if ok_ours != ok_ssh:
            mismatches.append(f"{line!r}: ssh {'accepts' if ok_ssh else 'refuses'}")
    assert not mismatches, "\n".join(mismatches)
