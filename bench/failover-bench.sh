#!/usr/bin/env bash
# Failover benchmark (issues 3 and 6): pgwarden against Patroni 3.0 on the same machine, the
# same workload and the same faults, interleaved per round. Not a test. Everything on 127.0.0.1
# in one temp dir; every process started here is killed by PID on exit (trap), nothing is left
# running. Run as root (PostgreSQL and Patroni run as the OS user `postgres`).
#
#   bench/failover-bench.sh [path/to/pgwarden]
#
# Systems (SYSTEMS, comma-separated, default all four; one at a time, each cluster torn down
# before the next one starts):
#   pgwarden        3 pgwarden agents (default timing: ttl 2s), writer through libpq's
#                   multi-host string with target_session_attrs=read-write
#   pgwarden-proxy  the same agents + `pgwarden proxy`, writer through its primary port
#   patroni         Patroni 3.0 (Debian) with its defaults ttl 30 / loop_wait 10 / retry_timeout
#                   10, HAProxy 2.6 the standard way (httpchk OPTIONS /primary, inter 3s fall 3
#                   rise 2, on-marked-down shutdown-sessions), writer through HAProxy
#   patroni-fast    Patroni at its shortest supported timing ttl 20 / loop_wait 1 /
#                   retry_timeout 3, HAProxy inter 1s fall 2 rise 1, timeout check 1s
# All: 3 members, synchronous_mode on, etcd 3.4 (v3 API; Patroni through `etcd3:`).
#
# Events (EVENTS, default switchover,crash,freeze), RUNS rounds (default 5):
#   switchover  pgwarden switchover --force / patronictl switchover --force
#   crash       SIGKILL of the primary's manager, postmaster and its children together; after
#               the failover the manager is started again and the old primary must rejoin
#   freeze      SIGSTOP of the same processes for ttl + 5 s, then SIGCONT; records whether the
#               old primary acknowledged a write after the new primary's promotion
# The writer is `pgwarden demo-app --interval 100ms --mode reconnect` (a new connection per
# insert). Per event: write outage, failed attempts, acknowledged rows lost, stale acks.
# Per system (first round): the managers' RSS (sum of 3) and idle CPU over IDLE_SECONDS (60).
#
# Output: bench/results/failover-<date>.csv (raw) and .md (medians, ratios to pgwarden, machine).
# Environment: RUNS (5), EVENTS, SYSTEMS, IDLE_SECONDS (60), OUT_DIR (bench/results),
#              KEEP_WORK=1 (keep the temp dir's logs), PRE_S (3: writer warm-up before a fault).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PGWARDEN=$(readlink -f "${1:-$REPO/build/src/pgwarden}")
RUNS=${RUNS:-5}
EVENTS=${EVENTS:-switchover,crash,freeze}
SYSTEMS=${SYSTEMS:-pgwarden,pgwarden-proxy,patroni,patroni-fast}
IDLE_SECONDS=${IDLE_SECONDS:-60}
OUT_DIR=${OUT_DIR:-$REPO/bench/results}
PRE_S=${PRE_S:-3}

source "$HERE/lib/common.sh"

[[ -x $PGWARDEN ]] || die "no pgwarden binary at $PGWARDEN (build it: cmake --build build --target pgwarden)"
[[ $(id -u) == 0 ]] || die "run as root (PostgreSQL and Patroni then run as the OS user postgres)"
ensure_dependencies

STAMP=$(date -u +%Y%m%d-%H%M)
mkdir -p "$OUT_DIR"
CSV=$OUT_DIR/failover-$STAMP.csv
MD=$OUT_DIR/failover-$STAMP.md
echo "system,event,run,outage_s,failed,lost,stale_acks,promote_s,healthy_s,acked,attempts,old_primary,new_primary,mgr_rss_mb,mgr_cpu_pct,bal_rss_mb,bal_cpu_pct,etcd_cpu_pct,etcd_writes_per_s,note" >"$CSV"

WORK=$(mktemp -d /tmp/failover-bench.XXXXXX)
chmod 755 "$WORK"
trap cleanup_all EXIT
trap 'exit 130' INT TERM

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_TS=$(date -u '+%Y-%m-%d %H:%M UTC')
log "work dir $WORK; systems $SYSTEMS; events $EVENTS; $RUNS run(s); load average $LOAD_BEFORE"

IFS=, read -r -a SYS_LIST <<<"$SYSTEMS"
IFS=, read -r -a EV_LIST <<<"$EVENTS"
EVENT_NO=0
for run in $(seq 1 "$RUNS"); do
  for sys in "${SYS_LIST[@]}"; do
    log "=== run $run/$RUNS: $sys ==="
    if ! cluster_up "$sys"; then
      log "!! $sys: cluster did not come up; skipping this round (logs in $CDIR)"
      echo "$sys,setup,$run,,,,,,,,,,,,,,,,,cluster did not come up" >>"$CSV"
      cluster_down
      continue
    fi
    if [[ $run == 1 && $IDLE_SECONDS -gt 0 ]]; then
      measure_idle "$sys" "$IDLE_SECONDS"
      echo "$sys,idle,$run,,,,,,,,,,,$IDLE_RSS,$IDLE_CPU,$BAL_RSS,$BAL_CPU,$ETCD_CPU,$ETCD_REV," >>"$CSV"
    fi
    for ev in "${EV_LIST[@]}"; do
      EVENT_NO=$((EVENT_NO + 1))
      if run_event "$sys" "$ev" "$run" "$EVENT_NO"; then :; else
        log "!! $sys $ev run $run: $EV_NOTE"
      fi
      echo "$sys,$ev,$run,$EV_CSV,$EV_NOTE" >>"$CSV"
      if [[ -n $EV_FATAL ]]; then
        log "!! $sys: cluster unusable after $ev; rest of this round skipped"
        break
      fi
    done
    cluster_down
  done
done

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$HERE/lib/report.py" --csv "$CSV" --out "$MD" --load-before "$LOAD_BEFORE" \
  --load-after "$LOAD_AFTER" --started "$START_TS" --runs "$RUNS" \
  --pgwarden-version "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --patroni-version "$(patroni --version 2>/dev/null | awk '{print $2}')" \
  --haproxy-version "$(haproxy -v 2>/dev/null | head -1 | awk '{print $3}')" \
  --etcd-version "$(etcd --version 2>/dev/null | head -1 | awk '{print $3}')"
log "raw data: $CSV"
log "table:    $MD"
cat "$MD"
