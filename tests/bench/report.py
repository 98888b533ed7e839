#!/usr/bin/env python3
"""report.py: BENCHMARKS.md and the charts' data from one benchmark run.

    report.py machine [--build-type TYPE]
        prints one JSON line describing this machine (CPU, cores, memory,
        kernel, load, date, package versions, the commit): run.sh writes it
        first into the run's results.
    report.py render RESULTS.jsonl --out BENCHMARKS.md --data DIR [--charts REL]
        reads the JSON lines of one run (tests/bench/README.md lists their
        kinds and fields), writes the Markdown report (every figure, each
        target of DESIGN §8 with the measured value and pass/fail, the
        ratios against the floor and the baselines of the same run) and the
        gnuplot data files of plot/*.gp into DIR (connections.dat for
        throughput.gp and latency.gp, size.dat for size.gp, each only when
        its chart has something to show). REL is the charts' directory as
        the report links it (default docs/bench).

A missing figure is reported as not measured, never guessed; a target
whose figures are missing is "n/a", not "pass".
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

HEADLINE_SIZE = 1_000_000
CONNECTIONS = (8, 64)
PROTOCOLS = ("policy", "socketmap")
PACKAGES = ("postfix", "postfix-sqlite", "libsqlite3-0", "sqlite3", "libmilter1.0.1", "postfwd", "g++",
            "gnuplot-nox")


# ---------------------------------------------------------------- machine

def read_first(path, prefix):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def package_versions():
    versions = {}
    for package in PACKAGES:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                             capture_output=True, text=True)
        versions[package] = out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None
    return versions


def git_commit(root):
    head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine(args):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    mem_kb = read_first("/proc/meminfo", "MemTotal")
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    info = {
        "kind": "machine",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": read_first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "nproc": len(os.sched_getaffinity(0)),
        "memory_bytes": int(mem_kb.split()[0]) * 1024 if mem_kb else None,
        "kernel": platform.release(),
        "os": read_first_os_release(),
        "loadavg": " ".join(load),
        "packages": package_versions(),
        "commit": git_commit(root),
        "build_type": args.build_type,
    }
    print(json.dumps(info, separators=(",", ":")))


def read_first_os_release():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- results

class Results:
    """The figures of one run, indexed the way the report asks for them."""

    def __init__(self, lines):
        self.machine = {}
        self.lookups = []
        self.startups = []
        self.milters = []
        self.e2e = {}
        self.e2e_lookups = None
        self.datasets = []
        self.notes = []
        self.timings = []
        for line in lines:
            kind = line.get("kind")
            if kind == "machine":
                self.machine = line
            elif kind == "lookup":
                self.lookups.append(line)
            elif kind == "startup":
                self.startups.append(line)
            elif kind == "milter":
                self.milters.append(line)
            elif kind == "e2e":
                self.e2e[line["config"]] = line
            elif kind == "e2e_lookups":
                self.e2e_lookups = line
            elif kind == "dataset":
                self.datasets.append(line)
            elif kind == "timing":
                self.timings.append(line)
            elif kind == "note":
                self.notes.append(line.get("text", ""))

    def sizes(self):
        return sorted({f["mailboxes"] for f in self.lookups if f.get("server") in ("floor", "unitpolicy")})

    def headline(self):
        sizes = self.sizes()
        if HEADLINE_SIZE in sizes or not sizes:
            return HEADLINE_SIZE
        return max(sizes)

    def lookup(self, server, protocol=None, connections=None, mailboxes=None, map_name=None):
        """The figure matching every given criterion (the last one wins)."""
        found = None
        for f in self.lookups:
            if f.get("server") != server:
                continue
            if protocol is not None and f.get("protocol") != protocol:
                continue
            if connections is not None and f.get("connections") != connections:
                continue
            if mailboxes is not None and f.get("mailboxes") != mailboxes:
                continue
            if map_name is not None and f.get("map") != map_name:
                continue
            found = f
        return found

    def floor(self, connections, mailboxes, protocol="policy"):
        # The same size's and protocol's figure: bench_lookup alternates its
        # runs with unitpolicy's. (The floor does no lookup: another size's
        # figure will do for a run that has none.)
        return (self.lookup("floor", protocol, connections, mailboxes)
                or self.lookup("floor", protocol, connections))


def get(figure, key):
    return None if figure is None else figure.get(key)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# ---------------------------------------------------------------- formatting

def num(value, digits=0):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def ms(us):
    return "—" if us is None else f"{us / 1000:.2f} ms"


def mb(value):
    return "—" if value is None else f"{value / 1048576:,.1f} MB"


def pct(value):
    return "—" if value is None else f"{value * 100:.0f}%"


def times(value):
    return "—" if value is None else f"{value:,.1f}×"


def size_name(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def verdict(ok):
    return "n/a" if ok is None else ("**pass**" if ok else "**fail**")


# ---------------------------------------------------------------- targets (DESIGN §8)

def at_least(value, limit):
    return None if value is None else value >= limit


def below(value, limit):
    return None if value is None else value < limit


def target_floor_share(r, size):
    rows = []
    for protocol in PROTOCOLS:
        for c in CONNECTIONS:
            ours = get(r.lookup("unitpolicy", protocol, c, size), "rate")
            floor = get(r.floor(c, size, protocol), "rate")
            share = ratio(ours, floor)
            rows.append((f"{protocol}: ≥ 70% of the floor's rate, {c} connections",
                         f"{pct(share)} ({num(ours)} vs {num(floor)}/s)", verdict(at_least(share, 0.70))))
    return rows


def target_latency_cpu(r, size):
    rows = []
    for protocol in PROTOCOLS:
        p99 = get(r.lookup("unitpolicy", protocol, 8, size), "p99_us")
        rows.append((f"{protocol}: p99 under 1 ms at 8 connections", ms(p99), verdict(below(p99, 1000))))
    cpu = [get(r.lookup("unitpolicy", p, c, size), "cpu_us_per_lookup") for p in PROTOCOLS for c in CONNECTIONS]
    worst = max((v for v in cpu if v is not None), default=None)
    rows.append(("server CPU under 5 µs per lookup (worst of policy/socketmap at 8 and 64 connections)",
                 "—" if worst is None else f"{worst:.2f} µs", verdict(below(worst, 5))))
    return rows


def target_baselines(r, size):
    rows = []
    for c in CONNECTIONS:
        ours, theirs = r.lookup("unitpolicy", "policy", c, size), r.lookup("postfwd2", "policy", c)
        x = ratio(get(ours, "rate"), get(theirs, "rate"))
        rows.append((f"policy: ≥ 20× postfwd2, {c} connections", times(x), verdict(at_least(x, 20))))
    ours = [get(r.lookup("unitpolicy", p, c, size), "rate") for p in PROTOCOLS for c in CONNECTIONS]
    best = max((v for v in ours if v is not None), default=None)
    x = ratio(best, get(r.lookup("postmap-sqlite", map_name="recipient"), "rate"))
    rows.append(("above Postfix's in-process `sqlite:` lookup rate (best unitpolicy rate ÷ postmap's)",
                 times(x), verdict(None if x is None else x > 1)))
    return rows


def target_size(r):
    sizes = r.sizes()
    if len(sizes) < 2:
        return [("flat with size: within 10% from 10k to 10M mailboxes", "one size only", verdict(None))]
    worst = min((v for v in flatness(r).values() if v is not None), default=None)
    return [(f"flat with size: within 10% from {size_name(sizes[0])} to {size_name(sizes[-1])} mailboxes "
             "(worst min ÷ max rate)", pct(worst), verdict(at_least(worst, 0.90)))]


def target_startup_memory(r):
    largest = max(r.sizes(), default=None)
    where = f"{size_name(largest)} mailboxes" if largest else "largest directory"
    start = next((s for s in reversed(r.startups) if s.get("mailboxes") == largest), None)
    startup = get(start, "startup_ms")
    rss = [get(f, "rss_bytes") for f in r.lookups if f.get("server") == "unitpolicy" and f.get("mailboxes") == largest]
    peak = max((v for v in rss + [get(start, "rss_bytes")] if v is not None), default=None)
    return [(f"start-up under 100 ms ({where})", "—" if startup is None else f"{num(startup)} ms",
             verdict(below(startup, 100))),
            (f"resident memory under 50 MB ({where}, largest seen)", mb(peak), verdict(below(peak, 50 * 2**20)))]


def target_milter_e2e(r):
    milter = max((m.get("rate") for m in r.milters if m.get("rate") is not None), default=None)
    a, b, c = (get(r.e2e.get(k), "rate") for k in "abc")
    return [("milter: ≥ 2,000 messages/s", "—" if milter is None else f"{num(milter)} msg/s",
             verdict(at_least(milter, 2000))),
            ("end to end: unitpolicy ≥ 0.9× no checks (c/a)", num(ratio(c, a), 2),
             verdict(at_least(ratio(c, a), 0.9))),
            ("end to end: unitpolicy ≥ 1.2× Postfix `sqlite:` (c/b)", num(ratio(c, b), 2),
             verdict(at_least(ratio(c, b), 1.2)))]


def targets(r):
    """Rows (target, measured, verdict), in the order of DESIGN §8."""
    size = r.headline()
    return (target_floor_share(r, size) + target_latency_cpu(r, size) + target_baselines(r, size)
            + target_size(r) + target_startup_memory(r) + target_milter_e2e(r))


def flatness(r):
    """min/max of unitpolicy's rate over the sizes, per protocol and connection count."""
    out = {}
    for protocol in ("policy", "socketmap"):
        for c in CONNECTIONS:
            rates = [get(r.lookup("unitpolicy", protocol, c, n), "rate") for n in r.sizes()]
            rates = [v for v in rates if v]
            out[(protocol, c)] = min(rates) / max(rates) if len(rates) > 1 else None
    return out


# ---------------------------------------------------------------- sections

def section_machine(r):
    m = r.machine
    packages = m.get("packages") or {}
    rows = [
        ("date", m.get("date", "—")),
        ("CPU", m.get("cpu", "—")),
        ("cores (nproc)", m.get("nproc", "—")),
        ("memory", f"{m['memory_bytes'] / 2**30:.1f} GiB" if m.get("memory_bytes") else "—"),
        ("kernel", m.get("kernel", "—")),
        ("system", m.get("os") or "—"),
        ("load average at the start", m.get("loadavg", "—")),
        ("build type", m.get("build_type") or "—"),
        ("commit", m.get("commit") or "—"),
    ]
    rows += [(f"package `{p}`", v or "not installed") for p, v in packages.items()]
    return table(("", ""), rows)


def section_lookups(r):
    parts = []
    for size in r.sizes():
        rows = []
        for server, protocol in (("floor", "policy"), ("unitpolicy", "policy"), ("floor", "socketmap"),
                                 ("unitpolicy", "socketmap"), ("sqlite-naive", "policy")):
            for c in CONNECTIONS:
                f = r.lookup(server, protocol, c, size)
                if f is None:
                    continue
                share = ratio(get(f, "rate"), get(r.floor(c, size, protocol), "rate")) if server != "floor" else None
                rows.append((server, protocol, c, num(get(f, "rate")), pct(share) if share is not None else "",
                             ms(get(f, "p50_us")), ms(get(f, "p99_us")), num(get(f, "cpu_us_per_lookup"), 2),
                             mb(get(f, "rss_bytes")), num(get(f, "wrong"))))
        if rows:
            parts.append(f"**{size:,} mailboxes**\n\n" + table(
                ("server", "protocol", "connections", "lookups/s", "of floor", "p50", "p99", "CPU µs/lookup", "RSS",
                 "wrong"), rows))
    return "\n\n".join(parts) if parts else "_Not measured (bench_lookup was not built or did not run)._"


def section_baselines(r):
    rows = []

    def ours(f, connections):
        # unitpolicy on the baseline's own directory when measured, else the headline size
        return (r.lookup("unitpolicy", "policy", connections, f.get("mailboxes"))
                or r.lookup("unitpolicy", "policy", connections, r.headline()))

    for f in (x for x in r.lookups if x.get("server") == "postmap-sqlite"):
        rows.append((f"Postfix `postmap -q - sqlite:` ({f.get('map')})", "in-process batch", num(get(f, "rate")), "—",
                     num(get(f, "cpu_us_per_lookup"), 1), "—",
                     f"unitpolicy policy 8 conns: {times(ratio(get(ours(f, 8), 'rate'), get(f, 'rate')))}"))
    for c in CONNECTIONS:
        f = r.lookup("postfwd2", "policy", c)
        if f is None:
            continue
        memory = f"{f.get('processes', '—')} processes, RSS {mb(get(f, 'rss_bytes'))} (PSS {mb(get(f, 'pss_bytes'))})"
        rows.append(("postfwd2 (prefork, Perl hash)", f"{c} connections", num(get(f, "rate")), ms(get(f, "p99_us")),
                     num(get(f, "cpu_us_per_lookup"), 1), memory,
                     f"unitpolicy policy: {times(ratio(get(ours(f, c), 'rate'), get(f, 'rate')))}"))
    if not rows:
        return "_Not measured._"
    mailboxes = next((f.get("mailboxes") for f in r.lookups if f.get("server") in ("postmap-sqlite", "postfwd2")), None)
    head = f"On the directory of {mailboxes:,} mailboxes.\n\n" if mailboxes else ""
    header = ("baseline", "how", "lookups/s", "p99", "CPU µs/lookup", "memory", "unitpolicy ÷ baseline")
    return head + table(header, rows)


def section_size(r):
    sizes = r.sizes()
    if len(sizes) < 2:
        return "_One directory size only._"
    rows = []
    for protocol in ("policy", "socketmap"):
        for c in CONNECTIONS:
            rates = [get(r.lookup("unitpolicy", protocol, c, n), "rate") for n in sizes]
            p99 = [get(r.lookup("unitpolicy", protocol, c, n), "p99_us") for n in sizes]
            flat = flatness(r).get((protocol, c))
            rows.append([protocol, c] + [f"{num(v)} / {ms(p)}" for v, p in zip(rates, p99)] + [pct(flat)])
    startup = []
    for n in sizes:
        s = next((x for x in reversed(r.startups) if x.get("mailboxes") == n), None)
        startup.append(f"{num(get(s, 'startup_ms'))} ms / {mb(get(s, 'rss_bytes'))}" if s else "—")
    rows.append(["start-up / RSS", ""] + startup + [""])
    return table(["", "connections"] + [f"{size_name(n)}: lookups/s / p99" for n in sizes] + ["min ÷ max"], rows)


def section_milter(r):
    if not r.milters:
        return "_Not measured._"
    rows = [(size_name(m.get("mailboxes", 0)), m.get("connections", "—"), num(get(m, "rate")), ms(get(m, "p99_us")),
             num(get(m, "cpu_us_per_message"), 1), mb(get(m, "rss_bytes"))) for m in r.milters]
    return table(("mailboxes", "connections", "messages/s", "p99", "CPU µs/message", "RSS"), rows)


def section_e2e(r):
    if not r.e2e:
        return "_Not measured._"
    rows = []
    a = get(r.e2e.get("a"), "rate")
    for key in "abcd":
        f = r.e2e.get(key)
        if f is None:
            continue
        runs = ", ".join(f"{v:.1f}" for v in f.get("rates", []))
        rows.append((key, f.get("label", ""), num(get(f, "rate"), 1), runs, num(get(f, "accept_rate"), 1),
                     num(ratio(get(f, "rate"), a), 2)))
    any_run = next(iter(r.e2e.values()))
    head = (f"{any_run.get('messages', 0):,} messages of {any_run.get('size', 0):,} bytes per run, "
            f"{any_run.get('sessions')} smtp-source sessions, {len(any_run.get('rates', []))} runs per "
            f"configuration in rotating order, {any_run.get('mailboxes', 0):,} mailboxes; the median is reported.\n\n")
    b, c = get(r.e2e.get("b"), "rate"), get(r.e2e.get("c"), "rate")
    tail = (f"\n\nc/a = {num(ratio(c, a), 2)} (goal ≥ 0.9), c/b = {num(ratio(c, b), 2)} (goal ≥ 1.2), "
            f"b/a = {num(ratio(b, a), 2)}.")
    d = get(r.e2e.get("d"), "rate")
    if d is not None:
        tail += f" Without the milter (d): d/a = {num(ratio(d, a), 2)}, c/d = {num(ratio(c, d), 2)}."
    lookups = r.e2e_lookups
    if lookups and lookups.get("messages"):
        per = lambda key: num(ratio(get(lookups, key), lookups["messages"]), 1)
        tail += (f" Postfix asked unitpolicy {per('policy_requests')} policy and {per('socketmap_requests')} "
                 "socketmap requests per message (each a round trip: Postfix looks some tables up for several "
                 "forms of each address).")
    return head + table(("", "configuration", "msg/s (median)", "runs", "accepted msg/s", "÷ a"), rows) + tail


def chart(r, charts, name, text):
    return f"![{text}]({charts}/{name}.png)" if name in charts_available(r) else ""


def render(args):
    with open(args.results) as f:
        lines = [json.loads(line) for line in f if line.strip().startswith("{")]
    r = Results(lines)
    charts = args.charts.rstrip("/")
    write_data(r, args.data)
    doc = [
        "# Benchmarks",
        "",
        "Written by `tests/bench/run.sh` from one run: every figure below was measured on the same machine, "
        "in the same run, on the same directories (tests/bench/README.md says how). Absolute figures depend on "
        "the machine and on whatever else it was running (see the load average); the ratios much less.",
        "",
        "## Machine",
        "",
        section_machine(r),
        "",
        "## Targets (DESIGN §8)",
        "",
        f"Lookup targets at {r.headline():,} mailboxes unless stated.",
        "",
        table(("target", "measured", ""), targets(r)),
        "",
        "## Lookups: unitpolicy against the floor",
        "",
        "The floor answers `DUNNO` without any lookup (threads, Unix socket): the cost of the protocol and the "
        "socket round trip alone. A fifth of the requests are for unknown addresses. \"of floor\": the rate "
        "as a share of the floor's at the same connection count.",
        "",
        section_lookups(r),
        "",
        chart(r, charts, "throughput", "throughput against connections"),
        chart(r, charts, "latency", "p99 latency against connections"),
        "",
        "## Baselines",
        "",
        section_baselines(r),
        "",
        "## Directory size",
        "",
        section_size(r),
        "",
        chart(r, charts, "size", "throughput against directory size"),
        "",
        "## Milter",
        "",
        section_milter(r),
        "",
        "## End to end: smtp-source → Postfix → smtp-sink",
        "",
        section_e2e(r),
        "",
    ]
    if r.notes:
        doc += ["## Notes", ""] + [f"- {n}" for n in r.notes] + [""]
    doc += ["## Reproduce", "", "```", "./tests/bench/run.sh", "```", ""]
    if r.timings:
        total = sum(t.get("seconds", 0) for t in r.timings)
        doc += ["This run's parts took " + ", ".join(f"{t['phase']} {t['seconds']} s" for t in r.timings)
                + f" ({total // 60} min {total % 60} s in all, before the report).", ""]
    with open(args.out, "w") as f:
        f.write(re.sub(r"\n{3,}", "\n\n", "\n".join(doc)))


# ---------------------------------------------------------------- chart data (plot/*.gp)

CHART_SERIES = (("floor", "policy"), ("unitpolicy", "policy"), ("unitpolicy", "socketmap"), ("postfwd2", "policy"))


def connection_figures(r, c):
    """The figures of each series of the connections charts at c connections."""
    size = r.headline()
    for server, protocol in CHART_SERIES:
        if server == "floor":
            yield r.floor(c, size)
        elif server == "postfwd2":
            yield r.lookup(server, protocol, c)
        else:
            yield r.lookup(server, protocol, c, size)


def charts_available(r):
    """The charts (plot/NAME.gp) that have something to show."""
    names = []
    if any(f is not None for c in CONNECTIONS for f in connection_figures(r, c)):
        names += ["throughput", "latency"]
    if len(r.sizes()) > 1:
        names.append("size")
    return names


def write_data(r, directory):
    """connections.dat and size.dat for plot/*.gp, each only when its chart has data."""
    os.makedirs(directory, exist_ok=True)
    available = charts_available(r)

    def value(f, key):
        v = get(f, key)
        return "?" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    path = os.path.join(directory, "connections.dat")
    if "throughput" in available:
        with open(path, "w") as f:
            f.write("# connections " + " ".join(f"{s}-{p}-rate {s}-{p}-p99us" for s, p in CHART_SERIES) + "\n")
            for c in CONNECTIONS:
                cells = [value(fig, key) for fig in connection_figures(r, c) for key in ("rate", "p99_us")]
                f.write(f"{c} " + " ".join(cells) + "\n")
    elif os.path.exists(path):
        os.remove(path)
    path = os.path.join(directory, "size.dat")
    if "size" in available:
        with open(path, "w") as f:
            columns = [(p, c) for p in PROTOCOLS for c in CONNECTIONS]
            f.write("# mailboxes " + " ".join(f"{p}-{c}-rate" for p, c in columns) + "\n")
            for n in r.sizes():
                rates = (value(r.lookup("unitpolicy", p, c, n), "rate") for p, c in columns)
                f.write(f"{n} " + " ".join(rates) + "\n")
    elif os.path.exists(path):
        os.remove(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("machine")
    m.add_argument("--build-type")
    rd = sub.add_parser("render")
    rd.add_argument("results")
    rd.add_argument("--out", required=True)
    rd.add_argument("--data", required=True)
    rd.add_argument("--charts", default="docs/bench")
    args = parser.parse_args()
    if args.command == "machine":
        machine(args)
    else:
        render(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
