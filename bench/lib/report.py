#!/usr/bin/env python3
"""bench/failover-bench.sh's raw CSV -> a Markdown table of medians and ratios to pgwarden."""
import argparse
import csv
import math
import os
import platform
import statistics
import subprocess

SYSTEM_ORDER = ["pgwarden", "pgwarden-proxy", "patroni", "patroni-fast"]
SYSTEM_TEXT = {
    "pgwarden": "pgwarden (libpq multi-host, target_session_attrs=read-write)",
    "pgwarden-proxy": "pgwarden + `pgwarden proxy`",
    "patroni": "Patroni 3.0 defaults + HAProxy (inter 3s fall 3 rise 2)",
    "patroni-fast": "Patroni 3.0 shortest timing + HAProxy (inter 1s fall 2 rise 1)",
}
EVENT_ORDER = ["switchover", "crash", "freeze"]


def num(v):
    try:
        x = float(v)
        return None if math.isnan(x) else x
    except (TypeError, ValueError):
        return None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}"


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(open("/proc/meminfo").readline().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    osname = ""
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return os.cpu_count(), cpu, platform.release(), mem, osname


def main():
    p = argparse.ArgumentParser()
    for a in ("csv", "out", "load-before", "load-after", "started", "runs", "pgwarden-version",
              "patroni-version", "haproxy-version", "etcd-version"):
        p.add_argument("--" + a, default="")
    a = p.parse_args()
    rows = list(csv.DictReader(open(a.csv)))
    systems = [s for s in SYSTEM_ORDER if any(r["system"] == s for r in rows)]
    systems += sorted({r["system"] for r in rows} - set(systems))
    events = [e for e in EVENT_ORDER if any(r["event"] == e for r in rows)]

    stats = {}
    for s in systems:
        for e in events:
            rs = [r for r in rows if r["system"] == s and r["event"] == e]
            stats[s, e] = {
                "n": len(rs),
                "outage": med(num(r["outage_s"]) for r in rs),
                "min": min((num(r["outage_s"]) for r in rs if num(r["outage_s"]) is not None), default=None),
                "max": max((num(r["outage_s"]) for r in rs if num(r["outage_s"]) is not None), default=None),
                "failed": med(num(r["failed"]) for r in rs),
                "lost": sum(int(num(r["lost"]) or 0) for r in rs),
                "lost_runs": sum(1 for r in rs if (num(r["lost"]) or 0) > 0),
                "stale": sum(int(num(r["stale_acks"]) or 0) for r in rs),
                "stale_runs": sum(1 for r in rs if (num(r["stale_acks"]) or 0) > 0),
                "promote": med(num(r["promote_s"]) for r in rs),
                "healthy": med(num(r["healthy_s"]) for r in rs),
                "notes": sorted({r["note"] for r in rs if r.get("note")}),
            }
    idle = {s: next((r for r in rows if r["system"] == s and r["event"] == "idle"), None) for s in systems}
    setup_fail = {s: sum(1 for r in rows if r["system"] == s and r["event"] == "setup") for s in systems}

    nproc, cpu, kernel, mem, osname = machine()
    out = []
    w = out.append
    w(f"# Failover benchmark, {a.started}")
    w("")
    w(f"Machine: {nproc} cores ({cpu}), {mem} RAM, kernel {kernel}, {osname}. Load average (1/5/15 min) "
      f"before: {a.load_before}, after: {a.load_after} (a shared machine: other engineers were building).")
    w(f"Versions: pgwarden {a.pgwarden_version}, Patroni {a.patroni_version}, HAProxy {a.haproxy_version}, "
      f"etcd {a.etcd_version}, PostgreSQL 15. Runs per event and system: {a.runs}.")
    w("")
    w("Write outage: median over the runs, in seconds (min–max in brackets), and the ratio of the "
      "median to pgwarden's (multi-host libpq) for the same event. Failed: median failed attempts "
      "of the writer (a new connection every 100 ms). Lost: acknowledged rows missing from the "
      "final primary, summed over all runs (runs with a loss). Stale: acknowledgements the frozen "
      "old primary gave after the new primary's promotion, summed (runs).")
    w("")
    base = "pgwarden" if "pgwarden" in systems else systems[0]
    for e in events:
        w(f"### {e}")
        w("")
        w("| system | runs | outage s (median) | min–max | × pgwarden | failed | lost (runs) | stale acks (runs) | promoted after s | all 3 streaming after s |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for s in systems:
            st = stats[s, e]
            if not st["n"]:
                continue
            ref = stats[base, e]["outage"]
            ratio = "–" if base != "pgwarden" else "1.00" if s == base else (fmt(st["outage"] / ref) if st["outage"] and ref else "–")
            w(f"| {SYSTEM_TEXT.get(s, s)} | {st['n']} | {fmt(st['outage'])} | {fmt(st['min'])}–{fmt(st['max'])} | "
              f"{ratio} | {fmt(st['failed'], 0)} | {st['lost']} ({st['lost_runs']}) | "
              f"{st['stale']} ({st['stale_runs']}) | {fmt(st['promote'], 1)} | {fmt(st['healthy'], 1)} |")
        w("")
    w("### Resources (3 managers, idle cluster, no writer)")
    w("")
    w("| system | managers' RSS MB (sum of 3) | managers' idle CPU % of one core (sum of 3) | balancer RSS MB | balancer idle CPU % | etcd idle CPU % | etcd writes/s |")
    w("| --- | --- | --- | --- | --- | --- | --- |")
    for s in systems:
        r = idle[s]
        if r:
            w(f"| {SYSTEM_TEXT.get(s, s)} | {r['mgr_rss_mb']} | {r['mgr_cpu_pct']} | {r['bal_rss_mb'] or '–'} | {r['bal_cpu_pct'] or '–'} | {r['etcd_cpu_pct'] or '–'} | {r['etcd_writes_per_s'] or '–'} |")
    w("")
    notes = [(s, e, n) for (s, e), st in stats.items() for n in st["notes"]]
    if notes or any(setup_fail.values()):
        w("Notes from the runs:")
        w("")
        for s, e, n in notes:
            w(f"- {s} / {e}: {n}")
        for s, k in setup_fail.items():
            if k:
                w(f"- {s}: the cluster did not come up in {k} round(s)")
        w("")
    w(f"Raw data: `{os.path.basename(a.csv)}`.")
    open(a.out, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
