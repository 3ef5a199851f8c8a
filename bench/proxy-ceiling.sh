#!/usr/bin/env bash
# What any proxy hop costs on this machine (a measurement, not a test). No cluster: one
# PostgreSQL 15 on 127.0.0.1 and four ways to reach it, interleaved round by round:
#   direct      pgbench -> PostgreSQL
#   pgwarden    pgbench -> pgwarden's data plane (tests/proxy/pgwarden-proxy-static, 2 loops)
#   haproxy     pgbench -> HAProxy 2.6 (mode tcp, 2 threads, no health check)
#   sockmap     pgbench -> bench/lib/sockmap_splice.c: a forwarder whose data path is entirely in
#               the kernel (BPF sockmap redirect), the floor of what a hop can cost
# For each: pgbench -S -c 8 -j 2 tps, and per transaction the cross-CPU interrupts (RES + CAL in
# /proc/interrupts, i.e. wake-ups of a task on the other CPU) and context switches (/proc/stat).
#
#   bench/proxy-ceiling.sh [path/to/pgwarden-proxy-static]     (as root)
# Environment: ROUNDS (5), SECONDS_PER_RUN (8).
set -euo pipefail
cd "$(dirname "$0")/.."

STATIC=${1:-build/tests/proxy/pgwarden-proxy-static}
ROUNDS=${ROUNDS:-5}
T=${SECONDS_PER_RUN:-8}
PGBIN=/usr/lib/postgresql/15/bin

[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
if [[ ! -x $STATIC ]]; then
  echo "building $STATIC" >&2
  cmake --build "$(dirname "$STATIC")/../.." --target pgwarden-proxy-static >/dev/null
fi
command -v haproxy >/dev/null || apt-get install -y haproxy >/dev/null
for p in pgbench gcc python3; do command -v $p >/dev/null || { echo "missing: $p" >&2; exit 2; }; done

WORK=$(mktemp -d /tmp/proxy-ceiling.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  exec 2>/dev/null
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  [[ -f $WORK/data/postmaster.pid ]] && kill -QUIT "$(head -1 "$WORK/data/postmaster.pid")" 2>/dev/null
  sleep 0.5
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PG=$(free_port); PX=$(free_port); HA=$(free_port); SM=$(free_port)
chown postgres "$WORK"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/data" -A trust >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/pg.log" -w start -o \
  "-p $PG -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK -c fsync=off -c shared_buffers=64MB" >/dev/null
export PGUSER=postgres PGDATABASE=postgres PGHOST=127.0.0.1
pgbench -i -q -s 10 -p "$PG" >/dev/null 2>&1

"$STATIC" --listen 127.0.0.1 --primary-port "$PX" --primary "n1=127.0.0.1:$PG" --threads 2 >"$WORK/px.log" 2>&1 &
PIDS+=($!)
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 4000
    nbthread 2
defaults
    mode tcp
    timeout client 30m
    timeout connect 4s
    timeout server 30m
listen primary
    bind 127.0.0.1:$HA
    server n1 127.0.0.1:$PG
CFG
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
gcc -O2 -Wall -o "$WORK/sockmap_splice" bench/lib/sockmap_splice.c
"$WORK/sockmap_splice" "$SM" "$PG" >"$WORK/sockmap.log" 2>&1 &
PIDS+=($!)
sleep 0.5
TARGETS=(direct pgwarden haproxy sockmap)
declare -A PORT=([direct]=$PG [pgwarden]=$PX [haproxy]=$HA [sockmap]=$SM)
for t in "${TARGETS[@]}"; do
  psql -XAtq -p "${PORT[$t]}" -c 'select 1' >/dev/null || { echo "$t does not answer; logs in $WORK" >&2; cat "$WORK"/*.log >&2; exit 1; }
done

ipis() { awk '/^ *(RES|CAL):/ {for (i = 2; i <= NF && $i ~ /^[0-9]+$/; ++i) s += $i} END {print s}' /proc/interrupts; }
ctxt() { awk '/^ctxt/ {print $2}' /proc/stat; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
declare -A TPS IPI CS
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  line="round $r:"
  for t in "${TARGETS[@]}"; do
    i0=$(ipis); c0=$(ctxt)
    out=$(pgbench -n -S -c 8 -j 2 -T "$T" -p "${PORT[$t]}" 2>&1) || true
    i1=$(ipis); c1=$(ctxt)
    tps=$(awk '/^tps/ {printf "%d", $3; exit}' <<<"$out")
    tx=$(awk '/transactions actually processed/ {split($NF, a, "/"); print a[1]; exit}' <<<"$out")
    TPS[$t]+="$tps "
    IPI[$t]+="$(awk -v a=$((i1 - i0)) -v n="${tx:-1}" 'BEGIN {printf "%.3f", a / n}') "
    CS[$t]+="$(awk -v a=$((c1 - c0)) -v n="${tx:-1}" 'BEGIN {printf "%.2f", a / n}') "
    line+=" $t $tps"
  done
  echo "$line"
done
direct=$(tr ' ' '\n' <<<"${TPS[direct]}" | grep . | median)
echo "== pgbench -S, 8 clients, -j 2, medians of $ROUNDS interleaved runs of ${T}s"
printf '%-9s %9s %7s %12s %12s   %s\n' target tps ratio "IPIs/tx" "ctx-sw/tx" "runs (tps)"
for t in "${TARGETS[@]}"; do
  m=$(tr ' ' '\n' <<<"${TPS[$t]}" | grep . | median)
  printf '%-9s %9.0f %6.0f%% %12.3f %12.2f   %s\n' "$t" "$m" "$(awk -v a="$m" -v b="$direct" 'BEGIN {print 100 * a / b}')" \
    "$(tr ' ' '\n' <<<"${IPI[$t]}" | grep . | median)" "$(tr ' ' '\n' <<<"${CS[$t]}" | grep . | median)" "${TPS[$t]% }"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
