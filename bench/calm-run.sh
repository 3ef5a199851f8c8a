#!/usr/bin/env bash
# "The defaults must be calm" (issue 3, Performance): a benchmark script, not a test.
#
#   bench/calm-run.sh [path/to/pgwarden]          (run as root; PostgreSQL runs as `postgres`)
#
# On 127.0.0.1 only, everything in a temp dir, every process started here killed by PID on exit.
# Starts etcd (one member) and a 3-member pgwarden cluster with pgwarden's DEFAULT timing (the
# node files set no ttl / loop_wait / retry_timeout / keep-alive: ttl 2 s, loop_wait 500 ms,
# retry_timeout 1 s, keep-alive every 500 ms with a 500 ms deadline; src/config/ha_timing.h) in
# synchronous mode, then:
#   1. idle: each agent's RSS and CPU over IDLE seconds (/proc/<pid>/status, /proc/<pid>/stat);
#   2. load: pgbench -i at SCALE, then pgbench tpcb-like (CLIENTS clients, THREADS threads) plus a
#      select-only group (RO_CLIENTS clients) against the primary for DURATION seconds, sampling
#      every second: the leader key (holder, create revision), the history length, the sync key,
#      each member's role/state (its own GET /patroni and its etcd member key), the replication
#      lag (the primary's pg_stat_replication), the load average, the machine's CPU busy share,
#      each agent's and etcd's CPU and RSS;
#   3. summary: leader changes (must be 0), member state flapping, max lag, pgbench tps, the
#      agents' warnings / late keep-alives by message (agents log at DEBUG, which adds exactly the
#      failed keep-alives and the failed cluster reads), max RSS.
# Output: $OUT/calm-<date>.csv (one row per second) and $OUT/calm-<date>.md (summary with a
# "## Calm under load" section); the agent and etcd logs are copied to $OUT/calm-<date>-logs/
# when a leader change happened (KEEP_LOGS=1 copies them always).
# Environment: DURATION (600), IDLE (60), SETTLE (15, before the idle measurement), SCALE (20), CLIENTS (16), THREADS (2), RO_CLIENTS (4),
#   FSYNC (off), OUT (bench/results), TAG (UTC date-time).
# Exit status: 0 when no leader change happened during the run, 1 otherwise, 2 for set-up errors.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PGWARDEN=${1:-/work/build-calm/src/pgwarden}
DURATION=${DURATION:-600}
IDLE=${IDLE:-60}
SETTLE=${SETTLE:-15}
SCALE=${SCALE:-20}
CLIENTS=${CLIENTS:-16}
THREADS=${THREADS:-2}
RO_CLIENTS=${RO_CLIENTS:-4}
FSYNC=${FSYNC:-off}
OUT=${OUT:-$HERE/results}
TAG=${TAG:-$(date -u +%Y%m%d-%H%M)}
PGBIN=/usr/lib/postgresql/15/bin
PASSWORD=benchpw
MEMBERS=(n1 n2 n3)

[[ -x $PGWARDEN ]] || { echo "no pgwarden binary at $PGWARDEN" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
for p in etcd etcdctl pgbench psql python3 curl; do
  command -v $p >/dev/null || { echo "missing: $p" >&2; exit 2; }
done
mkdir -p "$OUT"

WORK=$(mktemp -d /tmp/calm-run.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  exec 2>/dev/null  # no job-kill notices
  # Agents first (so none restarts its PostgreSQL), then the postmasters, then etcd and the rest.
  for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; done
  for f in "$WORK"/pgbench-*.pid; do [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done
  for d in "$WORK"/n*/data; do
    [[ -f $d/postmaster.pid ]] && kill -KILL "$(head -1 "$d/postmaster.pid")" 2>/dev/null || true
  done
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
log() { echo "[$(date -u +%H:%M:%S)] $*"; }

# --- etcd ------------------------------------------------------------------------------------
ETCD_PORT=$(free_port); ETCD_PEER=$(free_port)
etcd --name calm --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "calm=http://127.0.0.1:$ETCD_PEER" >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!; PIDS+=($ETCD_PID)
for _ in $(seq 50); do etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done

# --- three agents, default timing, synchronous mode -------------------------------------------
declare -A PG API AGENT
for n in "${MEMBERS[@]}"; do
  PG[$n]=$(free_port); API[$n]=$(free_port)
  mkdir -p "$WORK/$n"; chown postgres:postgres "$WORK/$n"
  cat >"$WORK/$n/node.yml" <<YAML
scope: calm
namespace: /service
name: $n
restapi: {listen: "127.0.0.1:${API[$n]}", connect_address: "127.0.0.1:${API[$n]}"}
etcd3: {hosts: ["127.0.0.1:$ETCD_PORT"]}
log: {level: DEBUG}
bootstrap:
  dcs:
    # No ttl / loop_wait / retry_timeout / keepalive_*: pgwarden's defaults are what is measured.
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters: {max_connections: 100, shared_buffers: 128MB, wal_level: replica, hot_standby: "on",
                   wal_log_hints: "on", max_wal_senders: 10, max_replication_slots: 10,
                   max_wal_size: 1GB, wal_keep_size: 256MB}
  pg_hba:
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: "127.0.0.1:${PG[$n]}"
  connect_address: "127.0.0.1:${PG[$n]}"
  data_dir: $WORK/$n/data
  bin_dir: $PGBIN
  authentication:
    superuser: {username: postgres, password: $PASSWORD}
    replication: {username: replicator, password: $PASSWORD}
  parameters: {unix_socket_directories: "$WORK/$n", fsync: "$FSYNC"}
pgwarden: {os_user: postgres}
YAML
  "$PGWARDEN" agent -c "$WORK/$n/node.yml" >"$WORK/$n/agent.log" 2>&1 &
  AGENT[$n]=$!; PIDS+=($!)
done
export PGPASSWORD=$PASSWORD PGUSER=postgres PGDATABASE=postgres PGHOST=127.0.0.1 PGCONNECT_TIMEOUT=10

log "waiting for a leader, 2 streaming replicas and a synchronous standby (at most 180 s)"
ready() {
  local l; l=$(etcdctl --endpoints "127.0.0.1:$ETCD_PORT" get --print-value-only /service/calm/leader 2>/dev/null)
  [[ -n $l && -n ${PG[$l]:-} ]] || return 1
  [[ $(psql -XAtq -p "${PG[$l]}" -c "select count(*) filter (where state='streaming'), count(*) filter (where sync_state='sync') from pg_stat_replication" 2>/dev/null) == "2|1" ]] || return 1
  LEADER=$l
}
LEADER=""
for _ in $(seq 600); do ready && break; sleep 0.3; done
[[ -n $LEADER ]] || { echo "cluster did not come up; logs in $WORK" >&2; tail -20 "$WORK"/n*/agent.log >&2; exit 2; }
log "cluster up: leader $LEADER"
"$PGWARDEN" list -c "$WORK/$LEADER/node.yml" 2>/dev/null || true

# --- measurement (idle, init, load) and summary: Python ----------------------------------------
cat >"$WORK/sampler.py" <<'PY'
import base64, csv, json, os, re, subprocess, sys, threading, time, urllib.request, datetime
from collections import Counter

cfg = json.loads(sys.argv[1])
members = cfg["members"]
api = cfg["api"]; pgport = cfg["pg"]; agent_pid = {m: int(p) for m, p in cfg["agent"].items()}
etcd_pid = int(cfg["etcd_pid"]); etcd = f"http://127.0.0.1:{cfg['etcd_port']}"
prefix = "/service/calm/"
HZ = os.sysconf("SC_CLK_TCK")
env = dict(os.environ)

def http_json(url, timeout=0.8, body=None):
    try:
        req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)
    except Exception:
        return None

def b64(s): return base64.b64encode(s.encode()).decode()

def etcd_range(key, prefix_range=False):
    body = {"key": b64(key)}
    if prefix_range:
        end = key[:-1] + chr(ord(key[-1]) + 1)
        body["range_end"] = b64(end)
    r = http_json(etcd + "/v3/kv/range", body=body)
    if r is None: return None
    out = []
    for kv in r.get("kvs", []):
        out.append({"key": base64.b64decode(kv["key"]).decode(),
                    "value": base64.b64decode(kv.get("value", "")).decode(),
                    "create": int(kv.get("create_revision", 0)), "mod": int(kv.get("mod_revision", 0)),
                    "lease": kv.get("lease", "0")})
    return out

def etcd_counts():
    """gRPC calls handled by etcd, by method (the JSON gateway counts too), and the revision."""
    c = Counter()
    try:
        with urllib.request.urlopen(etcd + "/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("grpc_server_started_total{"):
                    m = re.search(r'grpc_method="([^"]+)"', line)
                    c[m.group(1)] += float(line.rsplit(" ", 1)[1])
                elif line.startswith("etcd_debugging_mvcc_current_revision "):
                    c["(revisions)"] = float(line.split()[1])
                elif line.startswith("etcd_mvcc_db_total_size_in_bytes "):
                    c["(db bytes)"] = float(line.split()[1])
    except Exception:
        pass
    return c

def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])  # utime, stime (fields 14, 15)
    except Exception:
        return None

def proc_status(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"): return int(line.split()[1])
    except Exception:
        return None

def threads_of(pid):
    try: return len(os.listdir(f"/proc/{pid}/task"))
    except Exception: return None

def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]), idle

def loadavg():
    with open("/proc/loadavg") as f: return float(f.read().split()[0])

def psql(port, sql, timeout=2.0):
    try:
        r = subprocess.run(["psql", "-XAtq", "-F", "|", "-p", str(port), "-c", sql], env=env,
                           capture_output=True, text=True, timeout=timeout)
        return r.stdout.strip() if r.returncode == 0 else None
    except Exception:
        return None

def log(msg): print(f"[{datetime.datetime.utcnow():%H:%M:%S}] {msg}", flush=True)

# ---- the sampler ---------------------------------------------------------------------------
fields = ["t_s", "utc", "phase", "load1", "cpu_busy_pct", "etcd_ms", "leader", "leader_create_rev",
          "history_len", "sync_standby", "etcd_cpu_pct", "etcd_rss_kb"]
for m in members:
    fields += [f"{m}_role", f"{m}_state", f"{m}_key_role", f"{m}_key_state", f"{m}_timeline",
               f"{m}_lag_bytes", f"{m}_replay_lag_s", f"{m}_api_ms", f"{m}_agent_cpu_pct", f"{m}_agent_rss_kb"]
csv_path = cfg["csv"]
out = open(csv_path, "w", newline="")
w = csv.DictWriter(out, fieldnames=fields); w.writeheader()
rows = []
state = {"phase": "settle"}
t0 = time.monotonic()
prev = {"t": None, "mach": None, "agent": {}, "etcd": None}

def sample():
    now = time.monotonic()
    row = {"t_s": f"{now - t0:.1f}", "utc": datetime.datetime.utcnow().strftime("%H:%M:%S.%f")[:-3],
           "phase": state["phase"], "load1": loadavg()}
    mt, mi = machine_ticks()
    if prev["mach"]:
        dt, di = mt - prev["mach"][0], mi - prev["mach"][1]
        row["cpu_busy_pct"] = f"{100.0 * (dt - di) / dt:.1f}" if dt > 0 else ""
    prev["mach"] = (mt, mi)
    wall = now - prev["t"] if prev["t"] else None
    prev["t"] = now
    def cpu(key, pid):
        t = proc_ticks(pid); p = prev["agent"].get(key); prev["agent"][key] = t
        if t is None or p is None or not wall: return ""
        return f"{100.0 * (t - p) / HZ / wall:.1f}"
    row["etcd_cpu_pct"] = cpu("etcd", etcd_pid); row["etcd_rss_kb"] = proc_status(etcd_pid, "VmRSS")
    for m in members:
        row[f"{m}_agent_cpu_pct"] = cpu(m, agent_pid[m])
        row[f"{m}_agent_rss_kb"] = proc_status(agent_pid[m], "VmRSS")
    if state["phase"] == "idle":  # nothing but /proc: the idle figures are not the sampler's
        w.writerow(row); out.flush(); rows.append(row); return
    te = time.monotonic()
    kvs = etcd_range(prefix, prefix_range=True)
    row["etcd_ms"] = f"{1000 * (time.monotonic() - te):.0f}"
    leader = None
    if kvs is not None:
        by = {kv["key"][len(prefix):]: kv for kv in kvs}
        l = by.get("leader")
        leader = l["value"] if l else ""
        row["leader"] = leader or "-"
        row["leader_create_rev"] = l["create"] if l else ""
        try: row["history_len"] = len(json.loads(by["history"]["value"])) if "history" in by else 0
        except Exception: row["history_len"] = "?"
        try: row["sync_standby"] = json.loads(by["sync"]["value"]).get("sync_standby") or "-" if "sync" in by else "-"
        except Exception: row["sync_standby"] = "?"
        for m in members:
            mk = by.get("members/" + m)
            if mk:
                try:
                    j = json.loads(mk["value"]); row[f"{m}_key_role"] = j.get("role", ""); row[f"{m}_key_state"] = j.get("state", "")
                except Exception: row[f"{m}_key_role"] = "?"
            else:
                row[f"{m}_key_role"] = "absent"; row[f"{m}_key_state"] = "absent"
    else:
        row["leader"] = "etcd-unreachable"
    res = {}
    lat = {}
    def get(m):
        ta = time.monotonic(); res[m] = http_json(f"http://127.0.0.1:{api[m]}/patroni")
        lat[m] = f"{1000 * (time.monotonic() - ta):.0f}"
    ths = [threading.Thread(target=get, args=(m,)) for m in members]
    for t in ths: t.start()
    for t in ths: t.join()
    for m in members:
        row[f"{m}_api_ms"] = lat.get(m, "")
        j = res.get(m)
        if j is None: row[f"{m}_role"] = "no-answer"; continue
        row[f"{m}_role"] = j.get("role", ""); row[f"{m}_state"] = j.get("state", "")
        if j.get("replication_state"): row[f"{m}_state"] += "/" + j["replication_state"]
        row[f"{m}_timeline"] = j.get("timeline", "")
    if leader in pgport:
        q = psql(pgport[leader], "select application_name, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn),-1)::bigint, "
                                  "coalesce(extract(epoch from replay_lag),0) from pg_stat_replication")
        for line in (q or "").splitlines():
            a, lag, lag_s = line.split("|")
            if a in members:
                row[f"{a}_lag_bytes"] = lag; row[f"{a}_replay_lag_s"] = f"{float(lag_s):.3f}"
    w.writerow(row); out.flush(); rows.append(row)

stop = threading.Event()
def sampler():
    nxt = time.monotonic()
    while not stop.is_set():
        try: sample()
        except Exception as e: log(f"sample failed: {e!r}")
        nxt += 1.0
        now = time.monotonic()
        if nxt < now: nxt = now + (1.0 - (now - nxt) % 1.0)  # overran: keep the 1 s grid
        stop.wait(max(0.0, nxt - now))
th = threading.Thread(target=sampler); th.start()

def agent_snapshot():
    return {m: (proc_ticks(agent_pid[m]), time.monotonic()) for m in members}

# ---- 1. idle -----------------------------------------------------------------------------------
leader0 = cfg["leader"]
log(f"settle: {cfg['settle']} s (sampled)")
time.sleep(cfg["settle"])
state["phase"] = "idle"
log(f"idle: {cfg['idle']} s, nothing but the cluster itself")
a0 = agent_snapshot(); e0 = proc_ticks(etcd_pid); c0 = etcd_counts()
time.sleep(cfg["idle"])
a1 = agent_snapshot(); e1 = proc_ticks(etcd_pid); c1 = etcd_counts()
idle_calls = {k: (c1[k] - c0[k]) / cfg["idle"] for k in c1 if c1[k] - c0[k] > 0}
idle = {}
for m in members:
    (t0_, w0), (t1_, w1) = a0[m], a1[m]
    idle[m] = {"cpu_pct": 100.0 * (t1_ - t0_) / HZ / (w1 - w0), "rss_kb": proc_status(agent_pid[m], "VmRSS"),
               "threads": threads_of(agent_pid[m])}
idle_etcd = 100.0 * (e1 - e0) / HZ / cfg["idle"]
idle_rows = [r for r in rows if r["phase"] == "idle"]

# ---- 2. pgbench -i, then the load --------------------------------------------------------------
state["phase"] = "init"
leader = leader0
log(f"pgbench -i -s {cfg['scale']} on {leader} (port {pgport[leader]})")
ti = time.monotonic()
r = subprocess.run(["pgbench", "-i", "-q", "-s", str(cfg["scale"]), "-p", str(pgport[leader])], env=env,
                   capture_output=True, text=True)
init_s = time.monotonic() - ti
if r.returncode != 0: log("pgbench -i failed: " + r.stderr[-500:])
state["phase"] = "load"
lc0 = etcd_counts(); tl0 = time.monotonic()
log(f"load: pgbench tpcb-like -c {cfg['clients']} -j {cfg['threads']} + select-only -c {cfg['ro_clients']}, {cfg['duration']} s")
dur = str(cfg["duration"])
common = ["-n", "-T", dur, "-P", "10", "-p", str(pgport[leader])]
wl = open(cfg["work"] + "/pgbench-rw.log", "w"); rl = open(cfg["work"] + "/pgbench-ro.log", "w")
tl = time.monotonic()
p_rw = subprocess.Popen(["pgbench", "-c", str(cfg["clients"]), "-j", str(cfg["threads"])] + common, env=env, stdout=wl, stderr=subprocess.STDOUT)
open(cfg["work"] + "/pgbench-rw.pid", "w").write(str(p_rw.pid))
p_ro = None
if cfg["ro_clients"] > 0:
    p_ro = subprocess.Popen(["pgbench", "-S", "-c", str(cfg["ro_clients"]), "-j", "1"] + common, env=env, stdout=rl, stderr=subprocess.STDOUT)
    open(cfg["work"] + "/pgbench-ro.pid", "w").write(str(p_ro.pid))
deadline = time.monotonic() + cfg["duration"] + 120
for p in [p_rw, p_ro]:
    if p is None: continue
    try: p.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired: p.kill(); p.wait()
load_s = time.monotonic() - tl
lc1 = etcd_counts()
load_calls = {k: (lc1[k] - lc0[k]) / (time.monotonic() - tl0) for k in lc1 if lc1[k] - lc0[k] > 0}
wl.close(); rl.close()
state["phase"] = "after"
time.sleep(3)
stop.set(); th.join(); out.close()
log("load done")

# ---- 3. summary --------------------------------------------------------------------------------
def pgb(path):
    txt = open(path).read()
    tps = re.search(r"^tps = ([0-9.]+)", txt, re.M)
    lat = re.search(r"^latency average = ([0-9.]+) ms", txt, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", txt, re.M)
    done = re.search(r"^number of transactions actually processed: (\d+)", txt, re.M)
    aborted = len(re.findall(r"aborted", txt))
    prog = [float(x) for x in re.findall(r"^progress: [0-9.]+ s, ([0-9.]+) tps", txt, re.M)]
    return {"tps": float(tps.group(1)) if tps else None, "lat_ms": float(lat.group(1)) if lat else None,
            "failed": int(failed.group(1)) if failed else None, "done": int(done.group(1)) if done else None,
            "aborted_lines": aborted, "progress": prog, "tail": txt.strip().splitlines()[-3:] if txt.strip() else []}
rw = pgb(cfg["work"] + "/pgbench-rw.log")
ro = pgb(cfg["work"] + "/pgbench-ro.log") if p_ro else None

def f(x):
    try: return float(x)
    except Exception: return None

load_rows = [r for r in rows if r["phase"] in ("init", "load", "after")]
all_rows = rows
def changes(rs, key):
    rs = [r for r in rs if r.get(key) not in ("", None, "no-answer", "etcd-unreachable")]
    n = 0; seq = []
    for a, b in zip(rs, rs[1:]):
        if a.get(key) != b.get(key):
            n += 1; seq.append((b["utc"], a.get(key), b.get(key)))
    return n, seq
leader_changes, leader_seq = changes(all_rows, "leader")
rev_changes, _ = changes([r for r in all_rows if r.get("leader_create_rev") not in ("", None)], "leader_create_rev")
hist = [r["history_len"] for r in all_rows if r.get("history_len") not in ("", None, "?")]
hist_growth = (int(hist[-1]) - int(hist[0])) if hist else None
sync_changes, sync_seq = changes([r for r in rows if r["phase"] != "settle"], "sync_standby")
flaps = {}
run_rows = [r for r in rows if r["phase"] != "settle"]  # the settle phase still sees the start-up
for m in members:
    n1, s1 = changes(run_rows, f"{m}_role"); n2, s2 = changes(run_rows, f"{m}_state")
    n3, s3 = changes(run_rows, f"{m}_key_role"); n4, s4 = changes(run_rows, f"{m}_key_state")
    flaps[m] = {"api_role": n1, "api_state": n2, "key_role": n3, "key_state": n4,
                "examples": (s1 + s2 + s3 + s4)[:6]}
def lags(rs):
    lag_max = {}; lag_s_max = {}
    for m in members:
        v = [f(r.get(f"{m}_lag_bytes")) for r in rs]; v = [x for x in v if x is not None and x >= 0]
        s = [f(r.get(f"{m}_replay_lag_s")) for r in rs]; s = [x for x in s if x is not None]
        if v: lag_max[m] = max(v)
        if s: lag_s_max[m] = max(s)
    return lag_max, lag_s_max
lag_max, lag_s_max = lags([r for r in rows if r["phase"] == "load"])
ilag_max, ilag_s_max = lags([r for r in rows if r["phase"] == "init"])
def stat(rs, key):
    v = [f(r.get(key)) for r in rs]; v = [x for x in v if x is not None]
    if not v: return None
    v.sort()
    return {"mean": sum(v) / len(v), "max": v[-1], "p50": v[len(v) // 2], "n": len(v)}
lr = [r for r in rows if r["phase"] == "load"]
load1 = stat(lr, "load1"); busy = stat(lr, "cpu_busy_pct")
agent_cpu_load = {m: stat(lr, f"{m}_agent_cpu_pct") for m in members}
etcd_cpu_load = stat(lr, "etcd_cpu_pct")
etcd_ms = stat(lr, "etcd_ms")
api_ms = {m: stat(lr, f"{m}_api_ms") for m in members}
no_answer = {m: sum(1 for r in lr if r.get(f"{m}_role") == "no-answer") for m in members}
hwm = {m: proc_status(agent_pid[m], "VmHWM") for m in members}
rss_end = {m: proc_status(agent_pid[m], "VmRSS") for m in members}
rss_max_sampled = {m: max([int(r[f"{m}_agent_rss_kb"]) for r in rows if r.get(f"{m}_agent_rss_kb")] or [0]) for m in members}
etcd_hwm = proc_status(etcd_pid, "VmHWM")
c_end = etcd_counts()

# Agent logs: warnings, errors, debug lines (failed keep-alives / cluster reads), FENCE, by message.
norm = lambda s: re.sub(r"\d+(\.\d+)?", "N", re.sub(r"\b[0-9a-f]{8,}\b", "<id>", s))
logs = {}
timeline = []  # (time, member, level, message) of every warning / error / debug line after start-up
ka_times = {m: [] for m in members}
lvl_re = re.compile(r"^\S+ \S+ (trace|debug|info|warning|error|critical) [^:]*: (.*)$")
for m in members:
    c = Counter(); first = {}
    for line in open(f"{cfg['work']}/{m}/agent.log", errors="replace"):
        mm = lvl_re.match(line.rstrip("\n"))
        if not mm: continue
        lvl, msg = mm.groups()
        if lvl == "info" and not re.search(r"lease|leader|promot|demot|fence|follow|stop|sync", msg, re.I):
            continue
        k = (lvl, norm(msg)[:160]); c[k] += 1; first.setdefault(k, line[:23])
        if lvl != "info": timeline.append((line[:23], m, lvl, msg[:200]))
        if "lease keep-alive" in msg:
            ka_times[m].append(datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f"))
    logs[m] = (c, first)
def max_streak(ts, interval=0.5):
    """Longest run of failed keep-alives in a row: failures <= 1.5 intervals apart."""
    best = cur = 0; prev_t = None
    for t in sorted(ts):
        cur = cur + 1 if prev_t and (t - prev_t).total_seconds() <= 1.5 * interval else 1
        best = max(best, cur); prev_t = t
    return best

fail = leader_changes > 0 or rev_changes > 0 or (hist_growth or 0) > 0
md = []
P = md.append
P(f"# Calm under load: run of {cfg['tag']}\n")
P(f"Script: `bench/calm-run.sh` (commit `{cfg['commit']}`), binary `{cfg['pgwarden']}` (Release). "
  f"CSV: `{os.path.basename(csv_path)}` (one row per second).\n")
P("## Calm under load\n")
P(f"On one machine (Debian 12, **2 cores shared with other engineers' builds and tests**), "
  f"etcd (1 member) and 3 pgwarden agents with PostgreSQL 15 on 127.0.0.1, **default timing** "
  f"(ttl 2 s, loop_wait 500 ms, retry_timeout 1 s, keep-alive every 500 ms with a 500 ms deadline, "
  f"fence at ttl − 500 ms), `synchronous_mode: true`, fsync {cfg['fsync']}. "
  f"pgbench against the primary for {cfg['duration']} s: tpcb-like, scale {cfg['scale']}, "
  f"{cfg['clients']} clients / {cfg['threads']} threads"
  + (f", plus select-only, {cfg['ro_clients']} clients" if p_ro else "") + ".\n")
P("| | result |")
P("|---|---|")
P(f"| leader changes during the run | **{leader_changes}**" + (f" (leader key re-created {rev_changes}×)" if rev_changes else "") +
  f"; history entries added: {hist_growth} |")
P(f"| verdict | **{'FAILOVER — see below' if fail else 'calm: no failover, no leader key re-creation'}** |")
P(f"| member role/state changes (own `/patroni`; etcd member key) | " +
  "; ".join(f"{m}: {flaps[m]['api_role'] + flaps[m]['api_state']}; {flaps[m]['key_role'] + flaps[m]['key_state']}" for m in members) + " |")
P(f"| synchronous standby changes | {sync_changes} |")
P(f"| `/patroni` not answered within 0.8 s (samples) | " + ", ".join(f"{m}: {no_answer[m]}" for m in members) + f" of {len(lr)} |")
if etcd_ms: P(f"| sampler's etcd range / agents' `GET /patroni` round trip under load (median / max) | etcd {etcd_ms['p50']:.0f} / {etcd_ms['max']:.0f} ms; " +
  ", ".join(f"{m} {api_ms[m]['p50']:.0f} / {api_ms[m]['max']:.0f} ms" for m in members if api_ms[m]) + " |")
P(f"| max replication lag under the load (bytes behind the primary's current LSN / replay_lag) | " +
  ", ".join(f"{m}: {lag_max[m]/1024:.0f} kB / {lag_s_max.get(m, 0):.2f} s" for m in members if m in lag_max) +
  "; during `pgbench -i`: " + ", ".join(f"{m}: {ilag_max[m]/1024:.0f} kB / {ilag_s_max.get(m, 0):.2f} s" for m in members if m in ilag_max) + " |")
if load1: P(f"| load average (1 min) during the load | mean {load1['mean']:.1f}, max {load1['max']:.1f} |")
if busy: P(f"| machine CPU busy (all cores, /proc/stat) | mean {busy['mean']:.0f} %, median {busy['p50']:.0f} % |")
P(f"| pgbench tpcb-like | {rw['tps'] or 0:.0f} tps, latency avg {rw['lat_ms'] or 0:.1f} ms, {rw['done']} transactions, failed {rw['failed']} |")
if ro: P(f"| pgbench select-only | {ro['tps'] or 0:.0f} tps, latency avg {ro['lat_ms'] or 0:.1f} ms |")
P(f"| agents' CPU under load (mean / max of 1 s samples) | " +
  ", ".join(f"{m}: {agent_cpu_load[m]['mean']:.1f} % / {agent_cpu_load[m]['max']:.0f} %" for m in members if agent_cpu_load[m]) +
  (f"; etcd {etcd_cpu_load['mean']:.1f} % / {etcd_cpu_load['max']:.0f} %" if etcd_cpu_load else "") + " |")
P(f"| agents' max RSS (VmHWM over the whole run) | " + ", ".join(f"{m}: {hwm[m]/1024:.1f} MiB" for m in members if hwm[m]) +
  (f"; etcd {etcd_hwm/1024:.0f} MiB" if etcd_hwm else "") + " |")
P(f"| agents idle ({cfg['idle']} s, before the load): CPU, RSS, threads | " +
  ", ".join(f"{m}: {idle[m]['cpu_pct']:.2f} %, {idle[m]['rss_kb']/1024:.1f} MiB, {idle[m]['threads']}" for m in members) +
  f"; etcd {idle_etcd:.2f} % |")
P(f"| etcd requests per second, idle / under load (all 3 agents; the sampler adds ~1 Range/s under load) | " +
  ", ".join(f"{k} {idle_calls.get(k, 0):.1f} / {load_calls.get(k, 0):.1f}" for k in sorted(set(idle_calls) | set(load_calls))) + " |")
P(f"| etcd revision / database size at the end | {c_end.get('(revisions)', 0):.0f} revisions, {c_end.get('(db bytes)', 0)/1e6:.1f} MB "
  f"(it was {c0.get('(revisions)', 0):.0f} / {c0.get('(db bytes)', 0)/1e6:.1f} MB when the idle phase began) |")
late = {m: sum(n for (lvl, msg), n in logs[m][0].items() if "keep-alive" in msg) for m in members}
P(f"| keep-alives that failed or came too late (agent DEBUG log `lease keep-alive: …`; with the defaults "
  f"a keep-alive not answered within 500 ms fails) / most in a row (two in a row fence the primary) | " +
  ", ".join(f"{m}: {late[m]} / {max_streak(ka_times[m])}" for m in members) + " |")
P(f"| samples taken (the sampler itself is starved under load) | {len(lr)} in {cfg['duration']} s of load |")
fences = {m: sum(n for (lvl, msg), n in logs[m][0].items() if "FENCE" in msg) for m in members}
P(f"| fence events | " + ", ".join(f"{m}: {fences[m]}" for m in members) + " |")
P("")
P(f"Leader: {leader0} throughout" if not leader_seq else "Leader sequence: " + "; ".join(f"{t} {a}→{b}" for t, a, b in leader_seq))
P("")
P("The CPU figures are per process (utime+stime over wall time; 100 % = one core). The machine is "
  "shared: other engineers' compilers and tests ran at the same time, so the load average and "
  "pgbench's tps are noisy and are not comparable between runs.\n")
P("## Agent log messages during the whole run (warnings, errors, debug; info lines about the lease / leader)\n")
for m in members:
    c, first = logs[m]
    P(f"**{m}**" + ("" if c else ": none"))
    for (lvl, msg), n in sorted(c.items(), key=lambda kv: -kv[1])[:25]:
        P(f"- {n}× {lvl} `{msg}` (first {first[(lvl, msg)]})")
    P("")
ec = Counter(); efirst = {}
for line in open(cfg["work"] + "/etcd.log", errors="replace"):
    mm = re.match(r"^(\S+ \S+) ([WEC]) \| (.*)$", line.rstrip("\n"))
    if not mm: continue
    k = (mm.group(2), norm(mm.group(3))[:140]); ec[k] += 1; efirst.setdefault(k, mm.group(1))
P("**etcd** (W/E lines)" + ("" if ec else ": none"))
for (lvl, msg), n in sorted(ec.items(), key=lambda kv: -kv[1])[:15]:
    P(f"- {n}× {lvl} `{msg}` (first {efirst[(lvl, msg)]})")
P("")
P("## Timeline of the agents' warnings, errors and debug lines (first 60)\n")
for t, m, lvl, msg in sorted(timeline)[:60]:
    P(f"- {t[11:]} {m} {lvl}: `{msg}`")
if not timeline: P("none")
P("")
P("## Member state changes after the start-up (first few)\n")
for m in members:
    ex = flaps[m]["examples"]
    P(f"- {m}: " + ("none" if not ex else "; ".join(f"{t}: {a} → {b}" for t, a, b in ex)))
if sync_seq:
    P("- synchronous standby: " + "; ".join(f"{t}: {a} → {b}" for t, a, b in sync_seq[:10]))
P("")
P("## pgbench\n")
P(f"- init: `pgbench -i -q -s {cfg['scale']}` took {init_s:.0f} s; the load phase took {load_s:.0f} s")
P(f"- tpcb-like 10 s progress tps: {' '.join(f'{x:.0f}' for x in rw['progress'])}")
if ro: P(f"- select-only 10 s progress tps: {' '.join(f'{x:.0f}' for x in ro['progress'])}")
P(f"- tail: `{' / '.join(rw['tail'])}`")
open(cfg["md"], "w").write("\n".join(md) + "\n")
print("\n".join(md))
sys.exit(1 if fail else 0)
PY

CSV="$OUT/calm-$TAG.csv"; MD="$OUT/calm-$TAG.md"
agents_json=$(for n in "${MEMBERS[@]}"; do printf '"%s": %s,' "$n" "${AGENT[$n]}"; done)
api_json=$(for n in "${MEMBERS[@]}"; do printf '"%s": %s,' "$n" "${API[$n]}"; done)
pg_json=$(for n in "${MEMBERS[@]}"; do printf '"%s": %s,' "$n" "${PG[$n]}"; done)
COMMIT=$(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null || echo unknown)
CFG=$(cat <<JSON
{"members": ["n1", "n2", "n3"], "agent": {${agents_json%,}}, "api": {${api_json%,}}, "pg": {${pg_json%,}},
 "etcd_pid": $ETCD_PID, "etcd_port": $ETCD_PORT, "leader": "$LEADER", "idle": $IDLE, "settle": $SETTLE, "scale": $SCALE,
 "clients": $CLIENTS, "threads": $THREADS, "ro_clients": $RO_CLIENTS, "duration": $DURATION,
 "fsync": "$FSYNC", "work": "$WORK", "csv": "$CSV", "md": "$MD", "tag": "$TAG",
 "commit": "$COMMIT", "pgwarden": "$PGWARDEN"}
JSON
)
rc=0
python3 "$WORK/sampler.py" "$CFG" & PY_PID=$!; PIDS+=($PY_PID)
wait $PY_PID || rc=$?
"$PGWARDEN" list -c "$WORK/${MEMBERS[0]}/node.yml" 2>/dev/null || true
if [[ $rc != 0 || ${KEEP_LOGS:-0} == 1 ]]; then
  LOGS="$OUT/calm-$TAG-logs"; mkdir -p "$LOGS"
  for n in "${MEMBERS[@]}"; do cp "$WORK/$n/agent.log" "$LOGS/$n-agent.log"; done
  cp "$WORK/etcd.log" "$WORK"/pgbench-*.log "$LOGS/" 2>/dev/null || true
  for n in "${MEMBERS[@]}"; do
    for f in "$WORK/$n"/data/log/*; do [[ -f $f ]] && cp "$f" "$LOGS/$n-postgres-$(basename "$f")"; done
  done
  log "logs copied to $LOGS"
fi
log "results: $CSV, $MD"
exit $rc
