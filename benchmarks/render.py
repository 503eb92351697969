"""Turn the results of one run (``latest.json``) into the markdown report."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from report import GIB, MB, Summary, fnum, frange, fx, linear_slope, ratio, table

MAX_HOPS = 4


class View:
    """Read-only helpers over one run's results."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.r = results
        self.secs: dict[str, Any] = results.get("sections", {})

    def samples(self, section: str, task: str) -> list[Any]:
        return list(self.secs.get(section, {}).get("samples", {}).get(task, []))

    def error(self, section: str, task: str) -> str | None:
        errors: dict[str, str] = self.secs.get(section, {}).get("errors", {})
        return errors.get(task)

    def summ(self, section: str, task: str, fn: Callable[[Any], float]) -> Summary | None:
        return Summary.of(fn(s) for s in self.samples(section, task))

    def connect(self, v: str) -> Summary | None:
        return self.summ("connect", v, lambda s: s["connect"] * 1e3)

    def whole(self, v: str) -> Summary | None:
        return self.summ("whole", v, lambda s: s["wall"] * 1e3)

    def mbps(self, v: str, d: str) -> Summary | None:
        return self.summ("throughput", f"{v}|{d}", lambda s: s["bytes"] / s["seconds"] / MB)

    def cpu_gib(self, v: str, d: str) -> Summary | None:
        return self.summ("throughput", f"{v}|{d}", lambda s: s["cpu_client"] / (s["bytes"] / GIB))

    def cipher(self, v: str) -> str:
        for d in ("down", "up"):
            for s in self.samples("throughput", f"{v}|{d}"):
                return str(s.get("cipher", ""))
        return ""

    def res(self, v: str) -> dict[str, Any] | None:
        got = self.samples("resources", v)
        return got[0] if got else None

    def hops(self, kind: str, n: int) -> Summary | None:
        key = "wall" if kind in ("ssh -J", "py:hook-chain") else "connect"
        return self.summ("hops", f"{kind}:{n}", lambda s: s[key] * 1e3)


def _why(view: View, section: str, task: str) -> str:
    err = view.error(section, task)
    if err:
        return f"not measured: {err.splitlines()[0][:160]}"
    if section not in view.secs:
        return f"not measured (section {section} not run)"
    return "not measured"


def _noise(verdict: str, a: Summary | None, b: Summary | None) -> str:
    """Flag a verdict whose two sides' min-max ranges overlap by a lot."""
    if a is None or b is None:
        return verdict
    lo, hi = max(a.lo, b.lo), min(a.hi, b.hi)
    if hi <= lo:
        return verdict
    ratio_med = abs(a.median / b.median - 1) if b.median else 1.0
    if ratio_med < 0.10:
        return verdict + " (within noise: ranges overlap)"
    return verdict


def _pct_over(value: float, limit: float) -> str:
    return f"missed by {100 * (value / limit - 1):.0f}%"


def goals(view: View) -> tuple[str, list[str]]:
    """The issue-6 goals table, and footnotes."""
    rows: list[list[str]] = []
    notes: list[str] = []

    def pick(candidates: list[str], fn: Callable[[str], Any]) -> tuple[str | None, Any]:
        for c in candidates:
            got = fn(c)
            if got is not None:
                return c, got
        return None, None

    # 1. ProxyCommand connect <= 1.05x direct
    direct = view.connect("direct")
    name, pc = pick(["hook-nc", "bridge"], view.connect)
    r = ratio(pc, direct)
    if r is None:
        rows.append(["ProxyCommand connect <= 1.05x direct paramiko", "-", "-",
                     _why(view, "connect", "hook-nc")])
    else:
        label = f"{name}: {pc.median:.1f} ms vs direct {direct.median:.1f} ms"  # type: ignore[union-attr]
        if name != "hook-nc":
            notes.append("Goal 1 uses the bridge passed as sock= (the hook variant is missing).")
        rows.append(["ProxyCommand connect <= 1.05x direct paramiko", label, fx(r),
                     _noise("met" if r <= 1.05 else _pct_over(r, 1.05), pc, direct)])

    # 2. ProxyCommand throughput >= 1.0x paramiko.ProxyCommand
    for d, word in (("down", "download"), ("up", "upload")):
        base = view.mbps("paramiko.ProxyCommand", d)
        name, got = pick(["hook-nc", "bridge"], partial(view.mbps, d=d))
        r = ratio(got, base)
        goal = f"ProxyCommand {word} >= 1.0x paramiko.ProxyCommand"
        if r is None:
            rows.append([goal, "-", "-", _why(view, "throughput", f"hook-nc|{d}")])
        else:
            rows.append([goal, f"{name}: {got.median:.0f} vs {base.median:.0f} MB/s",  # type: ignore[union-attr]
                         fx(r), _noise("met" if r >= 1.0 else f"missed by {100 * (1 - r):.0f}%",
                                       got, base)])

    # 3. 1 thread and 1 fd per connection
    d_res = view.res("direct")
    for v in ("bridge", "hook-nc"):
        b = view.res(v)
        goal = f"ProxyCommand ({v}): 1 thread and 1 fd per connection"
        if b is None or d_res is None:
            rows.append([goal, "-", "-", _why(view, "resources", v)])
            continue
        th = b["threads"] - d_res["threads"]
        fd = b["fds"] - d_res["fds"]
        kinds = ", ".join(f"{n:g} {k}" for k, n in b["fd_kinds"].items())
        rows.append([goal,
                     f"+{th:g} thread, +{fd:g} fd over direct (total {b['threads']:g} threads,"
                     f" {b['fds']:g} fds: {kinds})",
                     f"{th:+g} / {fd:+g}",
                     _over_budget(th, fd)])
    notes.append("Goal 3 counts what paraproxy adds to a direct paramiko connection "
                 "(direct paramiko: 1 Transport thread and 1 TCP socket per connection).")

    # 4. two-hop whole process <= 1.0x ssh -J
    ssh_j = view.whole("ssh -J")
    for v in ("py:hook-jump", "py:hook-sshhop"):
        got = view.whole(v)
        r = ratio(got, ssh_j)
        goal = f"two-hop process `exec true` ({v}) <= 1.0x ssh -J"
        if r is None:
            rows.append([goal, "-", "-", _why(view, "whole", v)])
        else:
            rows.append([goal, f"{got.median:.0f} vs {ssh_j.median:.0f} ms",  # type: ignore[union-attr]
                         fx(r), _noise("met" if r <= 1.0 else _pct_over(r, 1.0), got, ssh_j)])

    # 5. two-hop throughput >= 1.0x ssh -J
    for v in ("hook-jump", "hook-sshhop"):
        for d, word in (("down", "download"), ("up", "upload")):
            got, base = view.mbps(v, d), view.mbps("ssh -J", d)
            r = ratio(got, base)
            goal = f"two-hop {word} ({v}) >= 1.0x ssh -J"
            if r is None:
                rows.append([goal, "-", "-", _why(view, "throughput", f"{v}|{d}")])
            else:
                rows.append([goal, f"{got.median:.0f} vs {base.median:.0f} MB/s",  # type: ignore[union-attr]
                             fx(r), _noise("met" if r >= 1.0 else f"missed by {100 * (1 - r):.0f}%",
                                       got, base)])

    # 6. <= 40 ms per extra hop
    pts = [(n, s.median) for n in range(1, MAX_HOPS + 1) if (s := view.hops("hook-chain", n))]
    slope = linear_slope(pts) if len(pts) == MAX_HOPS else None
    if slope is None:
        rows.append(["<= 40 ms per extra hop (paraproxy connect, 1-4 hops)", "-", "-",
                     _why(view, "hops", "hook-chain:1")])
    else:
        rows.append(["<= 40 ms per extra hop (paraproxy connect, 1-4 hops)",
                     f"{slope:.1f} ms/hop (least squares)", f"{slope:.1f} ms",
                     "met" if slope <= 40 else f"missed by {slope - 40:.1f} ms"])

    # 7. import paraproxy adds <= 5 ms
    it, wall, cpu = import_added(view)
    goal = "import paraproxy adds <= 5 ms to import paramiko"
    if it is None:
        rows.append([goal, "-", "-", _why(view, "import", "importtime")])
    else:
        text = f"-X importtime {it.median:.2f} ms"
        if wall is not None and cpu is not None:
            text += (f"; fresh interpreters, paired: wall {wall.median:+.1f} ms, "
                     f"CPU {cpu.median:+.1f} ms")
        rows.append([goal, text, f"{it.median:.2f} ms",
                     "met" if it.median <= 5 else f"missed by {it.median - 5:.1f} ms"])
        notes.append("Goal 7 is judged on `-X importtime` (paraproxy's cumulative import time "
                     "once paramiko is loaded, a direct measurement); the fresh-interpreter "
                     "differences are a cross-check and swing by several ms with machine load.")
    return table(["goal", "measured", "ratio / value", "verdict"], rows), notes


def _over_budget(threads: float, fds: float) -> str:
    """``met``, or what is over the budget of one thread and one fd."""
    over = []
    if threads > 1:
        over.append(f"{threads - 1:g} thread{'s' if threads - 1 != 1 else ''}")
    if fds > 1:
        over.append(f"{fds - 1:g} fd{'s' if fds - 1 != 1 else ''}")
    return "met" if not over else "missed by " + " and ".join(over)


def paired(view: View, section: str, a: str, b: str, key: str) -> Summary | None:
    """Per-repetition differences b - a (ms): the pairs ran back to back."""
    xs, ys = view.samples(section, a), view.samples(section, b)
    n = min(len(xs), len(ys))
    if n == 0:
        return None
    return Summary.of((ys[i][key] - xs[i][key]) * 1e3 for i in range(n))


def import_added(view: View) -> tuple[Summary | None, Summary | None, Summary | None]:
    """(-X importtime, paired wall difference, paired CPU difference), in ms."""
    it = view.summ("import", "importtime", lambda s: s["us"] / 1e3)
    wall = paired(view, "import", "paramiko", "paramiko+paraproxy", "wall")
    cpu = paired(view, "import", "paramiko", "paramiko+paraproxy", "cpu")
    return it, wall, cpu


def _connect_table(view: View) -> str:
    direct = view.connect("direct")
    pc = view.connect("paramiko.ProxyCommand")
    rows = []
    for v in view.secs.get("connect", {}).get("samples", {}):
        s = view.connect(v)
        if s is None:
            rows.append([v, "-", "-", "0", "-", "-", "-", "-"])
            continue
        close = view.summ("connect", v, lambda x: x["close"] * 1e3)
        slow = sum(1 for x in view.samples("connect", v) if x["connect"] * 1e3 > s.lo + 30)
        rows.append([v, fnum(s.median), frange(s), str(s.n), fx(ratio(s, direct)),
                     fx(ratio(s, pc)), f"{slow}/{s.n}", fnum(close.median if close else None)])
    return table(["variant", "median ms", "min-max", "n", "x direct", "x paramiko.ProxyCommand",
                  "> min+30 ms", "close ms"], rows)


def _whole_table(view: View) -> str:
    base = view.whole("ssh -J")
    direct = view.whole("ssh")
    rows = []
    for v in view.secs.get("whole", {}).get("samples", {}):
        s = view.whole(v)
        if s is None:
            rows.append([v, "-", "-", "0", "-", "-", "-"])
            continue
        cpu = view.summ("whole", v, lambda x: x["cpu"] * 1e3)
        rows.append([v, fnum(s.median, 0), frange(s, digits=0), str(s.n), fx(ratio(s, direct)),
                     fx(ratio(s, base)), fnum(cpu.median if cpu else None, 0)])
    return table(["program", "median ms", "min-max", "n", "x ssh (direct)", "x ssh -J",
                  "CPU ms"], rows)


def _throughput_table(view: View, d: str) -> str:
    tasks = [t for t in view.secs.get("throughput", {}).get("samples", {}) if t.endswith("|" + d)]
    direct = view.mbps("direct", d)
    pc = view.mbps("paramiko.ProxyCommand", d)
    sshj = view.mbps("ssh -J", d)
    rows = []
    for t in tasks:
        v = t.split("|")[0]
        s = view.mbps(v, d)
        if s is None:
            rows.append([v, "-", "-", "0", "-", "-", "-", "-", ""])
            continue
        cpu = view.cpu_gib(v, d)
        rows.append([v, fnum(s.median, 0), frange(s, digits=0), str(s.n), fx(ratio(s, direct)),
                     fx(ratio(s, pc)), fx(ratio(s, sshj)), fnum(cpu.median if cpu else None, 2),
                     view.cipher(v)])
    return table(["variant", "MB/s", "min-max", "n", "x direct", "x paramiko.ProxyCommand",
                  "x ssh -J", "client CPU s/GiB", "cipher/mac"], rows)


def _resources_table(view: View) -> str:
    rows = []
    for v in view.secs.get("resources", {}).get("samples", {}):
        r = view.res(v)
        if r is None:
            rows.append([v, "-", "-", "-", "-", _why(view, "resources", v)[:60]])
            continue
        kinds = ", ".join(f"{n:g} {k}" for k, n in r["fd_kinds"].items())
        left = "nothing"
        if r["left_threads"] or r["left_fds"] or r["left_procs"]:
            left = (f"{r['left_threads']} threads, {r['left_fds']} fds "
                    f"({', '.join(r['left_fd_kinds'])}), {r['left_procs']} procs")
        rows.append([v, f"{r['threads']:g}", f"{r['fds']:g}", kinds or "-", f"{r['procs']:g}",
                     left])
    return table(["variant", "threads/conn", "fds/conn", "fd kinds/conn", "child procs/conn",
                  "left after close (all K)"], rows)


def _hops_table(view: View) -> tuple[str, list[str]]:
    kinds = [("hook-chain", "paraproxy connect"), ("hand-chain", "hand-built paramiko connect"),
             ("ssh -J", "ssh -J process"), ("py:hook-chain", "python+paraproxy process")]
    rows = []
    for n in range(MAX_HOPS + 1):
        row = [str(n)]
        for kind, _ in kinds:
            s = view.hops(kind, n)
            row.append("-" if s is None else f"{s.median:.0f} ({s.lo:.0f}-{s.hi:.0f})")
        rows.append(row)
    slopes = ["ms per extra hop (1-4, least squares)"]
    steps = ["increments 1->2, 2->3, 3->4"]
    lines = []
    for kind, _ in kinds:
        pts = [(n, s.median) for n in range(1, MAX_HOPS + 1) if (s := view.hops(kind, n))]
        slope = linear_slope(pts) if len(pts) == MAX_HOPS else None
        slopes.append(fnum(slope))
        if len(pts) == MAX_HOPS:
            steps.append(" / ".join(f"{pts[i + 1][1] - pts[i][1]:.0f}" for i in range(3)))
        else:
            steps.append("-")
            err = view.error("hops", f"{kind}:1")
            if err:
                lines.append(f"- {kind}: {err.splitlines()[0][:200]}")
    rows.append(slopes)
    rows.append(steps)
    return table(["hops", *[label + " ms" for _, label in kinds]], rows), lines


def _probe_lines(view: View) -> list[str]:
    first = view.summ("hops", "probe:channel-open", lambda s: s["first"] * 1e3)
    second = view.summ("hops", "probe:channel-open", lambda s: s["second"] * 1e3)
    ign = view.summ("hops", "probe:channel-open+ignore", lambda s: s["first"] * 1e3)
    if first is None or second is None:
        return []
    line = (f"- probe: the first `direct-tcpip` channel opened on a freshly authenticated "
            f"hop (NODELAY socket) takes {first.median:.1f} ms ({frange(first)}), the second "
            f"{second.median:.1f} ms")
    if ign is not None:
        line += (f"; after an SSH_MSG_IGNORE sent right after auth (and 10 ms, not timed) "
                 f"the first takes {ign.median:.1f} ms ({frange(ign)})")
    return [line + "."]


def _reuse_table(view: View) -> str:
    rows = []
    for v in view.secs.get("reuse", {}).get("samples", {}):
        cold = view.summ("reuse", v, lambda s: s["cold"] * 1e3)
        warm = view.summ("reuse", v, lambda s: s["warm"] * 1e3)
        if cold is None or warm is None:
            rows.append([v, "-", "-", "-", "-", "-", _why(view, "reuse", v)[:80]])
            continue
        samples = view.samples("reuse", v)
        logins = sorted({s["hop_logins"] for s in samples})
        fds = Summary.of(s["fds"] for s in samples)
        ths = Summary.of(s["threads"] for s in samples)
        reused = "yes" if logins == [0] else ("no" if 0 not in logins else "sometimes")
        rows.append([v, f"{cold.median:.1f}", f"{warm.median:.1f} ({warm.lo:.1f}-{warm.hi:.1f})",
                     fx(ratio(warm, cold)), ",".join(map(str, logins)),
                     f"{fds.median:g} / {ths.median:g}" if fds and ths else "-", reused])
    return table(["variant", "first connect ms", "second connect ms (first still open)",
                  "x first", "hop logins by the second", "fds / threads added by the second",
                  "hop reused"], rows)


def _import_table(view: View) -> str:
    a = view.summ("import", "paramiko", lambda s: s["wall"] * 1e3)
    b = view.summ("import", "paramiko+paraproxy", lambda s: s["wall"] * 1e3)
    it, wall, cpu = import_added(view)
    rows = [
        ["python -c 'import paramiko'", fnum(a.median if a else None), frange(a),
         str(a.n if a else 0)],
        ["python -c 'import paramiko, paraproxy'", fnum(b.median if b else None), frange(b),
         str(b.n if b else 0)],
        ["paired difference, wall", fnum(wall.median if wall else None), frange(wall),
         str(wall.n if wall else 0)],
        ["paired difference, CPU (user+sys)", fnum(cpu.median if cpu else None), frange(cpu),
         str(cpu.n if cpu else 0)],
        ["-X importtime: paraproxy cumulative after paramiko", fnum(it.median if it else None, 2),
         frange(it, digits=2), str(it.n if it else 0)],
    ]
    c = view.summ("import", "paramiko+paraproxy (no pyc)", lambda s: s["wall"] * 1e3)
    if c is not None:
        rows.append(["same, PYTHONDONTWRITEBYTECODE=1 and no __pycache__ (dev checkout)",
                     fnum(c.median), frange(c), str(c.n)])
        nopyc = paired(view, "import", "paramiko", "paramiko+paraproxy (no pyc)", "wall")
        rows.append(["paired difference without bytecode cache, wall",
                     fnum(nopyc.median if nopyc else None), frange(nopyc),
                     str(nopyc.n if nopyc else 0)])
    return table(["", "median ms", "min-max", "n"], rows)


def _design_table(view: View) -> str:
    cols = ["bridge", "pump", "paramiko.ProxyCommand", "direct"]
    def cell(fn: Callable[[str], str]) -> list[str]:
        return [fn(c) for c in cols]
    def mb(v: str, d: str) -> str:
        s = view.mbps(v, d)
        return "-" if s is None else f"{s.median:.0f}"
    def cpu(v: str, d: str) -> str:
        s = view.cpu_gib(v, d)
        return "-" if s is None else f"{s.median:.2f}"
    def res(v: str, key: str) -> str:
        r = view.res(v)
        return "-" if r is None else f"{r[key]:g}"
    def kinds(v: str) -> str:
        r = view.res(v)
        return "-" if r is None else ", ".join(f"{n:g} {k}" for k, n in r["fd_kinds"].items())
    def conn(v: str) -> str:
        s = view.connect(v)
        return "-" if s is None else f"{s.median:.1f}"
    rows = [
        ["download MB/s", *cell(lambda v: mb(v, "down"))],
        ["upload MB/s", *cell(lambda v: mb(v, "up"))],
        ["client CPU s/GiB down (incl. nc)", *cell(lambda v: cpu(v, "down"))],
        ["client CPU s/GiB up (incl. nc)", *cell(lambda v: cpu(v, "up"))],
        ["threads per connection", *cell(lambda v: res(v, "threads"))],
        ["fds per connection", *cell(lambda v: res(v, "fds"))],
        ["fd kinds", *cell(kinds)],
        ["connect ms", *cell(conn)],
    ]
    return table(["", *cols], rows)


def _profile_lines(profiles: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for variant, p in profiles.items():
        rate = p.get("rate", 250)
        total = max(1, p.get("samples", 0))
        t = p.get("transfer", {})
        mbps = t["bytes"] / t["seconds"] / MB if t.get("seconds") else 0
        out.append(f"`{variant}`: {mbps:.0f} MB/s while sampled; {total} busy samples at "
                   f"{rate} Hz = {total / rate:.2f} busy thread-seconds, per thread:")
        out.append("")
        out.append(table(["thread", "busy s", "share"],
                         [[name, f"{n / rate:.2f}", f"{100 * n / total:.0f}%"]
                          for name, n in p.get("threads", [])[:6]]))
        out.append("")
        out.append(table(["top self frames", "share"],
                         [[f, f"{100 * n / total:.1f}%"]
                          for f, n in p.get("self_frames", [])[:12]]))
        out.append("")
        out.append(table(["self time by file", "share"],
                         [[f, f"{100 * n / total:.1f}%"] for f, n in p.get("self_files", [])[:8]]))
        out.append("")
    return out


def markdown(results: dict[str, Any]) -> str:
    """The whole report."""
    view = View(results)
    meta = results.get("meta", {})
    mode = results.get("mode", {})
    workers = results.get("workers", {})
    plain = workers.get("plain", {})
    hook = workers.get("hook", {})
    nbytes = view.secs.get("throughput", {}).get("nbytes", mode.get("nbytes", 0))
    out: list[str] = []
    out.append("# paraproxy benchmarks")
    out.append("")
    out.append(
        f"- run: {meta.get('started', '?')}, {mode.get('name', '?')} mode, "
        f"{meta.get('duration_s', 0):.0f} s"
    )
    out.append(
        f"- machine: {meta.get('nproc')} CPUs, {meta.get('cpu')}, Linux {meta.get('kernel')}"
    )
    out.append(
        f"- software: Python {meta.get('python')}, paramiko {plain.get('paramiko', '?')}, "
        f"{meta.get('openssh', '?')}, asyncssh {plain.get('asyncssh') or 'not installed'}, "
        f"paraproxy {plain.get('paraproxy', '?')} (git {meta.get('git', '?')})"
    )
    out.append(
        "- setup: client, proxies (nc, ssh) and five OpenSSH sshd servers all on 127.0.0.1 of "
        "this machine, sharing its CPUs; medians with min-max over n repetitions run "
        "round-robin (order rotated each repetition); ratios are of medians from this run."
    )
    loads = [meta.get("loadavg_start")] + [
        s.get("loadavg") for s in view.secs.values() if isinstance(s, dict)
    ]
    loads = [x for x in loads if x is not None]
    if loads:
        busy = loads[0] > 0.5
        out.append(
            f"- 1-min load average before the run and after each section: "
            f"{', '.join(f'{x:.1f}' for x in loads)} (the run itself keeps about 2 busy)"
            + ("; the machine was not idle at the start: absolute figures are noisier, the "
               "interleaving keeps the ratios fair" if busy else "")
        )
    if hook.get("hook_error"):
        out.append(f"- hook: {hook['hook_error']} (hook variants not measured)")
    out.append("")
    g, gnotes = goals(view)
    out.append("## Goals (issue 6, item 2)")
    out.append("")
    out.append(g)
    out.append("")
    out.extend(f"- {n}" for n in gnotes)
    out.append("")
    if "connect" in view.secs:
        out.append("## Connect latency: connect + auth (ms)")
        out.append("")
        out.append(_connect_table(view))
        out.append("")
        out.append(
            "- `direct` is paramiko as it is: its socket has no TCP_NODELAY, which costs a "
            "Nagle/delayed-ACK stall during the handshake; `direct+nodelay` passes a socket with "
            "TCP_NODELAY as `sock=`. Ratios use plain `direct` as the baseline."
        )
        out.append(
            "- `> min+30 ms` counts connects that took a delayed-ACK stall (~40 ms) more than "
            "the variant's fastest: through `nc` (whose TCP socket has no TCP_NODELAY) the "
            "distribution is bimodal and the median falls on either mode."
        )
        out.append("- close ms: `SSHClient.close()` plus closing the proxy "
                   "(nc reaped, chain closed).")
        out.append("")
    if "whole" in view.secs:
        out.append("## Whole process: start, connect, `exec true`, close (ms)")
        out.append("")
        out.append(_whole_table(view))
        out.append("")
        out.append("- `py:*` are `python -c` programs (`import paraproxy, paramiko; "
                   "c.connect(ALIAS); c.exec_command('true')`); `py:direct` and "
                   "`py:hand-chain` use paramiko alone. CPU includes every child process.")
        out.append("")
    if "throughput" in view.secs:
        size = nbytes / (1 << 20)
        out.append(f"## Throughput: {size:.0f} MiB streamed (MB/s = 10^6 bytes/s)")
        out.append("")
        out.append("Download (`exec_command('head -c N /dev/zero')`, first byte to EOF):")
        out.append("")
        out.append(_throughput_table(view, "down"))
        out.append("")
        out.append("Upload (`printf R; exec cat > /dev/null`: from the ready byte to the exit "
                   "status):")
        out.append("")
        out.append(_throughput_table(view, "up"))
        out.append("")
        out.append(
            "- client CPU: the measuring process (all its threads) plus its reaped children "
            "(nc, ssh) over the transfer; for `ssh`/`ssh -J` only the ssh processes, "
            "connection setup included. Each transfer uses a fresh connection. "
            "`paramiko.ProxyCommand.close()` does not wait for its `nc`; the benchmark reaps "
            "it after closing so that its CPU is counted."
        )
        out.append(
            "- ciphers are each client's defaults (paramiko and asyncssh negotiate different "
            "ones from OpenSSH's chacha20-poly1305), so cross-implementation ratios include "
            "the cipher."
        )
        out.append("")
    if "resources" in view.secs:
        out.append(f"## Threads, fds and processes per open connection (K={mode.get('k', 10)})")
        out.append("")
        out.append(_resources_table(view))
        out.append("")
        out.append("- deltas of `threading.active_count()`, `/proc/self/fd` and child processes "
                   "with K connections open, divided by K; the last column is what was still "
                   "there after all K were closed.")
        out.append("")
    if "hops" in view.secs:
        t, lines = _hops_table(view)
        out.append("## Cost per extra hop (ms, median and min-max)")
        out.append("")
        out.append(t)
        out.append("")
        out.append("- 0 hops is the target directly; N hops is `ProxyJump h1,...,hN` "
                   "(paraproxy, `ssh -J h1,...,hN`) or N paramiko hops built by hand.")
        out.extend(lines)
        out.extend(_probe_lines(view))
        out.append("")
    if "reuse" in view.secs:
        out.append("## Hop reuse: a second connection while the first one is open")
        out.append("")
        out.append(_reuse_table(view))
        out.append("")
        out.append("- `hand-reuse` is the reference: a second direct-tcpip channel on an "
                   "already authenticated paramiko hop. `hop logins` counts `Accepted publickey` "
                   "lines in the hop's sshd log during the second connect: 0 means the hop was "
                   "reused.")
        out.append("")
    if "import" in view.secs:
        out.append("## What `import paraproxy` adds to `import paramiko`")
        out.append("")
        out.append(_import_table(view))
        out.append("")
    if "throughput" in view.secs or "resources" in view.secs:
        out.append("## Bridge design: socketpair handed to the child vs a pump thread")
        out.append("")
        out.append(_design_table(view))
        out.append("")
        out.append("- `bridge` is paraproxy's ProxyCommandBridge (the child's stdin/stdout is "
                   "one end of a socketpair); `pump` (benchmarks/pump.py) gives the child pipes "
                   "and copies between them and the socketpair in one thread. Both run "
                   "`nc 127.0.0.1 PORT` and are passed to plain paramiko as `sock=`.")
        out.append("")
    profiles = results.get("profiles", {})
    if profiles:
        out.append("## Where the time goes: py-spy samples during a download")
        out.append("")
        out.extend(_profile_lines(profiles))
    errs = []
    for sec, data in view.secs.items():
        for task, err in data.get("errors", {}).items():
            errs.append(f"- {sec} / {task}: {err.splitlines()[0][:300]}")
    notes = results.get("notes", [])
    if errs or notes:
        out.append("## Not measured, errors and notes")
        out.append("")
        out.extend(errs)
        out.extend(f"- {n}" for n in notes)
        out.append("")
    return "\n".join(out).rstrip() + "\n"
