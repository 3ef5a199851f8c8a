#!/usr/bin/env python3
"""One event of bench/failover-bench.sh: the writer's log + the final table -> one CSV fragment.

The writer is `pgwarden demo-app --log-file F` (src/demo/demo_app.cc, run_demo.cc): one line per
attempt, `YYYY-MM-DD HH:MM:SS.mmm <outcome>` in UTC with the attempt's END time, where an
acknowledged insert reads `Logged a value, overall count: N` or `Logged event N, then <error>`
(inserted and committed, the count failed); anything else is a failed attempt. At exit it appends
`acknowledged ids: a-b,c,...`. Ids are handed out in attempt order, so the k-th acknowledged line
is the k-th smallest acknowledged id: that gives each acknowledged id its time.

Measures (times are epoch seconds from the same machine clock):
  outage_s  the longest gap between two consecutive acknowledgements from the last one before the
            fault (t0) to the end of the event window (tend: cluster healthy again); that is the
            interruption "last ack before the fault -> first ack after it", and it also catches a
            second interruption inside the window (e.g. when the old primary rejoins)
  failed    failed attempts that ended inside [t0, tend]
  lost      acknowledged ids (> base) missing from the final primary's table
  stale     acknowledged ids that the OLD primary committed at or after the new primary's
            promotion (promo_t): rows on the final primary with srv = old port and ts >= promo_t,
            plus rows seen on the old primary itself (sampled after SIGCONT, before it was rewound)
Prints: outage_s,failed,lost,stale,acked,attempts
"""
import argparse
import calendar
import re
import sys
import time

LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3}) (.*)$")


def parse_log(path):
    acks, fails, ids = [], [], None
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("acknowledged ids:"):
                ids = []
                text = line.split(":", 1)[1].strip()
                for part in filter(None, text.split(",")):
                    a, _, b = part.partition("-")
                    ids.extend(range(int(a), int(b or a) + 1))
                continue
            m = LINE.match(line)
            if not m:
                continue
            t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
            msg = m.group(3)
            if msg.startswith("Logged a value") or msg.startswith("Logged event"):
                acks.append(t)
            else:
                fails.append(t)
    return acks, fails, ids


def read_rows(path):
    """id,srv,ts (srv may be empty) -> {id: (srv, ts)}"""
    rows = {}
    if not path:
        return rows
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.strip().split("|")
                if len(parts) < 3 or not parts[0]:
                    continue
                rows[int(parts[0])] = (parts[1], float(parts[2]) if parts[2] else 0.0)
    except FileNotFoundError:
        pass
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--tend", type=float, required=True)
    p.add_argument("--base", type=int, required=True)
    p.add_argument("--old-port", default="")
    p.add_argument("--promo-t", type=float, default=0.0)
    p.add_argument("--final", required=True, help="id|srv|epoch rows of the final primary")
    p.add_argument("--sampled", default="", help="id|srv|epoch rows seen on the old primary")
    a = p.parse_args()

    acks, fails, ids = parse_log(a.log)
    if ids is None:
        print("writer log has no 'acknowledged ids' line (writer killed?)", file=sys.stderr)
        ids = []
    ids = sorted(i for i in ids if i > a.base)
    ack_time = dict(zip(ids, acks[-len(ids):] if ids else []))  # the writer only inserts > base

    before = [t for t in acks if t < a.t0]
    window = ([before[-1]] if before else []) + [t for t in acks if a.t0 <= t <= a.tend]
    if len(window) >= 2:
        outage = max(b - x for x, b in zip(window, window[1:]))
    else:
        outage = float("nan")
    # No ack after the fault inside the window at all: the outage lasted at least until tend.
    if window and window[-1] < a.t0:
        outage = a.tend - window[-1]
    failed = sum(1 for t in fails if a.t0 <= t <= a.tend)

    final = read_rows(a.final)
    lost = sum(1 for i in ids if i not in final)
    stale = set()
    if a.promo_t > 0 and a.old_port:
        for i in ids:
            row = final.get(i)
            if row and row[0] == a.old_port and row[1] >= a.promo_t:
                stale.add(i)
        # (srv: once the old primary has rejoined, the same port also shows the new primary's
        # rows, replicated; only rows that the old primary committed itself count)
        for i, (srv, ts) in read_rows(a.sampled).items():
            if i in ack_time and srv == a.old_port and ts >= a.promo_t:
                stale.add(i)
    print(f"{outage:.3f},{failed},{lost},{len(stale)},{len(ids)},{len(acks) + len(fails)}")


if __name__ == "__main__":
    main()
