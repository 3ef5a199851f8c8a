# Functions of bench/failover-bench.sh (sourced). Globals: WORK, PGWARDEN, CSV.
# Every process started here is recorded by PID; cleanup_all kills them, then any process whose
# working directory lies inside $WORK (PostgreSQL's postmaster and backends chdir to their data
# directory), all by PID.

PGBIN=/usr/lib/postgresql/15/bin
PW=benchpw
STARTED_PIDS=()
FROZEN_PIDS=()

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 2; }
now() { date +%s.%N | cut -c1-14; }
# a - b with 3 decimals
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
fge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

ensure_dependencies() {
  local missing=()
  command -v patroni >/dev/null || missing+=(patroni)
  /usr/bin/python3 -c 'import etcd' 2>/dev/null || missing+=(python3-etcd)  # Patroni's interpreter
  command -v haproxy >/dev/null || missing+=(haproxy)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} (benchmark dependencies, Debian packages)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} failed"
  fi
  for p in etcd psql setpriv python3 curl; do
    command -v $p >/dev/null || die "missing: $p"
  done
  [[ -x $PGBIN/postgres ]] || die "PostgreSQL 15 not found in $PGBIN"
  id postgres >/dev/null 2>&1 || die "no OS user postgres"
}

# N distinct free loopback ports (all sockets held until every port is picked).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

start_bg() {  # start_bg LOGFILE CMD... ; sets BG_PID
  "${@:2}" >>"$1" 2>&1 &
  BG_PID=$!
  STARTED_PIDS+=("$BG_PID")
}

# psql_at PORT SQL: one value per line, empty on any error; bounded (connect 1 s, total 4 s).
psql_at() {
  PGPASSWORD=$PW PGCONNECT_TIMEOUT=1 timeout -s KILL 4 "$PGBIN/psql" -X -h 127.0.0.1 -p "$1" \
    -U postgres -d postgres -Atqc "$2" 2>/dev/null || true
}
is_primary() { [[ $(psql_at "$1" "select pg_is_in_recovery()") == f ]]; }

postgres_pids() {  # postmaster of member $1 and its children
  local pidfile=$CDIR/$1/data/postmaster.pid pm
  [[ -f $pidfile ]] || return 0
  pm=$(head -1 "$pidfile" 2>/dev/null || true)
  [[ $pm =~ ^[0-9]+$ ]] && kill -0 "$pm" 2>/dev/null || return 0
  echo "$pm" $(pgrep -P "$pm" || true)
}

# healthy: exactly one primary, which streams to both others, one of them synchronous.
# Sets HEALTHY_PRIMARY.
healthy() {
  local n prim=() rep
  HEALTHY_PRIMARY=
  for n in "${NAMES[@]}"; do is_primary "${PGPORT[$n]}" && prim+=("$n"); done
  ((${#prim[@]} == 1)) || return 1
  rep=$(psql_at "${PGPORT[${prim[0]}]}" "select count(*) filter (where state = 'streaming') || ' ' || count(*) filter (where sync_state in ('sync','quorum')) from pg_stat_replication")
  [[ $rep == "2 "[1-9]* ]] || return 1
  HEALTHY_PRIMARY=${prim[0]}
}

wait_healthy() {  # wait_healthy SECONDS
  local until=$(($(date +%s) + $1))
  while (($(date +%s) < until)); do
    healthy && return 0
    sleep 0.5
  done
  return 1
}

dsn_writable() {
  [[ $(PGPASSWORD=$PW PGCONNECT_TIMEOUT=2 timeout -s KILL 6 "$PGBIN/psql" -X "$DSN" -Atqc "select pg_is_in_recovery()" 2>/dev/null) == f ]]
}

# ---------------------------------------------------------------------------------------------
# One cluster of one system

system_settings() {
  SYS=$1
  case $SYS in
    pgwarden | pgwarden-proxy) KIND=pgw; TTL=2 ;;
    patroni) KIND=pat; TTL=30; LOOP_WAIT=10; RETRY_TIMEOUT=10; HA_CHECK="inter 3s fall 3 rise 2"; HA_TIMEOUT_CHECK=5s ;;
    patroni-fast) KIND=pat; TTL=20; LOOP_WAIT=1; RETRY_TIMEOUT=3; HA_CHECK="inter 1s fall 2 rise 1"; HA_TIMEOUT_CHECK=1s ;;
    *) die "unknown system '$SYS' (pgwarden, pgwarden-proxy, patroni, patroni-fast)" ;;
  esac
}

PG_PARAMETERS='        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        max_connections: 40
        shared_buffers: 16MB
        wal_keep_size: 128MB
        max_wal_size: 256MB
        min_wal_size: 32MB
        wal_receiver_status_interval: 1s
        wal_retrieve_retry_interval: 200ms
        fsync: "off"'

write_pgwarden_config() {  # member name
  local n=$1
  cat >"$CDIR/$n/node.yml" <<YAML
scope: bench
namespace: /service
name: $n
restapi:
  listen: 127.0.0.1:${APIPORT[$n]}
  connect_address: 127.0.0.1:${APIPORT[$n]}
etcd3:
  hosts: ["127.0.0.1:$ETCD_PORT"]
bootstrap:
  dcs:
    maximum_lag_on_failover: 1MB
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
$PG_PARAMETERS
  initdb:
    - encoding: UTF8
    - data-checksums
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:${PGPORT[$n]}
  connect_address: 127.0.0.1:${PGPORT[$n]}
  data_dir: $CDIR/$n/data
  bin_dir: $PGBIN
  pgpass: $CDIR/$n/pgpass
  authentication:
    superuser: {username: postgres, password: "$PW"}
    replication: {username: replicator, password: "$PW"}
  parameters:
    unix_socket_directories: $CDIR/$n
log:
  level: INFO
pgwarden:
  os_user: postgres
YAML
}

write_patroni_config() {  # member name
  local n=$1
  cat >"$CDIR/$n/patroni.yml" <<YAML
scope: bench
namespace: /service
name: $n
log:
  level: INFO
restapi:
  listen: 127.0.0.1:${APIPORT[$n]}
  connect_address: 127.0.0.1:${APIPORT[$n]}
etcd3:
  hosts: ["127.0.0.1:$ETCD_PORT"]
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
$PG_PARAMETERS
  initdb:
    - encoding: UTF8
    - data-checksums
postgresql:
  listen: 127.0.0.1:${PGPORT[$n]}
  connect_address: 127.0.0.1:${PGPORT[$n]}
  data_dir: $CDIR/$n/data
  bin_dir: $PGBIN
  pgpass: $CDIR/$n/pgpass
  authentication:
    superuser: {username: postgres, password: "$PW"}
    replication: {username: replicator, password: "$PW"}
  basebackup:
    checkpoint: fast
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
  parameters:
    unix_socket_directories: $CDIR/$n
tags: {nofailover: false, noloadbalance: false, clonefrom: false, nosync: false}
YAML
  chown postgres:postgres "$CDIR/$n/patroni.yml"
}

start_manager() {  # member name
  local n=$1
  if [[ $KIND == pgw ]]; then
    start_bg "$CDIR/$n/manager.log" "$PGWARDEN" agent -c "$CDIR/$n/node.yml"
  else
    # setpriv execs: $! is Patroni's own PID
    start_bg "$CDIR/$n/manager.log" setpriv --reuid=postgres --regid=postgres --init-groups \
      env HOME="$CDIR/$n" patroni "$CDIR/$n/patroni.yml"
  fi
  MGR[$n]=$BG_PID
}

start_balancer() {
  BAL_PID=
  case $SYS in
    pgwarden)
      DSN="host=127.0.0.1,127.0.0.1,127.0.0.1 port=${PGPORT[n1]},${PGPORT[n2]},${PGPORT[n3]} user=postgres password=$PW dbname=postgres sslmode=disable target_session_attrs=read-write"
      return 0 ;;
    pgwarden-proxy)
      cat >"$CDIR/proxy.yml" <<YAML
scope: bench
namespace: /service
etcd3:
  hosts: ["127.0.0.1:$ETCD_PORT"]
proxy:
  listen: 127.0.0.1
  primary_port: $BAL_PORT
  status_port: $BAL_STATUS_PORT
log:
  level: INFO
YAML
      start_bg "$CDIR/proxy.log" "$PGWARDEN" proxy -c "$CDIR/proxy.yml" ;;
    patroni*)
      {
        printf 'global\n    maxconn 200\n\ndefaults\n    mode tcp\n    log global\n    retries 2\n'
        printf '    timeout client 30m\n    timeout connect 4s\n    timeout server 30m\n    timeout check %s\n\n' "$HA_TIMEOUT_CHECK"
        printf 'listen primary\n    bind 127.0.0.1:%s\n    option httpchk OPTIONS /primary\n' "$BAL_PORT"
        printf '    http-check expect status 200\n'
        printf '    default-server %s on-marked-down shutdown-sessions\n' "$HA_CHECK"
        for n in "${NAMES[@]}"; do
          printf '    server %s 127.0.0.1:%s maxconn 100 check port %s\n' "$n" "${PGPORT[$n]}" "${APIPORT[$n]}"
        done
      } >"$CDIR/haproxy.cfg"
      start_bg "$CDIR/haproxy.log" haproxy -db -f "$CDIR/haproxy.cfg" ;;
  esac
  BAL_PID=$BG_PID
  DSN="host=127.0.0.1 port=$BAL_PORT user=postgres password=$PW dbname=postgres sslmode=disable"
}

cluster_up() {  # system
  system_settings "$1"
  CLUSTER_NO=$((${CLUSTER_NO:-0} + 1))
  CLUSTER_FAILED=1  # until it is healthy
  CDIR=$WORK/$CLUSTER_NO-$SYS
  mkdir -p "$CDIR"
  chmod 755 "$CDIR"
  NAMES=(n1 n2 n3)
  declare -gA PGPORT APIPORT MGR
  local ports
  read -r -a ports <<<"$(free_ports 10)"
  ETCD_PORT=${ports[0]} ETCD_PEER=${ports[1]} BAL_PORT=${ports[2]} BAL_STATUS_PORT=${ports[3]}
  PGPORT=([n1]=${ports[4]} [n2]=${ports[5]} [n3]=${ports[6]})
  APIPORT=([n1]=${ports[7]} [n2]=${ports[8]} [n3]=${ports[9]})
  MGR=()
  start_bg "$CDIR/etcd.log" etcd --name e1 --data-dir "$CDIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "e1=http://127.0.0.1:$ETCD_PEER"
  ETCD_PID=$BG_PID
  local i
  for i in $(seq 50); do
    ETCDCTL_API=3 timeout 3 etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1 && break
    ((i == 50)) && { log "etcd did not start"; return 1; }
    sleep 0.2
  done
  local n t0
  t0=$(now)
  for n in "${NAMES[@]}"; do
    mkdir -p "$CDIR/$n"
    chown postgres:postgres "$CDIR/$n"
    if [[ $KIND == pgw ]]; then write_pgwarden_config "$n"; else write_patroni_config "$n"; fi
    start_manager "$n"
  done
  log "$SYS: 3 members starting (etcd 127.0.0.1:$ETCD_PORT, PostgreSQL ${PGPORT[n1]} ${PGPORT[n2]} ${PGPORT[n3]}, API ${APIPORT[n1]} ${APIPORT[n2]} ${APIPORT[n3]})"
  wait_healthy 240 || { log "$SYS: no healthy cluster after 240 s"; return 1; }
  log "$SYS: healthy in $(fsub "$(now)" "$t0") s, primary $HEALTHY_PRIMARY"
  [[ -n $(psql_at "${PGPORT[$HEALTHY_PRIMARY]}" "create table log (event_id integer not null, srv integer default inet_server_port(), ts timestamptz default clock_timestamp()); select 1") ]] ||
    { log "$SYS: cannot create the table"; return 1; }
  start_balancer
  for i in $(seq 120); do
    dsn_writable && break
    ((i == 120)) && { log "$SYS: the writer's path ($DSN) is not writable after 60 s"; return 1; }
    sleep 0.5
  done
  CLUSTER_FAILED=
  return 0
}

kill_pids() {  # SIGNAL PID...: signal, then wait (bounded) for the processes to vanish
  local sig=$1 p i
  shift
  (($#)) || return 0
  kill -CONT "$@" 2>/dev/null || true
  kill "-$sig" "$@" 2>/dev/null || true
  for i in $(seq 50); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) != Z ]] && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "$@"; do { wait "$p"; } 2>/dev/null || true; done
}

# PIDs of processes whose working directory is inside $1 (PostgreSQL's, pg_basebackup's...).
pids_with_cwd_under() {
  local d p cwd
  for d in /proc/[0-9]*; do
    cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
    [[ $cwd == "$1"/* || $cwd == "$1" ]] && { p=${d#/proc/}; [[ $p != "$$" ]] && echo "$p"; }
  done
  return 0
}

# What each member looks like (for a failed event): role, and the primary's replication rows.
diagnose() {
  local n
  for n in "${NAMES[@]}"; do
    echo "$n port ${PGPORT[$n]} manager pid ${MGR[$n]:-} alive $(kill -0 "${MGR[$n]:-0}" 2>/dev/null && echo yes || echo no)" \
      "in_recovery=$(psql_at "${PGPORT[$n]}" "select pg_is_in_recovery()")" \
      "replication: $(psql_at "${PGPORT[$n]}" "select string_agg(application_name || ' ' || state || ' ' || sync_state, '; ') from pg_stat_replication")" \
      "receiver: $(psql_at "${PGPORT[$n]}" "select status || ' ' || coalesce(sender_port::text, '') from pg_stat_wal_receiver")"
  done
}

# Keeps the logs of a cluster whose event failed next to the results (each file's last 1 MB).
keep_logs() {
  local dest=$OUT_DIR/failover-$STAMP-logs/$(basename "$CDIR") f
  mkdir -p "$dest"
  diagnose >"$dest/members.txt" 2>&1
  for f in "$CDIR"/*.log "$CDIR"/n*/manager.log "$CDIR"/n*/data/log/*.log "$CDIR"/event-*/*; do
    [[ -f $f ]] || continue
    local rel=${f#"$CDIR"/}
    mkdir -p "$dest/$(dirname "$rel")"
    tail -c 1000000 "$f" >"$dest/$rel"
  done
  log "logs of the failed cluster kept in $dest"
}

cluster_down() {
  [[ -n ${CDIR:-} ]] || return 0
  [[ ${CLUSTER_FAILED:-} == 1 ]] && keep_logs
  CLUSTER_FAILED=
  local n pids=()
  ((${#FROZEN_PIDS[@]})) && kill -CONT "${FROZEN_PIDS[@]}" 2>/dev/null
  FROZEN_PIDS=()
  [[ -n ${WRITER_PID:-} ]] && kill_pids KILL "$WRITER_PID"
  WRITER_PID=
  for n in "${!MGR[@]}"; do pids+=("${MGR[$n]}"); done
  kill_pids KILL "${pids[@]}"  # managers first: none restarts its PostgreSQL
  pids=()
  for n in "${NAMES[@]}"; do pids+=($(postgres_pids "$n")); done
  pids+=($(pids_with_cwd_under "$CDIR"))
  kill_pids KILL "${pids[@]}"
  [[ -n ${BAL_PID:-} ]] && kill_pids KILL "$BAL_PID"
  kill_pids KILL "$ETCD_PID"
  BAL_PID=
  MGR=()
  rm -rf "$CDIR"/n*/data "$CDIR/etcd"  # keep the logs until exit
  CDIR=
}

cleanup_all() {
  local rc=$?
  set +e
  exec 2>/dev/null
  cluster_down || true
  local p
  for p in "${STARTED_PIDS[@]}"; do kill -CONT "$p"; kill -KILL "$p"; done 2>/dev/null
  kill_pids KILL $(pids_with_cwd_under "$WORK") || true
  if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit $rc
}

# ---------------------------------------------------------------------------------------------
# Measurements

etcd_revision() {
  ETCDCTL_API=3 timeout 3 etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint status -w json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])' 2>/dev/null || echo 0
}
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
proc_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

measure_idle() {  # system seconds -> IDLE_RSS IDLE_CPU BAL_RSS BAL_CPU
  local secs=$2 hz n t0=0 t1=0 b0=0 b1=0 rss=0
  hz=$(getconf CLK_TCK)
  log "$1: idle for $secs s (managers' CPU and RSS)"
  for n in "${NAMES[@]}"; do t0=$((t0 + $(proc_ticks "${MGR[$n]}"))); done
  [[ -n $BAL_PID ]] && b0=$(proc_ticks "$BAL_PID")
  local e0 e1 r0 r1
  e0=$(proc_ticks "$ETCD_PID") r0=$(etcd_revision)
  sleep "$secs"
  e1=$(proc_ticks "$ETCD_PID") r1=$(etcd_revision)
  ETCD_CPU=$(awk -v d=$((e1 - e0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
  ETCD_REV=$(awk -v d=$((r1 - r0)) -v s="$secs" 'BEGIN { printf "%.1f", d / s }')
  for n in "${NAMES[@]}"; do
    t1=$((t1 + $(proc_ticks "${MGR[$n]}")))
    rss=$((rss + $(proc_rss_kb "${MGR[$n]}")))
  done
  IDLE_CPU=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
  IDLE_RSS=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
  BAL_RSS= BAL_CPU=
  if [[ -n $BAL_PID ]]; then
    b1=$(proc_ticks "$BAL_PID")
    BAL_CPU=$(awk -v d=$((b1 - b0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
    BAL_RSS=$(awk -v k="$(proc_rss_kb "$BAL_PID")" 'BEGIN { printf "%.1f", k / 1024 }')
  fi
  log "$1: managers RSS $IDLE_RSS MB (sum of 3), idle CPU $IDLE_CPU % of one core; balancer RSS ${BAL_RSS:--} MB CPU ${BAL_CPU:--} %; etcd CPU $ETCD_CPU %, $ETCD_REV writes/s"
}

last_ack_epoch() {  # writer log -> epoch of its last acknowledged insert (0 if none)
  python3 - "$1" <<'PY'
import calendar, sys, time
t = 0
try:
    for line in open(sys.argv[1], errors="replace"):
        if line[24:30] == "Logged":
            t = calendar.timegm(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000
except FileNotFoundError:
    pass
print(t)
PY
}

# run_event SYSTEM EVENT RUN NO -> EV_CSV (16 fields), EV_NOTE, EV_FATAL
run_event() {
  local sys=$1 ev=$2 run=$3 no=$4
  local ed=$CDIR/event-$no-$ev
  mkdir -p "$ed"
  EV_CSV=",,,,,,,,,,,,,,," EV_NOTE= EV_FATAL=
  wait_healthy 180 || { EV_NOTE="not healthy before the event"; EV_FATAL=1 CLUSTER_FAILED=1; return 1; }
  local P=$HEALTHY_PRIMARY
  local oldport=${PGPORT[$P]} base=$((no * 1000000))
  [[ -n $(psql_at "$oldport" "insert into log values ($base); select 1") ]] ||
    { EV_NOTE="cannot insert the base row"; EV_FATAL=1 CLUSTER_FAILED=1; return 1; }
  start_bg /dev/null "$PGWARDEN" demo-app --dsn "$DSN" --interval 100ms --mode reconnect \
    --log-file "$ed/writer.log" --duration 900s
  WRITER_PID=$BG_PID
  local i
  for i in $(seq 100); do
    fge "$(last_ack_epoch "$ed/writer.log")" 1 && break
    ((i == 100)) && { EV_NOTE="the writer acknowledged nothing in 20 s"; EV_FATAL=1 CLUSTER_FAILED=1; return 1; }
    sleep 0.2
  done
  sleep "$PRE_S"

  local fault_pids=() T0
  # the host's processes: the manager, its children (a watchdog, if any) and PostgreSQL's
  if [[ $ev != switchover ]]; then
    fault_pids=("${MGR[$P]}" $(pgrep -P "${MGR[$P]}" || true) $(postgres_pids "$P"))
    read -r -a fault_pids <<<"$(printf '%s\n' "${fault_pids[@]}" | sort -un | tr '\n' ' ')"
  fi
  T0=$(now)
  case $ev in
    switchover)
      if [[ $KIND == pgw ]]; then
        timeout -s KILL 60 "$PGWARDEN" switchover --force -c "$CDIR/$P/node.yml" >"$ed/switchover.out" 2>&1 || EV_NOTE="switchover command failed"
      else
        timeout -s KILL 60 patronictl -c "$CDIR/$P/patroni.yml" switchover --force >"$ed/switchover.out" 2>&1 || EV_NOTE="switchover command failed"
      fi ;;
    crash) kill -KILL "${fault_pids[@]}" 2>/dev/null || true ;;
    freeze) kill -STOP "${fault_pids[@]}" 2>/dev/null || true; FROZEN_PIDS=("${fault_pids[@]}") ;;
    *) die "unknown event '$ev' (switchover, crash, freeze)" ;;
  esac
  log "$sys run $run: $ev of primary $P at $T0 (pids ${fault_pids[*]:-})"

  local deadline promo= NEW= PROMO_T= PROMO_SEEN= prev_tp=$T0 tp cont= tcont= restarted= THEALTHY= m
  deadline=$(awk -v t="$T0" -v ttl="$TTL" 'BEGIN { printf "%d", t + 3 * ttl + 150 }')
  local thaw_at
  thaw_at=$(awk -v t="$T0" -v ttl="$TTL" 'BEGIN { printf "%.3f", t + ttl + 5 }')
  while :; do
    tp=$(now)
    fge "$tp" "$deadline" && break
    if [[ $ev == freeze && -z $cont ]] && fge "$tp" "$thaw_at"; then
      kill -CONT "${fault_pids[@]}" 2>/dev/null || true
      FROZEN_PIDS=()
      cont=1 tcont=$tp
      log "$sys run $run: SIGCONT after $(fsub "$tp" "$T0") s"
    fi
    if [[ -z $promo ]]; then
      for m in "${NAMES[@]}"; do
        [[ $m == "$P" ]] && continue
        if is_primary "${PGPORT[$m]}"; then promo=1 NEW=$m PROMO_T=$prev_tp PROMO_SEEN=$(now); break; fi
      done
      [[ -n $promo ]] && log "$sys run $run: $NEW is primary (between $(fsub "$PROMO_T" "$T0") and $(fsub "$(now)" "$T0") s)"
    fi
    if [[ $ev == crash && -n $promo && -z $restarted ]]; then
      start_manager "$P"
      restarted=1
    fi
    if [[ $ev == freeze && -n $cont ]]; then  # what the old primary holds, before any rewind
      psql_at "$oldport" "select event_id || '|' || coalesce(srv::text, '') || '|' || extract(epoch from ts) from log where event_id > $base and ts >= to_timestamp($T0)" >>"$ed/old-primary-rows"
    fi
    if [[ ($ev != freeze || -n $cont) && ($ev != crash || -n $restarted) ]]; then
      # The Patroni freeze case may end with the OLD primary as leader: any single primary counts.
      # Without a promotion seen, a resumed old primary counts only after another full ttl.
      if [[ -n $promo ]] || { [[ $ev == freeze ]] && fge "$tp" "$(awk -v t="$tcont" -v ttl="$TTL" 'BEGIN { print t + ttl }')"; }; then
        if healthy; then THEALTHY=$(now); break; fi
      fi
    fi
    prev_tp=$tp
    sleep 0.2
  done
  if [[ $ev == freeze && -z $cont ]]; then kill -CONT "${fault_pids[@]}" 2>/dev/null || true; FROZEN_PIDS=(); fi
  if [[ $ev == crash && -z $restarted ]]; then start_manager "$P"; fi

  local TEND note=$EV_NOTE
  if [[ -n $THEALTHY ]]; then
    # the window ends with the writer's first acknowledgement after the cluster is whole again
    for i in $(seq 300); do
      fge "$(last_ack_epoch "$ed/writer.log")" "$THEALTHY" && break
      sleep 0.2
    done
    sleep 0.5
  else
    note="${note:+$note; }no healthy cluster within $(fsub "$deadline" "$T0") s"
    EV_FATAL=1 CLUSTER_FAILED=1
  fi
  TEND=$(now)
  kill -TERM "$WRITER_PID" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$WRITER_PID" 2>/dev/null || break; sleep 0.1; done
  kill_pids KILL "$WRITER_PID"
  WRITER_PID=

  local final_primary=${HEALTHY_PRIMARY:-}
  if [[ -z $final_primary ]]; then
    for m in "${NAMES[@]}"; do is_primary "${PGPORT[$m]}" && final_primary=$m && break; done
  fi
  [[ -n $final_primary ]] && psql_at "${PGPORT[$final_primary]}" \
    "select event_id || '|' || coalesce(srv::text, '') || '|' || extract(epoch from ts) from log where event_id > $base" >"$ed/final-rows"
  local res stale_from=0  # stale acks: a frozen primary's acks after the promotion
  [[ $ev == freeze && -n $PROMO_T ]] && stale_from=$PROMO_T
  res=$(python3 "$HERE/lib/analyze.py" --log "$ed/writer.log" --t0 "$T0" --tend "$TEND" --base "$base" \
     --old-port "$oldport" --promo-t "$stale_from" --final "$ed/final-rows" --sampled "$ed/old-primary-rows" 2>>"$ed/analyze.err") ||
    res="nan,,,,,"
  [[ -z $final_primary ]] && note="${note:+$note; }no primary at the end: lost not checked"
  local promote_s= healthy_s=
  [[ -n $PROMO_SEEN ]] && promote_s=$(fsub "$PROMO_SEEN" "$T0")
  [[ -n $THEALTHY ]] && healthy_s=$(fsub "$THEALTHY" "$T0")
  EV_CSV="$res,$promote_s,$healthy_s"
  # reorder: outage,failed,lost,stale,promote,healthy,acked,attempts
  IFS=, read -r o f l s a t <<<"$res"
  EV_CSV="$o,$f,$l,$s,$promote_s,$healthy_s,$a,$t,$P,${final_primary:-},,,,,,"
  EV_NOTE=$note
  log "$sys run $run $ev: outage ${o}s, failed $f, lost $l, stale acks $s, promoted after ${promote_s:--}s, healthy after ${healthy_s:--}s (primary $P -> ${final_primary:-none})"
  [[ -z $EV_FATAL ]]
}
