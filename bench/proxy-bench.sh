#!/usr/bin/env bash
# Benchmark of `pgwarden proxy` (not a test). On 127.0.0.1 only, everything in a temp dir,
# every process started here killed by PID on exit.
#
#   bench/proxy-bench.sh [path/to/pgwarden]        (run as root; PostgreSQL runs as `postgres`)
#
# Sets up etcd and a 2-member pgwarden cluster (real agents, PostgreSQL 15), one `pgwarden proxy`
# and HAProxy configured the standard Patroni way (option httpchk OPTIONS /primary against the
# agents' REST API, inter 3s fall 3 rise 2, on-marked-down shutdown-sessions), then measures:
#   1. pgbench -S (8 clients) and -S -C, direct / pgwarden proxy / HAProxy, interleaved,
#      RUNS rounds, medians, each as a ratio to direct;
#   2. the proxy's RSS idle and with 1,000 idle client connections (a second proxy instance on a
#      synthetic etcd scope whose "primary" is a TCP sink, so that 1,000 sessions cost no
#      PostgreSQL backends);
#   3. after a switchover, the time from the new primary answering GET /primary to the first new
#      connection through each balancer landing on it (and from the POST).
# Environment: RUNS (3), SECONDS_PER_RUN (8), SCALE (10).
set -euo pipefail

PGWARDEN=${1:-/work/build-proxy2/src/pgwarden}
RUNS=${RUNS:-3}
T=${SECONDS_PER_RUN:-8}
SCALE=${SCALE:-10}
PGBIN=/usr/lib/postgresql/15/bin
PASSWORD=benchpw

[[ -x $PGWARDEN ]] || { echo "no pgwarden binary at $PGWARDEN" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
if ! command -v haproxy >/dev/null; then
  echo "installing haproxy (benchmark dependency)" >&2
  apt-get install -y haproxy >/dev/null
fi
for p in etcd pgbench python3 curl; do
  command -v $p >/dev/null || { echo "missing: $p" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/proxy-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  exec 2>/dev/null  # no job-kill notices
  for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; done
  for d in "$WORK"/n*/data; do
    [[ -f $d/postmaster.pid ]] && kill -KILL "$(head -1 "$d/postmaster.pid")" 2>/dev/null || true
  done
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# --- etcd ------------------------------------------------------------------------------------
ETCD_PORT=$(free_port); ETCD_PEER=$(free_port)
etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER" >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done

# --- two agents ------------------------------------------------------------------------------
declare -A PG API
for n in n1 n2; do
  PG[$n]=$(free_port); API[$n]=$(free_port)
  mkdir -p "$WORK/$n"; chown postgres:postgres "$WORK/$n"
  cat >"$WORK/$n/node.yml" <<YAML
scope: bench
namespace: /service
name: $n
restapi: {listen: "127.0.0.1:${API[$n]}", connect_address: "127.0.0.1:${API[$n]}"}
etcd3: {hosts: ["127.0.0.1:$ETCD_PORT"]}
bootstrap:
  dcs:
    ttl: 2s
    loop_wait: 500ms
    retry_timeout: 1s
    postgresql:
      use_pg_rewind: true
      parameters: {max_connections: 100, shared_buffers: 64MB, wal_level: replica, hot_standby: "on", wal_log_hints: "on", max_wal_senders: 10, max_replication_slots: 10}
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
  parameters: {unix_socket_directories: "$WORK/$n", fsync: "off"}
pgwarden: {os_user: postgres}
YAML
  "$PGWARDEN" agent -c "$WORK/$n/node.yml" >"$WORK/$n/agent.log" 2>&1 &
  PIDS+=($!)
done
export PGPASSWORD=$PASSWORD PGUSER=postgres PGDATABASE=postgres PGHOST=127.0.0.1 PGCONNECT_TIMEOUT=10
primary() { for n in n1 n2; do [[ $(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://127.0.0.1:${API[$n]}/primary") == 200 ]] && { echo $n; return; }; done; echo ""; }
replicas_streaming() { psql -XAtq -p "${PG[$1]}" -c "select count(*) from pg_stat_replication where state='streaming'" 2>/dev/null || echo 0; }
P=""
for _ in $(seq 300); do
  P=$(primary); [[ -n $P && $(replicas_streaming "$P") == 1 ]] && break; sleep 0.3
done
[[ -n $P ]] || { echo "cluster did not come up; logs in $WORK" >&2; tail -20 "$WORK"/n1/agent.log >&2; exit 1; }
echo "cluster up: primary $P"

# --- pgwarden proxy and HAProxy --------------------------------------------------------------
PX_PORT=$(free_port); PX_STATUS=$(free_port); HA_PORT=$(free_port)
cat >"$WORK/proxy.yml" <<YAML
scope: bench
etcd3: {hosts: ["127.0.0.1:$ETCD_PORT"]}
proxy: {listen: 127.0.0.1, primary_port: $PX_PORT, status_port: $PX_STATUS}
YAML
"$PGWARDEN" proxy -c "$WORK/proxy.yml" >"$WORK/proxy.log" 2>&1 &
PX_PID=$!; PIDS+=($PX_PID)
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 4000
    nbthread 2
defaults
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 4s
    timeout server 30m
    timeout check 5s
listen primary
    bind 127.0.0.1:$HA_PORT
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
    server n1 127.0.0.1:${PG[n1]} maxconn 1000 check port ${API[n1]}
    server n2 127.0.0.1:${PG[n2]} maxconn 1000 check port ${API[n2]}
CFG
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  psql -XAtq -p "$PX_PORT" -c 'select 1' >/dev/null 2>&1 && psql -XAtq -p "$HA_PORT" -c 'select 1' >/dev/null 2>&1 && break
  sleep 0.2
done

pgbench -i -q -s "$SCALE" -p "${PG[$P]}" >/dev/null 2>&1
echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. throughput ---------------------------------------------------------------------------
# pgbench exits 2 when a client aborted (its tps still counts the others): reported, not fatal.
tps() {
  local out rc=0
  out=$(pgbench -n -S -c 8 -j 2 -T "$T" -p "$1" "${@:2}" 2>&1) || rc=$?
  ((rc == 0)) || echo "pgbench -p $1 ${*:2}: exit $rc: $(grep -m1 -iE 'abort|error|fatal' <<<"$out")" >&2
  awk '/^tps/ {print $3; exit}' <<<"$out"
}
declare -A S C
for r in $(seq "$RUNS"); do
  for target in direct proxy haproxy; do
    case $target in direct) port=${PG[$P]} ;; proxy) port=$PX_PORT ;; haproxy) port=$HA_PORT ;; esac
    S[$target]+="$(tps "$port") "
    C[$target]+="$(tps "$port" -C) "
  done
  echo "round $r: -S ${S[direct]##* } ... (load $(cut -d' ' -f1 /proc/loadavg))" | tr -s ' '
done
report() {
  local label=$1; local -n arr=$2
  local d; d=$(tr ' ' '\n' <<<"${arr[direct]}" | grep . | median)
  printf '%-10s direct %8.0f tps' "$label" "$d"
  for t in proxy haproxy; do
    local m; m=$(tr ' ' '\n' <<<"${arr[$t]}" | grep . | median)
    printf ' | %s %8.0f tps (%.0f%%)' "$t" "$m" "$(awk -v a="$m" -v b="$d" 'BEGIN{print (b > 0 ? 100 * a / b : 0)}')"
  done
  printf '   runs: direct [%s] proxy [%s] haproxy [%s]\n' "${arr[direct]% }" "${arr[proxy]% }" "${arr[haproxy]% }"
}
echo "== throughput, medians of $RUNS interleaved runs of ${T}s, 8 clients"
report "-S" S
report "-S -C" C

# --- 2. RSS with 1,000 idle clients ----------------------------------------------------------
SINK_PORT=$(free_port); PX2_PORT=$(free_port); PX2_STATUS=$(free_port)
python3 - "$SINK_PORT" >"$WORK/sink.log" 2>&1 <<'PY' &
import socket, sys, select
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(2048)
held = []
while True:
    c, _ = s.accept(); held.append(c)
PY
PIDS+=($!)
E="etcdctl --endpoints 127.0.0.1:$ETCD_PORT"
$E put /service/rss/leader sink >/dev/null
$E put /service/rss/members/sink "{\"conn_url\":\"postgres://127.0.0.1:$SINK_PORT/postgres\",\"api_url\":\"http://127.0.0.1:1/patroni\",\"state\":\"running\",\"role\":\"primary\"}" >/dev/null
cat >"$WORK/proxy2.yml" <<YAML
scope: rss
etcd3: {hosts: ["127.0.0.1:$ETCD_PORT"]}
proxy: {listen: 127.0.0.1, primary_port: $PX2_PORT, status_port: $PX2_STATUS}
YAML
"$PGWARDEN" proxy -c "$WORK/proxy2.yml" >"$WORK/proxy2.log" 2>&1 &
PX2_PID=$!; PIDS+=($PX2_PID)
sleep 1.5
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "== memory: pgwarden proxy RSS idle: $(rss $PX2_PID) kB"
python3 - "$PX2_PORT" "$PX2_STATUS" "$PX2_PID" <<'PY'
import socket, sys, time, json, urllib.request
port, status, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
for _ in range(100):
    st = json.load(urllib.request.urlopen(f"http://127.0.0.1:{status}/status"))
    if st["active_sessions"] >= 1000: break
    time.sleep(0.1)
rss = [l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0]
print(f"== memory: pgwarden proxy RSS with {st['active_sessions']} idle proxied clients: {rss} kB")
for c in conns: c.close()
PY

# --- 3. time from a primary change to the first routed connection -----------------------------
probe() {  # port, expected pg port, file: first success time (ms) written to the file
  local deadline=$(( $(now_ms) + 30000 ))
  while (( $(now_ms) < deadline )); do
    if [[ $(psql -XAtq -p "$1" -c "select inet_server_port() || (not pg_is_in_recovery())::text" 2>/dev/null) == "$2true" ]]; then
      now_ms >"$3"; return
    fi
    sleep 0.01
  done
  echo timeout >"$3"
}
OLD=$P; NEW=$([[ $P == n1 ]] && echo n2 || echo n1)
probe "$PX_PORT" "${PG[$NEW]}" "$WORK/t_proxy" & PR1=$!
probe "$HA_PORT" "${PG[$NEW]}" "$WORK/t_haproxy" & PR2=$!
( deadline=$(( $(now_ms) + 30000 )); while (( $(now_ms) < deadline )); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -m 1 "http://127.0.0.1:${API[$NEW]}/primary") == 200 ]] && { now_ms >"$WORK/t_api"; exit; }
    sleep 0.02; done; echo timeout >"$WORK/t_api" ) & PR3=$!
T0=$(now_ms)
curl -s -m 60 -X POST -d "{\"leader\": \"$OLD\"}" "http://127.0.0.1:${API[$OLD]}/switchover" >"$WORK/switchover.out" || true
wait $PR1 $PR2 $PR3 || true
for f in api proxy haproxy; do
  v=$(cat "$WORK/t_$f")
  if [[ $v == timeout ]]; then printf -v "D_$f" timeout; else printf -v "D_$f" '%d' $(( v - T0 )); fi
done
echo "== switchover $OLD -> $NEW, ms after the POST: new primary's GET /primary 200 at $D_api;" \
     "first new connection on it via pgwarden proxy at $D_proxy, via HAProxy at $D_haproxy"
if [[ $D_api != timeout && $D_proxy != timeout ]]; then echo "   pgwarden proxy: $(( D_proxy - D_api )) ms after the role change"; fi
if [[ $D_api != timeout && $D_haproxy != timeout ]]; then echo "   HAProxy:        $(( D_haproxy - D_api )) ms after the role change"; fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
