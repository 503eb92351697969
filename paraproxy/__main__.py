"""``python -m paraproxy`` (and the ``paraproxy`` script): see paraproxy at work.

Commands:

``demo``
    Start throwaway SSH servers on loopback, connect through a multi-hop chain
    with the hook, and print every step. Needs nothing but the package.
``config [-F FILE] [-l USER] [-p PORT] HOST``
    Print what paraproxy resolved for HOST, in the format of ``ssh -G``.
``plan [-F FILE] [-l USER] [-p PORT] HOST``
    Print the chain paraproxy would build for HOST, without connecting.
``run [-F FILE] [-l USER] [-p PORT] HOST -- COMMAND...``
    Run COMMAND on HOST like ``ssh HOST COMMAND``; exit with its status.
``check [-F FILE] [-l USER] [-p PORT] HOST``
    Connect hop by hop; print each hop's time, host key and auth method.

Exit status: 0 on success, 1 when the command failed (the error on stderr),
2 for a usage error; ``run`` exits with the remote status, or 255 when it
could not connect (as ``ssh`` does).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from paraproxy import _cli, _route, config, demo
from paraproxy.errors import ParaproxyError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="paraproxy",
        description="paramiko's SSHClient.connect, the way OpenSSH reaches hosts.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # `demo` parses its own options (main() hands them over before parsing here).
    commands.add_parser("demo", add_help=False,
                        help="connect through a chain of throwaway servers "
                             "(`demo --help` for its options)")
    for name, text in (("config", "print the resolved config of HOST like `ssh -G`"),
                       ("plan", "print the chain that would be built for HOST"),
                       ("run", "run a command on HOST like `ssh HOST COMMAND`"),
                       ("check", "connect hop by hop and report every hop")):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("-F", dest="config_file", metavar="FILE",
                         help="read only this config file (like ssh -F)")
        sub.add_argument("-l", dest="user", metavar="USER", help="remote user (like ssh -l)")
        sub.add_argument("-p", dest="port", metavar="PORT", type=int,
                         help="remote port (like ssh -p)")
        sub.add_argument("host", metavar="HOST")
        if name == "run":
            sub.add_argument("remote", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                             help="the command and its arguments")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        return demo.main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command in ("run", "check"):
        return _connecting(args)
    try:
        files = [args.config_file] if args.config_file else None
        hc = config.resolve(args.host, user=args.user, port=args.port, config_files=files)
        if args.command == "config":
            sys.stdout.write(hc.to_ssh_g())
        else:
            sys.stdout.write(_describe(_route.plan(hc, files)))
    except (ParaproxyError, ValueError) as exc:
        print(f"paraproxy: {exc}", file=sys.stderr)
        return 1
    return 0


def _connecting(args: argparse.Namespace) -> int:
    """``run`` and ``check``: the commands that connect."""
    target = _cli.Target(args.host, args.user, args.port, args.config_file)
    if args.command == "check":
        return _cli.check(target)
    remote = args.remote[1:] if args.remote[:1] == ["--"] else args.remote
    if not remote:
        print("paraproxy run: no command given (run HOST -- COMMAND...)", file=sys.stderr)
        return 2
    return _cli.run(target, remote)


def _describe(route: _route.Route) -> str:
    """The chain as the original paraproxy README drew it (CONNECT, SSHAUTH, EXEC)."""
    lines = [f"# {route.describe()}"]
    lines.extend(f"# {note}" for note in route.notes)
    indent = ""
    for hop in route.hops:
        lines.append(f"{indent}{hop.via.describe()}{_decided_by(hop)}")
        if isinstance(hop.via, (_route.Exec, _route.Forward)):
            indent += "    "
        c = hop.config
        lines.append(f"{indent}SSHAUTH {c.user}@{c.host} ({c.hostname}:{c.port})")
    return "\n".join(lines) + "\n"


def _decided_by(hop: _route.Hop) -> str:
    """``    # ~/.ssh/config line 4``: the line that decided how this hop is reached."""
    if hop.origin is None:
        return ""
    path, line = hop.origin
    return f"    # {path} line {line}"


if __name__ == "__main__":
    sys.exit(main())
