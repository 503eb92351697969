#!/usr/bin/env python3
"""paraproxy benchmarks: one command, its own sshd servers, one interleaved run.

Usage (from the repository root, with the dev venv)::

    .venv/bin/python benchmarks/run.py                 # full run, ~6-8 min on 2 cores
    .venv/bin/python benchmarks/run.py --quick         # 32 MiB, fewer repetitions, ~1.5 min
    .venv/bin/python benchmarks/run.py --only connect throughput
    .venv/bin/python benchmarks/run.py --out /tmp/bench --update-docs
    .venv/bin/python benchmarks/run.py --profile hook-jump   # py-spy during a download
    .venv/bin/python benchmarks/run.py --render benchmarks/results/latest.json

It starts five throwaway OpenSSH servers on 127.0.0.1 high ports (a target and
four hops, see ``servers.py``), runs every variant of every section
round-robin (the order rotates each repetition, so drift hits all variants
alike), prints a markdown report, and writes ``latest.json`` and ``latest.md``
to ``--out`` (default ``benchmarks/results/``, git-ignored). ``--update-docs``
also copies the report into ``docs/benchmarks.rst``. The servers and every
process started are stopped at the end, whatever happens.

Sections (``--only``): ``connect`` (connect+auth latency), ``whole`` (a whole
process that connects and runs ``true``), ``throughput`` (MB/s and client CPU
per GiB, down and up), ``resources`` (threads, fds and processes per open
connection), ``hops`` (cost per extra hop, 0-4 hops), ``reuse`` (a second
connection while one through the same hop is open), ``import`` (what
``import paraproxy`` adds to ``import paramiko``).

Variants that need paraproxy's hook run in a separate worker process; if the
hook is not there or fails, they are reported as errors and the rest goes on.
``asyncssh`` is an optional outside reference: skipped with a note if it is
not importable. A full run also samples the ``hook-jump`` and ``direct``
downloads with py-spy when it is installed (``--profile`` chooses others, or
none). Nothing here asserts timings: benchmarks are not tests. The method and
the latest report with its analysis are in ``docs/benchmarks.rst``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import profiling  # noqa: E402
import render  # noqa: E402
import servers  # noqa: E402
from report import update_docs  # noqa: E402
from servers import SSH, TestbedInfo  # noqa: E402

REPO = HERE.parent
SECTIONS = ("connect", "whole", "throughput", "resources", "hops", "reuse", "import")
MIB = 1 << 20


@dataclass
class Mode:
    """How much of everything to do."""

    name: str
    connect_reps: int
    whole_reps: int
    transfer_reps: int
    nbytes: int
    k: int
    hop_reps: int
    reuse_reps: int
    import_reps: int


FULL = Mode("full", connect_reps=20, whole_reps=10, transfer_reps=4, nbytes=256 * MIB, k=10,
            hop_reps=8, reuse_reps=8, import_reps=20)
QUICK = Mode("quick", connect_reps=5, whole_reps=3, transfer_reps=1, nbytes=32 * MIB, k=10,
             hop_reps=2, reuse_reps=3, import_reps=6)

PLAIN_VARIANTS = [
    "direct", "direct+nodelay", "paramiko.ProxyCommand", "bridge", "pump",
    "hand-chain", "hand-chain+nodelay", "hand-chain+buffered", "hand-chain+pair",
    "direct+gcm", "hand-chain+gcm",
]
ASYNCSSH_VARIANTS = ["asyncssh", "asyncssh-tunnel"]
HOOK_VARIANTS = ["hook-direct", "hook-nc", "hook-jump", "hook-sshhop"]
SSH_VARIANTS = ["ssh", "ssh -J"]


class BenchError(Exception):
    """A variant could not be measured (the run goes on)."""


# -- workers -----------------------------------------------------------------------------


class WorkerHandle:
    """A worker process (``worker.py``), restarted if it dies or hangs."""

    def __init__(self, kind: str, info_path: str, env: dict[str, str], log: Path) -> None:
        self.kind = kind
        self.info_path = info_path
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[str] | None = None

    def _spawn(self) -> subprocess.Popen[str]:
        logf = open(self.log, "a")  # noqa: SIM115 - the child owns it
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "worker.py"), self.info_path, self.kind],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logf,
                env=self.env,
                text=True,
                cwd=str(HERE),
                start_new_session=True,
            )
        finally:
            logf.close()
        return self.proc

    def call(self, op: str, timeout: float = 120.0, **req: Any) -> Any:
        """Send one request; return its value or raise :class:`BenchError`."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            proc = self._spawn()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps({"op": op, **req}) + "\n")
            proc.stdin.flush()
        except OSError as exc:
            self.kill()
            raise BenchError(f"{self.kind} worker is gone: {exc}") from None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                self.kill()
                raise BenchError(f"timed out after {timeout:.0f} s (worker killed; log {self.log})")
        line = proc.stdout.readline()
        if not line:
            self.kill()
            raise BenchError(f"{self.kind} worker died (see {self.log})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise BenchError(reply["error"])
        return reply["value"]

    def kill(self) -> None:
        """Kill the worker's process group (it and any nc/ssh it started)."""
        proc = self.proc
        self.proc = None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(5)
        for f in (proc.stdin, proc.stdout):
            with contextlib.suppress(Exception):
                if f is not None:
                    f.close()

    def stop(self) -> None:
        """Ask the worker to quit; kill what is left."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.write('{"op": "quit"}\n')
                proc.stdin.flush()
                proc.wait(5)
        self.kill()


# -- whole-process programs ----------------------------------------------------------------

PY_HOOK = (
    "import paraproxy, paramiko\n"
    "c = paramiko.SSHClient(); c.load_system_host_keys(); c.connect({alias!r})\n"
    "_, o, _ = c.exec_command('true'); s = o.channel.recv_exit_status(); c.close()\n"
    "raise SystemExit(s)\n"
)

PY_DIRECT = (
    "import paramiko\n"
    "c = paramiko.SSHClient(); c.load_system_host_keys({kh!r})\n"
    "c.connect('127.0.0.1', {port}, username={user!r}, key_filename={key!r},"
    " look_for_keys=False, allow_agent=False)\n"
    "_, o, _ = c.exec_command('true'); s = o.channel.recv_exit_status(); c.close()\n"
    "raise SystemExit(s)\n"
)

PY_HAND = (
    "import paramiko\n"
    "kw = dict(username={user!r}, key_filename={key!r}, look_for_keys=False, allow_agent=False)\n"
    "h = paramiko.SSHClient(); h.load_system_host_keys({kh!r})\n"
    "h.connect('127.0.0.1', {hop}, **kw)\n"
    "ch = h.get_transport().open_channel('direct-tcpip', ('127.0.0.1', {port}), ('127.0.0.1', 0))\n"
    "c = paramiko.SSHClient(); c.load_system_host_keys({kh!r})\n"
    "c.connect('127.0.0.1', {port}, sock=ch, **kw)\n"
    "_, o, _ = c.exec_command('true'); s = o.channel.recv_exit_status(); c.close(); h.close()\n"
    "raise SystemExit(s)\n"
)


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_process(argv: list[str], env: dict[str, str], timeout: float = 60.0) -> dict[str, float]:
    """Run a whole process; wall time and its CPU (user+sys, children included)."""
    c0 = children_cpu()
    t0 = time.perf_counter()
    try:
        r = subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{argv[:3]}... timed out after {timeout:.0f} s") from None
    wall = time.perf_counter() - t0
    cpu = children_cpu() - c0
    if r.returncode != 0:
        tail = r.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise BenchError(f"exit status {r.returncode}: {' / '.join(tail)}"[:1500])
    return {"wall": wall, "cpu": cpu}


# -- the run ------------------------------------------------------------------------------


class Bench:
    """One benchmark run: testbed, workers, sections, results."""

    def __init__(
        self, mode: Mode, sections: list[str], out: Path, profile: Sequence[str] = ()
    ) -> None:
        self.mode = mode
        self.sections = sections
        self.profile = list(profile)
        self.out = out
        self.results: dict[str, Any] = {"sections": {}, "notes": []}
        self.tb: TestbedInfo | None = None
        self.plain: WorkerHandle | None = None
        self.hook: WorkerHandle | None = None
        self.asyncssh_ok = False

    # -- plumbing ----------------------------------------------------------------

    def note(self, text: str) -> None:
        print(f"  note: {text}", flush=True)
        self.results["notes"].append(text)

    def section(self, name: str) -> dict[str, Any]:
        sections: dict[str, dict[str, Any]] = self.results["sections"]
        return sections.setdefault(name, {"samples": {}, "errors": {}})

    def round_robin(
        self, name: str, tasks: Sequence[tuple[str, Callable[[], Any]]], reps: int, warmup: int = 1
    ) -> None:
        """Run every task once per repetition, rotating the order; keep errors per task."""
        sec = self.section(name)
        samples: dict[str, list[Any]] = sec["samples"]
        errors: dict[str, str] = sec["errors"]
        for task, _ in tasks:
            samples.setdefault(task, [])
        t_start = time.monotonic()
        for rep in range(-warmup, reps):
            shift = rep % len(tasks) if tasks else 0
            for task, fn in [*tasks[shift:], *tasks[:shift]]:
                if task in errors:
                    continue
                try:
                    value = fn()
                except BenchError as exc:
                    errors[task] = str(exc)
                    print(f"  ! {name}/{task}: {exc}", flush=True)
                    continue
                if rep >= 0:
                    samples[task].append(value)
            label = "warm-up" if rep < 0 else f"rep {rep + 1}/{reps}"
            print(f"  {name}: {label} done ({time.monotonic() - t_start:.0f} s)", flush=True)

    def worker_for(self, variant: str) -> WorkerHandle:
        assert self.plain is not None and self.hook is not None
        return self.hook if variant.startswith("hook") else self.plain

    def inproc_variants(self) -> list[str]:
        out = list(PLAIN_VARIANTS)
        if self.asyncssh_ok:
            out += ASYNCSSH_VARIANTS
        return out + HOOK_VARIANTS

    # -- setup / teardown -----------------------------------------------------------

    def setup(self) -> None:
        print("starting sshd servers ...", flush=True)
        tb = servers.Testbed()
        self._testbed = tb
        self.tb = tb.start()
        info_path = os.path.join(self.tb.root, "testbed.json")
        self.tb.dump(info_path)
        print(f"  {len(self.tb.ports)} servers: "
              + ", ".join(f"{n}:{p}" for n, p in self.tb.ports.items()), flush=True)
        self.plain = WorkerHandle(
            "plain", info_path, self.tb.plain_env(), self.out / "worker-plain.log"
        )
        self.hook = WorkerHandle(
            "hook", info_path, self.tb.hook_env(), self.out / "worker-hook.log"
        )
        for log in (self.plain.log, self.hook.log):
            log.write_text("")
        plain_info = self.plain.call("info")
        hook_info = self.hook.call("info")
        self.results["workers"] = {"plain": plain_info, "hook": hook_info}
        if hook_info.get("hook_error"):
            self.note(f"hook variants cannot run: {hook_info['hook_error']}")
        if plain_info.get("asyncssh"):
            self.asyncssh_ok = True
        else:
            self.note("asyncssh is not importable: its variants are skipped "
                      "(pip install asyncssh into the venv to measure it)")

    def teardown(self) -> None:
        for w in (self.plain, self.hook):
            if w is not None:
                w.stop()
        tb = getattr(self, "_testbed", None)
        if tb is not None:
            tb.stop()

    # -- sections --------------------------------------------------------------------

    def run_connect(self) -> None:
        tasks = []
        for v in self.inproc_variants():
            w = self.worker_for(v)
            tasks.append((v, partial(w.call, "connect", timeout=60, variant=v)))
        self.round_robin("connect", tasks, self.mode.connect_reps)

    def whole_programs(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        tb = self.tb
        assert tb is not None
        py = sys.executable
        fmt = {"kh": tb.known_hosts, "port": tb.ports["target"], "hop": tb.ports["h1"],
               "user": tb.user, "key": tb.key}
        plain, hook = tb.plain_env(), tb.hook_env()
        return {
            "ssh": ([SSH, "-F", tb.ssh_config, "target", "true"], plain),
            "ssh -J": ([SSH, "-F", tb.ssh_config, "-J", "hop", "target", "true"], plain),
            "py:direct": ([py, "-c", PY_DIRECT.format(**fmt)], plain),
            "py:hand-chain": ([py, "-c", PY_HAND.format(**fmt)], plain),
            "py:hook-nc": ([py, "-c", PY_HOOK.format(alias="pc")], hook),
            "py:hook-jump": ([py, "-c", PY_HOOK.format(alias="tj")], hook),
            "py:hook-sshhop": ([py, "-c", PY_HOOK.format(alias="ts")], hook),
        }

    def run_whole(self) -> None:
        tasks = [
            (name, partial(run_process, argv, env))
            for name, (argv, env) in self.whole_programs().items()
        ]
        self.round_robin("whole", tasks, self.mode.whole_reps)

    def run_throughput(self) -> None:
        variants = list(PLAIN_VARIANTS)
        if self.asyncssh_ok:
            variants += ASYNCSSH_VARIANTS
        variants += [*SSH_VARIANTS, "hook-nc", "hook-jump", "hook-sshhop"]
        n = self.mode.nbytes
        timeout = 60 + n / (2 * 1e6)
        tasks = []
        for v in variants:
            w = self.worker_for(v)
            for d in ("down", "up"):
                tasks.append((
                    f"{v}|{d}",
                    partial(w.call, "transfer", timeout=timeout, variant=v, direction=d,
                            nbytes=n),
                ))
        self.section("throughput")["nbytes"] = n
        self.round_robin("throughput", tasks, self.mode.transfer_reps, warmup=0)

    def run_resources(self) -> None:
        k = self.mode.k
        tasks = []
        for v in self.inproc_variants():
            w = self.worker_for(v)
            tasks.append((v, partial(w.call, "resources", timeout=120, variant=v, k=k)))
        self.round_robin("resources", tasks, 1, warmup=0)

    def run_hops(self) -> None:
        tb = self.tb
        assert tb is not None and self.plain is not None and self.hook is not None
        tasks: list[tuple[str, Callable[[], Any]]] = []
        hook_env = tb.hook_env()
        for n in range(servers.MAX_HOPS + 1):
            tasks.append((f"hook-chain:{n}", partial(
                self.hook.call, "connect", timeout=60, variant=f"hook-chain:{n}")))
            tasks.append((f"hand-chain:{n}", partial(
                self.plain.call, "connect", timeout=60, variant=f"hand-chain:{n}")))
            jumps = ["-J", ",".join(f"h{i}" for i in range(1, n + 1))] if n else []
            argv = [SSH, "-F", tb.ssh_config, *jumps, "target", "true"]
            tasks.append((f"ssh -J:{n}", partial(run_process, argv, tb.plain_env())))
            code = PY_HOOK.format(alias=f"c{n}")
            tasks.append((f"py:hook-chain:{n}",
                          partial(run_process, [sys.executable, "-c", code], hook_env)))
        tasks.append(("probe:channel-open", partial(
            self.plain.call, "channel_probe", timeout=60, ignore=False)))
        tasks.append(("probe:channel-open+ignore", partial(
            self.plain.call, "channel_probe", timeout=60, ignore=True)))
        self.round_robin("hops", tasks, self.mode.hop_reps)

    def run_reuse(self) -> None:
        assert self.plain is not None and self.hook is not None
        tasks: list[tuple[str, Callable[[], Any]]] = [
            ("hand-reuse", partial(self.plain.call, "reuse", timeout=60, variant="hand-reuse")),
            ("hook-jump", partial(self.hook.call, "reuse", timeout=60, variant="hook-jump")),
            ("hook-sshhop", partial(self.hook.call, "reuse", timeout=60, variant="hook-sshhop")),
        ]
        self.round_robin("reuse", tasks, self.mode.reuse_reps)

    def run_import(self) -> None:
        tb = self.tb
        assert tb is not None
        env = tb.hook_env()
        py = sys.executable
        progs = {
            "paramiko": [py, "-c", "import paramiko"],
            "paramiko+paraproxy": [py, "-c", "import paramiko, paraproxy"],
        }
        tasks: list[tuple[str, Callable[[], Any]]] = [
            (name, partial(run_process, argv, env)) for name, argv in progs.items()
        ]
        tasks.append(("importtime", partial(importtime, py, env)))
        # As in a dev shell with PYTHONDONTWRITEBYTECODE=1: paraproxy (an editable
        # install without __pycache__) is compiled at every start; paramiko's .pyc
        # files from pip are still used.
        nopyc = tb.clean_env_nopyc()
        tasks.append(("paramiko+paraproxy (no pyc)",
                      partial(run_process, progs["paramiko+paraproxy"], nopyc)))
        self.round_robin("import", tasks, self.mode.import_reps)

    def run_profile(self, variant: str) -> None:
        """Sample the worker with py-spy while it downloads through ``variant``."""
        exe = profiling.py_spy()
        if exe is None:
            raise BenchError("py-spy not found (pip install py-spy)")
        if variant.startswith("ssh"):
            raise BenchError("OpenSSH variants are not Python; nothing to sample")
        w = self.worker_for(variant)
        pid = w.call("info")["pid"]
        slug = re.sub(r"[^A-Za-z0-9]+", "_", variant)
        raw = self.out / f"profile-{slug}.raw"
        raw.unlink(missing_ok=True)
        n = self.mode.nbytes
        spy = subprocess.Popen(profiling.record_argv(exe, pid, raw),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            if spy.poll() is not None:
                err = spy.stderr.read().decode(errors="replace") if spy.stderr else ""
                raise BenchError(f"py-spy exited: {err.strip()[-300:]}")
            value = w.call("transfer", timeout=60 + n / 1e6, variant=variant,
                           direction="down", nbytes=n)
        finally:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)
            try:
                spy.wait(60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            if spy.stderr:
                spy.stderr.close()
        if not raw.exists():
            raise BenchError("py-spy wrote no output")
        summary = profiling.summarise(raw)
        summary["transfer"] = value
        self.results.setdefault("profiles", {})[variant] = summary

    # -- everything ----------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        self.results["meta"] = machine_info()
        self.results["mode"] = asdict(self.mode)
        self.results["meta"]["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.results["meta"]["loadavg_start"] = os.getloadavg()[0]
        try:
            self.setup()
            for name in self.sections:
                print(f"== {name}", flush=True)
                t = time.monotonic()
                getattr(self, f"run_{name}")()
                self.section(name)["seconds"] = time.monotonic() - t
                self.section(name)["loadavg"] = os.getloadavg()[0]
            for variant in self.profile:
                print(f"== profile {variant}", flush=True)
                try:
                    self.run_profile(variant)
                except BenchError as exc:
                    self.note(f"profile of {variant} failed: {exc}")
        except KeyboardInterrupt:
            self.note("interrupted: the report holds what was measured so far")
        finally:
            self.teardown()
        self.results["meta"]["duration_s"] = time.monotonic() - t0
        results: dict[str, Any] = self.results
        return results


def importtime(py: str, env: dict[str, str]) -> dict[str, float]:
    """``-X importtime``: microseconds paraproxy's import takes once paramiko is loaded."""
    r = subprocess.run(
        [py, "-X", "importtime", "-c", "import paramiko; import paraproxy"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    if r.returncode != 0:
        raise BenchError(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed")
    cumulative = None
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)", line)
        if m and m.group(4) == "paraproxy" and len(m.group(3)) == 1:
            cumulative = float(m.group(2))
    if cumulative is None:
        raise BenchError("no paraproxy line in -X importtime output")
    return {"us": cumulative}


def machine_info() -> dict[str, Any]:
    """Where and with what this ran."""
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ssh_v = subprocess.run([SSH, "-V"], capture_output=True, text=True, check=False)
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "paraproxy"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openssh": (ssh_v.stderr or ssh_v.stdout).strip(),
        "git": git + (" (paraproxy/ has uncommitted changes)" if dirty else ""),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, 32 MiB transfers")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, metavar="NAME",
                    help=f"run only these sections: {', '.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=HERE / "results",
                    help="directory for latest.json / latest.md (default benchmarks/results)")
    ap.add_argument("--update-docs", action="store_true",
                    help="copy the report into docs/benchmarks.rst")
    ap.add_argument("--profile", nargs="*", metavar="VARIANT",
                    help="sample these in-process variants with py-spy during a download "
                         "(default in a full run: hook-jump direct; give none to skip)")
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="only re-render the report of an earlier run")
    args = ap.parse_args(argv)

    if args.render:
        results = json.loads(args.render.read_text())
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        mode = QUICK if args.quick else FULL
        sections = [s for s in SECTIONS if not args.only or s in args.only]
        if args.profile is not None:
            profile = args.profile
        else:
            profile = [] if args.quick or args.only else ["hook-jump", "direct"]
        results = Bench(mode, sections, args.out, profile).run()
        (args.out / "latest.json").write_text(json.dumps(results, indent=1))
    md = render.markdown(results)
    print()
    print(md)
    if not args.render:
        (args.out / "latest.md").write_text(md + "\n")
        print(f"\nwrote {args.out / 'latest.json'} and {args.out / 'latest.md'}")
    if args.update_docs:
        if update_docs(REPO / "docs" / "benchmarks.rst", md):
            print("updated docs/benchmarks.rst")
        else:
            print("docs/benchmarks.rst has no report markers; not updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
