#!/usr/bin/env python3
"""report.py: BENCHMARKS.md and the charts' data from one benchmark run.

    report.py machine [--build-type TYPE]
        prints one JSON line describing this machine (CPU, cores, memory,
        kernel, load, date, package versions, the commit): run.sh writes it
        first into the run's results.
    report.py render RESULTS.jsonl --out BENCHMARKS.md --data DIR [--charts REL]
        reads the JSON lines of one run (tests/bench/README.md lists their
        kinds and fields), writes the Markdown report (first issue 16's
        table of targets: what, measured with the spread of the runs,
        target, pass/fail; then every figure, each target of DESIGN §8 with
        the measured value and pass/fail, the ratios against the floor and
        the baselines of the same run) and the gnuplot data files of
        plot/*.gp into DIR (NAME.dat for plot/NAME.gp, only when its chart
        has something to show). REL is the charts' directory as the report
        links it (default docs/bench).

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
import textwrap
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
        self.e2e_lookups = {}   # by configuration
        self.e2e_requests = None
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
                # an older run's line has no configuration: it counted c's
                self.e2e_lookups[line.get("config", "c")] = line
            elif kind == "e2e_requests":
                self.e2e_requests = line
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

    def startup(self, mailboxes, start="first"):
        """The start-up figure at that size: a first start on a new file, or a
        restart on the same file (an older run's lines are first starts)."""
        return next((s for s in reversed(self.startups)
                     if s.get("mailboxes") == mailboxes and s.get("start", "first") == start), None)

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
    start = r.startup(largest)
    startup = get(start, "startup_ms")
    peak = peak_rss(r, largest)
    return [(f"start-up under 100 ms ({where}, first start on a new file)", "—" if startup is None else f"{num(startup)} ms",
             verdict(below(startup, 100))),
            (f"resident memory under 50 MB ({where}, largest seen)", mb(peak), verdict(below(peak, 50 * 2**20)))]


def target_milter_e2e(r):
    milter = max((m.get("rate") for m in r.milters if m.get("rate") is not None), default=None)
    a, c, d = (get(r.e2e.get(k), "rate") for k in "acd")
    return [("milter: ≥ 2,000 messages/s", "—" if milter is None else f"{num(milter)} msg/s",
             verdict(at_least(milter, 2000))),
            ("end to end: unitpolicy ≥ 0.95× no checks (c/a)", num(ratio(c, a), 2),
             verdict(at_least(ratio(c, a), 0.95))),
            ("end to end: the milter's share at most 3% (c/d ≥ 0.97)", num(ratio(c, d), 2),
             verdict(at_least(ratio(c, d), 0.97))),
            ("end to end: the lookups' share at most 3% (d/a ≥ 0.97)", num(ratio(d, a), 2),
             verdict(at_least(ratio(d, a), 0.97)))]


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


# ---------------------------------------------------------------- issue 16's table

ISSUE16_SIZES = (10_000, 1_000_000, 10_000_000)
LARGE_SIZE = 10_000_000

# Why Postfix asks unitpolicy, by (protocol, map or state[, key form]): the
# Postfix setting of examples/mx/main.cf that makes the request. A key
# form's own entry comes first.
REQUEST_REASONS = {
    ("socketmap", "alias", "domain"): "`virtual_alias_domains`, when left at its default `$virtual_alias_maps` "
                                      "(examples/mx sets it empty): is the domain a virtual alias domain",
    ("socketmap", "domain", "other domain"): "`relay_domains` asked for another domain than the recipients' "
                                             "(the sender's: trivial-rewrite's address class)",
    ("policy", "RCPT"): "`check_policy_service` in smtpd_recipient_restrictions: the recipient check at RCPT TO",
    ("socketmap", "domain"): "`relay_domains`: is the recipient's domain one this MX relays "
                             "(smtpd's reject_unauth_destination, trivial-rewrite's address class)",
    ("socketmap", "recipient"): "`relay_recipient_maps` (unset in examples/mx: the policy service checks "
                                "the recipient): is the recipient known (smtpd at RCPT TO)",
    ("socketmap", "alias"): "`virtual_alias_maps`: alias expansion (cleanup's rewrite)",
    ("socketmap", "transportmx"): "`transport_maps`: where the recipient goes (the queue manager's resolution; "
                                  "smtpd's resolver, unitrewrite, asks none)",
}
KEY_FORMS = {
    "address": "the full address",
    "@domain": "`@domain`: Postfix's catch-all form, asked after the address",
    "domain": "the domain alone",
    ".domain": "`.domain`: parent-domain matching",
    "local part": "the local part alone",
    "*": "`*`: Postfix's default-entry probe",
    "other domain": "another domain",
    "recipient": "one per recipient",
}


def runs_of(figure, key="rates"):
    """The per-run values of a figure, in run order (an older run has none)."""
    values = get(figure, key)
    return [v for v in values if v is not None] if isinstance(values, list) else []


def run_ratios(ours, theirs, key="rates"):
    """Ratios of runs that alternated: run i of ours ÷ run i of theirs."""
    a, b = runs_of(ours, key), runs_of(theirs, key)
    return [x / y for x, y in zip(a, b) if y] if a and len(a) == len(b) else []


def spread(values, fmt):
    """ " (min–max)" of the runs, or "" when there is no spread to show."""
    return f" ({fmt(min(values))}–{fmt(max(values))})" if len(values) > 1 else ""


def two(v):
    return "—" if v is None else f"{v:.2f}"


def peak_rss(r, mailboxes):
    rss = [get(f, "rss_bytes") for f in r.lookups
           if f.get("server") == "unitpolicy" and f.get("mailboxes") == mailboxes]
    rss += [get(s, "rss_bytes") for s in r.startups if s.get("mailboxes") == mailboxes]
    return max((v for v in rss if v), default=None)


def e2e_ratio(r, top, bottom):
    """(ratio of the medians, per-round ratios) of two e2e configurations."""
    ft, fb = r.e2e.get(top), r.e2e.get(bottom)
    return ratio(get(ft, "rate"), get(fb, "rate")), run_ratios(ft, fb)


def floor_shares(r):
    """{(size, connections, protocol): (median ratio, per-run ratios)} for unitpolicy ÷ floor."""
    out = {}
    for size in r.sizes():
        for c in CONNECTIONS:
            for protocol in PROTOCOLS:
                ours, floor = r.lookup("unitpolicy", protocol, c, size), r.floor(c, size, protocol)
                share = ratio(get(ours, "rate"), get(floor, "rate"))
                if share is not None:
                    out[(size, c, protocol)] = (share, run_ratios(ours, floor))
    return out


def missing_sizes(r):
    return [size_name(n) for n in ISSUE16_SIZES if n not in r.sizes()]


def judge(ok, missing):
    """A verdict when some of the figures a target covers were not measured:
    a failure is a failure; a pass over part of them is not a pass."""
    if ok is None or (ok and missing):
        return "n/a" + (f" (not measured: {', '.join(missing)})" if missing else "")
    return verdict(ok)


def issue16_e2e_rows(r):
    rows = []
    for what, top, bottom, goal in (("end to end, c/a", "c", "a", 0.95),
                                    ("the milter's share, c/d", "c", "d", 0.97),
                                    ("the lookups' share, d/a", "d", "a", 0.97)):
        x, rounds = e2e_ratio(r, top, bottom)
        if x is None:
            absent = [k for k in (top, bottom) if k not in r.e2e]
            rows.append((what, f"not measured (no configuration {', '.join(absent)})", f"≥ {goal}", "n/a"))
            continue
        measured = (f"{two(x)}{spread(rounds, two)}: {num(get(r.e2e[top], 'rate'), 1)} ÷ "
                    f"{num(get(r.e2e[bottom], 'rate'), 1)} msg/s")
        rows.append((what, measured, f"≥ {goal}", verdict(at_least(x, goal))))
    return rows


def issue16_requests_row(r):
    counts = [f"({k}) {num(ratio(l.get('policy_requests'), l['messages']), 1)} policy + "
              f"{num(ratio(l.get('socketmap_requests'), l['messages']), 1)} socketmap"
              for k, l in sorted(r.e2e_lookups.items()) if l.get("messages")]
    measured = "; ".join(counts) + (", reasons below" if r.e2e_requests else ", no breakdown by map measured") \
        if counts else "not measured"
    return ("daemon requests per message", measured, "each one needed, with its reason",
            "see below" if r.e2e_requests else "—")


def issue16_floor_row(r):
    shares = floor_shares(r)
    if not shares:
        return ("lookups/s ÷ floor, 8 and 64 connections, 10k/1M/10M", "not measured", "≥ 0.7 everywhere", "n/a")
    (size, c, protocol), (worst, runs) = min(shares.items(), key=lambda kv: kv[1][0])
    best = max(v[0] for v in shares.values())
    measured = (f"{two(worst)}–{two(best)} over {len(shares)} figures; worst {two(worst)}{spread(runs, two)} "
                f"({protocol}, {c} connections, {size_name(size)})")
    return ("lookups/s ÷ floor, 8 and 64 connections, 10k/1M/10M", measured, "≥ 0.7 everywhere",
            judge(at_least(worst, 0.7), missing_sizes(r)))


def issue16_flat_row(r):
    flat = {k: v for k, v in flatness(r).items() if v is not None}
    what = "worst ÷ best lookup rate, 10k → 10M"
    if not flat:
        return (what, "not measured (one directory size)", "≥ 0.9", judge(None, missing_sizes(r)))
    (protocol, c), worst = min(flat.items(), key=lambda kv: kv[1])
    measured = f"{two(worst)} ({protocol}, {c} connections; {', '.join(size_name(n) for n in r.sizes())})"
    return (what, measured, "≥ 0.9", judge(at_least(worst, 0.9), missing_sizes(r)))


def issue16_startup_row(r):
    what = f"start-up to first answer at {size_name(LARGE_SIZE)}"
    target = "< 100 ms on a file already validated once (the restart)"
    if LARGE_SIZE not in r.sizes():
        return (what, f"not measured (largest directory {size_name(max(r.sizes(), default=0))})", target, "n/a")
    cells = []
    for start, name in (("first", "first start on a new file"), ("restart", "restart on the same file")):
        s = r.startup(LARGE_SIZE, start)
        cells.append(f"{name}: " + ("not measured" if s is None else
                                   f"{num(s['startup_ms'])} ms{spread(runs_of(s, 'runs_ms'), num)}"))
    restart = get(r.startup(LARGE_SIZE, "restart"), "startup_ms")
    return (what, "; ".join(cells), target, verdict(below(restart, 100)))


def issue16_rss_row(r):
    what = f"RSS at {size_name(LARGE_SIZE)}"
    if LARGE_SIZE not in r.sizes():
        return (what, "not measured", "< 50 MB", "n/a")
    peak = peak_rss(r, LARGE_SIZE)
    return (what, f"{mb(peak)} (largest seen, every run at that size)", "< 50 MB", verdict(below(peak, 50 * 2**20)))


def issue16(r):
    """The rows (what, measured, target, verdict) of issue 16's table."""
    return (issue16_e2e_rows(r) + [issue16_requests_row(r), issue16_floor_row(r), issue16_flat_row(r),
                                   issue16_startup_row(r), issue16_rss_row(r)])


def section_floor_shares(r):
    shares = floor_shares(r)
    if not shares:
        return ""
    rows = []
    for size in r.sizes():
        for c in CONNECTIONS:
            cells = []
            for protocol in PROTOCOLS:
                v = shares.get((size, c, protocol))
                cells.append("not measured" if v is None else f"{two(v[0])}{spread(v[1], two)}")
            rows.append([f"{size:,}", c] + cells)
    return ("unitpolicy's lookups/s ÷ the floor's, at each size and connection count (median of the runs; "
            "in brackets, the lowest and highest ratio of a run to the floor's run beside it):\n\n"
            + table(("mailboxes", "connections", "policy", "socketmap"), rows))


def section_requests(r):
    if not r.e2e_requests:
        return ""
    line = r.e2e_requests
    messages = line.get("messages") or 0
    if not messages:
        return ""
    rows = []
    for q in line.get("requests", []):
        reason = (REQUEST_REASONS.get((q["protocol"], q["map"], q["key"]))
                  or REQUEST_REASONS.get((q["protocol"], q["map"]), ""))
        form = KEY_FORMS.get(q["key"], q["key"])
        rows.append((q["protocol"], q["map"], form, num(q["count"] / messages, 2), reason))
    total = sum(q["count"] for q in line.get("requests", [])) / messages
    return (f"What Postfix asked unitpolicy per message in configuration ({line.get('config', 'c')}), by map and "
            f"form of the key: {messages} single-recipient messages sent through a copy of it whose unitpolicy "
            f"logs every request (not timed). {total:.2f} requests per message in all; each is a round trip. "
            "Some are asked once per Postfix process or session, not per message (the `*` probe, the sender's "
            "domain): over these few messages they weigh more than in the timed runs above.\n\n"
            + table(("protocol", "map / state", "key", "per message", "why Postfix asks"), rows))


def section_issue16(r):
    parts = [table(("what", "measured", "target", ""), issue16(r))]
    e2e = next(iter(r.e2e.values()), None)
    if e2e:
        runs = len(e2e.get("rates", []))
        parts.append(f"End to end: {e2e.get('messages', 0):,} messages of {e2e.get('size', 0):,} bytes per run, "
                     f"{e2e.get('mailboxes', 0):,} mailboxes, {runs} run{'s' if runs != 1 else ''} per configuration "
                     "in rotating order; a ratio is of the medians, in brackets the lowest and highest ratio "
                     "of one round of runs.")
    parts += [section_floor_shares(r), section_requests(r)]
    return "\n\n".join(p for p in parts if p)


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
    for start in ("first", "restart"):
        cells = []
        for n in sizes:
            s = r.startup(n, start)
            cells.append(f"{num(get(s, 'startup_ms'))} ms / {mb(get(s, 'rss_bytes'))}" if s else "not measured")
        rows.append([f"start-up ({start}) / RSS", ""] + cells + [""])
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
    tail = (f"\n\nc/a = {num(ratio(c, a), 2)} (goal ≥ 0.95), c/b = {num(ratio(c, b), 2)}, "
            f"b/a = {num(ratio(b, a), 2)}.")
    d = get(r.e2e.get("d"), "rate")
    if d is not None:
        tail += (f" Without the milter (d): d/a = {num(ratio(d, a), 2)} (goal ≥ 0.97), "
                 f"c/d = {num(ratio(c, d), 2)} (goal ≥ 0.97).")
    for key, lookups in sorted(r.e2e_lookups.items()):
        if lookups.get("messages"):
            per = lambda k: num(ratio(get(lookups, k), lookups["messages"]), 1)
            tail += (f" In ({key}) Postfix asked unitpolicy {per('policy_requests')} policy and "
                     f"{per('socketmap_requests')} socketmap requests per message.")
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
        "## Issue 16's targets",
        "",
        "Medians of alternating runs, every ratio between runs of the same run of the benchmark.",
        "",
        section_issue16(r),
        "",
        chart(r, charts, "share", "unitpolicy's lookups/s ÷ the floor's, by size and connections"),
        chart(r, charts, "e2e", "end-to-end messages/s by configuration"),
        chart(r, charts, "startup", "start-up time: first start and restart"),
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
#
# Every chart is drawn on linear axes from the data files written here, one
# per chart: a first line "# title: ..." (the chart's title, naming the
# directory size), then blocks separated by two blank lines, each opened by
# a comment naming it, which the .gp file selects with `index "NAME"`:
#   "# series NAME": bars or points, "x median low high" (low and high: the
#       lowest and highest of the runs; the median again when an older run
#       gave no runs);
#   "# targets": dashed lines, "x0 x1 y";
#   "# ticks": the x axis's labels, "x label";
#   "# clipped": values above the y range, "x y text" (latency only).

BAR = 0.8  # the width of a cluster of bars


def spread_of(median, runs):
    return (min(runs), max(runs)) if runs else (median, median)


class ChartFile:
    def __init__(self, title):
        self.blocks = [f"# title: {title}"]

    def block(self, name, rows):
        lines = [f"# {name}"] + [" ".join(self.cell(v) for v in row) for row in rows]
        if len(lines) == 1:
            lines.append("? ? ? ?")  # an empty block: gnuplot skips the missing point
        self.blocks.append("\n".join(lines))

    @staticmethod
    def cell(v):
        if v is None:
            return "?"
        if isinstance(v, str):
            return '"' + v.replace('"', "'") + '"'
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    def write(self, path):
        with open(path, "w") as f:
            f.write("\n\n\n".join(self.blocks) + "\n")


def bar_x(cluster, index, count):
    width = BAR / count
    return cluster - BAR / 2 + width * (index + 0.5)


def bars(chart, series, clusters, figure_of, scale=1.0, key="rate", runs_key="rates"):
    """One "series" block per series: each cluster's bar, median and spread."""
    for i, name in enumerate(series):
        rows = []
        for k, cluster in enumerate(clusters):
            f = figure_of(name, cluster)
            v = get(f, key)
            if v is None:
                continue
            low, high = spread_of(v, runs_of(f, runs_key))
            rows.append((bar_x(k, i, len(series)), v * scale, low * scale, high * scale))
        chart.block(f"series {name}", rows)


def chart_share(r):
    shares = floor_shares(r)
    if not shares:
        return None
    clusters = [(n, c) for n in r.sizes() for c in CONNECTIONS]
    runs = max((len(v[1]) for v in shares.values()), default=0)
    chart = ChartFile("unitpolicy lookups/s ÷ the floor's (a server doing no lookup), in the same run"
                      + (f": median of {runs} runs, bars from the lowest to the highest run" if runs > 1 else ""))
    for i, protocol in enumerate(PROTOCOLS):
        rows = []
        for k, cluster in enumerate(clusters):
            v = shares.get(cluster + (protocol,))
            if v:
                low, high = spread_of(v[0], v[1])
                rows.append((bar_x(k, i, len(PROTOCOLS)), v[0], low, high))
        chart.block(f"series {protocol}", rows)
    chart.block("targets", [(-0.5, len(clusters) - 0.5, 0.7)])
    chart.block("ticks", [(k, f"{size_name(n)} mailboxes\\n{c} connections") for k, (n, c) in enumerate(clusters)])
    return chart


CONNECTION_SERIES = (("floor", "policy"), ("unitpolicy", "policy"), ("floor", "socketmap"),
                     ("unitpolicy", "socketmap"), ("postfwd2", "policy"))


def connection_figure(r, size):
    def figure_of(name, c):
        server, protocol = name.split("-")
        if server == "floor":
            return r.floor(c, size, protocol)
        return r.lookup(server, protocol, c) if server == "postfwd2" else r.lookup(server, protocol, c, size)
    return figure_of


def chart_throughput(r):
    size = r.headline()
    names = [f"{s}-{p}" for s, p in CONNECTION_SERIES]
    figure_of = connection_figure(r, size)
    if not any(figure_of(n, c) for n in names for c in CONNECTIONS):
        return None
    chart = ChartFile(f"Lookups per second at {size:,} mailboxes (median of the runs; bars: lowest to highest run)")
    bars(chart, names, CONNECTIONS, figure_of)
    targets = []
    for k, c in enumerate(CONNECTIONS):
        for i, name in enumerate(names):
            server, protocol = name.split("-")
            floor = get(r.floor(c, size, protocol), "rate")
            if server == "unitpolicy" and floor:
                x = bar_x(k, i, len(names))
                targets.append((x - BAR / len(names) / 2, x + BAR / len(names) / 2, 0.7 * floor))
    chart.block("targets", targets)
    chart.block("ticks", [(k, f"{c} connections") for k, c in enumerate(CONNECTIONS)])
    return chart


def chart_latency(r):
    size = r.headline()
    names = [f"{s}-{p}" for s, p in CONNECTION_SERIES if (s, p) != ("floor", "socketmap")]
    figure_of = connection_figure(r, size)
    values = [get(figure_of(n, c), "p99_us") for n in names for c in CONNECTIONS]
    if not any(v is not None for v in values):
        return None
    chart = ChartFile(f"p99 latency at {size:,} mailboxes (median of the runs; bars: lowest to highest run)")
    bars(chart, names, CONNECTIONS, figure_of, scale=0.001, key="p99_us", runs_key="p99s_us")
    # The y range fits the servers of this product; a baseline's bar above it
    # is cut and its value written on it.
    ours = [get(figure_of(n, c), "p99_us") for n in names if not n.startswith("postfwd2") for c in CONNECTIONS]
    ours += [max(runs_of(figure_of(n, c), "p99s_us"), default=0) for n in names
             if not n.startswith("postfwd2") for c in CONNECTIONS]
    ymax = max([v for v in ours if v] + [1000]) * 1.3 / 1000
    clipped = []
    for k, c in enumerate(CONNECTIONS):
        for i, name in enumerate(names):
            v = get(figure_of(name, c), "p99_us")
            if v is not None and v / 1000 > ymax:
                clipped.append((bar_x(k, i, len(names)), ymax * 0.93, f"{v / 1000:,.0f} ms"))
    chart.blocks[0] += f"\n# ymax: {ymax:.3f}"
    k8 = CONNECTIONS.index(8)
    chart.block("targets", [(k8 - BAR / 2, k8 + BAR / 2, 1.0)])
    chart.block("ticks", [(k, f"{c} connections") for k, c in enumerate(CONNECTIONS)])
    chart.block("clipped", clipped)
    return chart


def chart_size(r):
    sizes = r.sizes()
    if len(sizes) < 2:
        return None
    chart = ChartFile("unitpolicy lookups/s at each directory size ÷ its best size's (median of the runs; "
                      "bars: lowest to highest run)")
    for protocol in PROTOCOLS:
        for c in CONNECTIONS:
            figures = [r.lookup("unitpolicy", protocol, c, n) for n in sizes]
            best = max((get(f, "rate") or 0 for f in figures), default=0)
            rows = []
            for k, f in enumerate(figures):
                if best and get(f, "rate"):
                    low, high = spread_of(f["rate"], runs_of(f))
                    rows.append((k, f["rate"] / best, low / best, high / best))
            chart.block(f"series {protocol}-{c}", rows)
    chart.block("targets", [(-0.3, len(sizes) - 0.7, 0.9)])
    chart.block("ticks", [(k, f"{n:,} mailboxes") for k, n in enumerate(sizes)])
    return chart


def chart_e2e(r):
    if not r.e2e:
        return None
    e = next(iter(r.e2e.values()))
    runs = len(e.get("rates", []))
    chart = ChartFile(f"smtp-source → Postfix → smtp-sink at {e.get('mailboxes', 0):,} mailboxes, "
                      f"{e.get('messages', 0):,} messages of {e.get('size', 0):,} bytes a run: "
                      + (f"median of {runs} runs (bars: lowest to highest)" if runs > 1 else "one run"))
    keys = [k for k in "abcd" if k in r.e2e]
    rows = []
    for x, k in enumerate(keys):
        f = r.e2e[k]
        low, high = spread_of(f["rate"], runs_of(f))
        rows.append((x, f["rate"], low, high))
    chart.block("series e2e", rows)
    targets, labels = [], []
    a, d = get(r.e2e.get("a"), "rate"), get(r.e2e.get("d"), "rate")
    for k, base, goal, name in (("c", a, 0.95, "0.95 a"), ("c", d, 0.97, "0.97 d"), ("d", a, 0.97, "0.97 a")):
        if k in keys and base:
            x = keys.index(k)
            targets.append((x - 0.35, x + 0.35, goal * base))
            labels.append((x + 0.3, goal * base, name))
    chart.block("targets", targets)
    chart.block("ticks", [(x, "\\n".join(textwrap.wrap(f"({k}) {r.e2e[k].get('label', '')}", 24)))
                          for x, k in enumerate(keys)])
    chart.block("labels", labels)
    return chart


def chart_startup(r):
    sizes = [n for n in r.sizes() if r.startup(n)]
    if not sizes:
        return None
    chart = ChartFile("unitpolicy start-up, from exec to the first answer (median of the runs; bars: lowest to "
                      "highest)")
    starts = ("first", "restart")
    bars(chart, starts, sizes, lambda start, n: r.startup(n, start), key="startup_ms", runs_key="runs_ms")
    targets = []
    if LARGE_SIZE in sizes:
        x = bar_x(sizes.index(LARGE_SIZE), 1, len(starts))
        targets.append((x - BAR / 4, x + BAR / 4, 100))
    chart.block("targets", targets)
    chart.block("ticks", [(k, f"{n:,} mailboxes") for k, n in enumerate(sizes)])
    return chart


CHARTS = (("share", chart_share, "unitpolicy's lookups/s ÷ the floor's, by size and connections"),
          ("throughput", chart_throughput, "lookups/s against connections"),
          ("latency", chart_latency, "p99 latency against connections"),
          ("size", chart_size, "lookups/s against directory size"),
          ("e2e", chart_e2e, "end-to-end messages/s"),
          ("startup", chart_startup, "start-up time, first start and restart"))


def charts_available(r):
    """The charts (plot/NAME.gp) that have something to show."""
    return [name for name, make, _ in CHARTS if make(r) is not None]


def write_data(r, directory):
    """NAME.dat for each plot/NAME.gp whose chart has data; the others' removed."""
    os.makedirs(directory, exist_ok=True)
    for name, make, _ in CHARTS:
        path = os.path.join(directory, f"{name}.dat")
        chart = make(r)
        if chart is not None:
            chart.write(path)
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
