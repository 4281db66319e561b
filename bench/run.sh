#!/usr/bin/env bash
# bench/run.sh — compare fulcrum with HAProxy and nginx as reference balancers.
#
# One command on a fresh Debian machine (run as root so it can apt-get install
# and raise the open-file limit):   bash bench/run.sh
# See bench/README.md for what each workload means and for all settings.
#
# All traffic stays on 127.0.0.1. Everything this script starts (backends,
# balancers, wrk, the idle-connection helper, a cgroup for half-core mode) is
# stopped/removed by the EXIT trap, also on Ctrl-C or error.
set -euo pipefail

# ---------------------------------------------------------------- settings
DURATION=${DURATION:-10s}                  # wrk duration per measured run
WARMUP=${WARMUP:-2s}                       # wrk warm-up before each measured run ("0" = none)
RUNS=${RUNS:-3}                            # interleaved runs per workload; medians are reported
WORKLOADS=${WORKLOADS:-"W1 W2 W3 W4"}
BALANCERS=${BALANCERS:-"fulcrum haproxy nginx"}
FULCRUM_GOMAXPROCS=${FULCRUM_GOMAXPROCS:-1}
FULCRUM_BIN=${FULCRUM_BIN:-}               # use this binary instead of building ./cmd/fulcrum
RESULTS=${RESULTS:-0}                      # 1 = write bench/RESULTS.md
HALF_CORE=${HALF_CORE:-0}                  # 1 = limit the balancer with a CPU quota
CPU_QUOTA_PCT=${CPU_QUOTA_PCT:-50}         # the quota used in half-core mode
BAL_CPU=${BAL_CPU:-0}                      # core for the balancer under test
LOAD_CPU=${LOAD_CPU:-1}                    # core for wrk, the backends and the W4 helper
WRK_THREADS=${WRK_THREADS:-1}
W4_CONNS=${W4_CONNS:-10000}                # idle connections held in W4
W4_SETTLE=${W4_SETTLE:-3}                  # seconds to wait before reading RSS
FOREIGN_MAX_PCT=${FOREIGN_MAX_PCT:-10}      # flag runs in which other work took more CPU than this
WAIT_IDLE=${WAIT_IDLE:-0}                  # before each measurement, wait up to this many seconds for the machine to be idle
START_TIMEOUT=${START_TIMEOUT:-10s}        # how long a balancer may take to answer its first request
SKIP_INSTALL=${SKIP_INSTALL:-0}            # 1 = never call apt-get
KEEP_TMP=${KEEP_TMP:-0}                    # 1 = keep the temp dir (configs, logs, raw wrk output)

export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

declare -A WL_DESC=(
  [W1]="W1 tiny GET, keep-alive, 64 conns"
  [W2]="W2 16 KiB responses, keep-alive, 64 conns"
  [W3]="W3 new connection per request, 32 conns"
  [W4]="W4 memory per idle client conn"
)
ALL_BALANCERS="fulcrum haproxy nginx"

for w in $WORKLOADS; do [[ -n ${WL_DESC[$w]:-} ]] || die "unknown workload '$w' (known: W1 W2 W3 W4)"; done
for b in $BALANCERS; do [[ " $ALL_BALANCERS " == *" $b "* ]] || die "unknown balancer '$b' (known: $ALL_BALANCERS)"; done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"

# ---------------------------------------------------------------- cleanup
TMP=""
declare -a GROUPS_STARTED=()   # process-group ids (each started with setsid)
CGROUP_DIR=""
POLICY_RC_CREATED=0

# stop_group PGID: SIGTERM the whole process group, SIGKILL after 5s.
stop_group() {
  local pg=$1 i target=""
  # The group if it exists, else (should it not have become a group) the pid.
  if kill -0 -- "-$pg" 2>/dev/null; then target="-$pg"; elif kill -0 "$pg" 2>/dev/null; then target=$pg; fi
  if [[ -n $target ]]; then
    kill -TERM -- "$target" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 -- "$target" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 -- "$target" 2>/dev/null; then
      kill -KILL -- "$target" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  wait "$pg" 2>/dev/null || true
  local keep=() g
  for g in "${GROUPS_STARTED[@]}"; do [[ $g == "$pg" ]] || keep+=("$g"); done
  GROUPS_STARTED=("${keep[@]}")
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local g
  for g in "${GROUPS_STARTED[@]}"; do stop_group "$g"; done
  if [[ -n $CGROUP_DIR && -d $CGROUP_DIR ]]; then
    rmdir "$CGROUP_DIR" 2>/dev/null || log "could not remove cgroup $CGROUP_DIR"
  fi
  if [[ $POLICY_RC_CREATED == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  if [[ -n $TMP && -d $TMP ]]; then
    if [[ $KEEP_TMP == 1 ]]; then log "kept temp dir $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_group LOGFILE CMD...: start CMD in a new session/process group.
# Sets STARTED_PID (== its process-group id).
start_group() {
  local logf=$1
  shift
  setsid "$@" >"$logf" 2>&1 </dev/null &
  STARTED_PID=$!
  GROUPS_STARTED+=("$STARTED_PID")
  # setsid only forks when it is already a group leader, which a background job
  # of a non-interactive script never is, so the job's pid becomes the id of
  # its new process group. Wait until it has (a moment after the fork), so that
  # a kill of the group right away cannot miss it.
  local i pg
  for ((i = 0; i < 50; i++)); do
    pg=$(ps -o pgid= -p "$STARTED_PID" 2>/dev/null | tr -d ' ' || true)
    [[ -z $pg || $pg == "$STARTED_PID" ]] && return 0
    sleep 0.02
  done
  log "warning: pid $STARTED_PID did not become a process-group leader"
}

# ---------------------------------------------------------------- install
install_packages() {
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v setsid >/dev/null || missing+=(util-linux)
  command -v ps >/dev/null || missing+=(procps)
  ((${#missing[@]} == 0)) && return 0
  [[ $SKIP_INSTALL == 1 ]] && die "missing: ${missing[*]} (SKIP_INSTALL=1)"
  [[ $(id -u) == 0 ]] || die "missing: ${missing[*]}; run as root so apt-get can install them"
  log "installing ${missing[*]} with apt-get"
  # Keep the packages' own nginx/haproxy services from being started by the
  # install: the benchmark runs its own instances and must leave nothing running.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
  if [[ $POLICY_RC_CREATED == 1 ]]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
}

# ---------------------------------------------------------------- helpers
declare -A USED_PORTS=()
port_busy() { # port in use by any TCP socket on this machine?
  local hex
  hex=$(printf '%04X' "$1")
  awk -v h="$hex" 'FNR > 1 { n = split($2, a, ":"); if (a[n] == h) { f = 1; exit } } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
# pick_port: sets PICKED to a free port outside the ephemeral range.
pick_port() {
  local elo ehi lo hi p i
  read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range
  if ((elo > 12000)); then lo=10000; hi=$((elo - 1)); else lo=$((ehi + 1)); hi=65000; fi
  for ((i = 0; i < 500; i++)); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
    [[ -n ${USED_PORTS[$p]:-} ]] && continue
    port_busy "$p" && continue
    USED_PORTS[$p]=1
    PICKED=$p
    return 0
  done
  die "no free port found"
}

median() { # numbers on stdin -> median (empty if none)
  sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# CPU accounting, to tell how much of the machine other work took during a run.
cpu_total_jiffies() { # "BUSY ALL" jiffies of all CPUs (busy: user nice system irq softirq)
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}
group_jiffies() { # utime+stime of the live processes of a process group
  local pg=$1 pid st f sum=0
  for pid in $(ps -e -o pid=,pgid= | awk -v g="$pg" '$2 == g { print $1 }'); do
    st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a f <<<"${st##*) }" # fields from "state" on: utime is f[11], stime f[12]
    sum=$((sum + f[11] + f[12]))
  done
  echo "$sum"
}
# user+sys of this shell's reaped children (such as wrk), from bash's `times`,
# which must run in this shell, not in a $(...) subshell:
#   times >"$TMP/times.txt"; c=$(children_jiffies)
children_jiffies() {
  awk -v hz="$CLK_TCK" 'NR == 2 {
    s = 0
    for (i = 1; i <= 2; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); s += a[1] * 60 + a[2] }
    printf "%d", s * hz }' "$TMP/times.txt"
}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

group_rss_kib() { # summed VmRSS (KiB) of all processes in a process group
  ps -e -o pgid=,rss= | awk -v g="$1" '$1 == g { s += $2 } END { print s + 0 }'
}

# ---------------------------------------------------------------- half-core
HC_PREFIX=()
HC_MODE="full core (no CPU quota)"
setup_half_core() {
  local q=$((CPU_QUOTA_PCT * 1000)) d
  if command -v systemd-run >/dev/null && systemd-run --scope -q -p "CPUQuota=${CPU_QUOTA_PCT}%" -- true >/dev/null 2>&1; then
    HC_PREFIX=(systemd-run --scope -q -p "CPUQuota=${CPU_QUOTA_PCT}%" --)
    HC_MODE="CPU quota ${CPU_QUOTA_PCT}% of one core (systemd-run --scope)"
    return 0
  fi
  local why="systemd-run --scope not usable (no systemd as init?)"
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    if grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
      grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
      d=/sys/fs/cgroup/fulcrum-bench.$$
      if mkdir "$d" 2>/dev/null; then
        CGROUP_DIR=$d
        if echo "$q 100000" >"$d/cpu.max" 2>/dev/null; then
          HC_PREFIX=(sh -c 'echo $$ >"$0" && exec "$@"' "$d/cgroup.procs")
          HC_MODE="CPU quota ${CPU_QUOTA_PCT}% of one core (cgroup v2 cpu.max \"$q 100000\")"
          return 0
        fi
        rmdir "$d" 2>/dev/null || true
        CGROUP_DIR=""
        why+="; cgroup v2: cannot write cpu.max"
      else
        why+="; cgroup v2: cannot create $d"
      fi
    else
      why+="; cgroup v2: cpu controller not available"
    fi
  else
    why+="; no cgroup v2 at /sys/fs/cgroup"
  fi
  # cgroup v1 (cpu controller mounted on its own), as on some container hosts.
  if [[ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
    d=/sys/fs/cgroup/cpu/fulcrum-bench.$$
    if mkdir "$d" 2>/dev/null; then
      CGROUP_DIR=$d
      if echo 100000 >"$d/cpu.cfs_period_us" 2>/dev/null && echo "$q" >"$d/cpu.cfs_quota_us" 2>/dev/null; then
        HC_PREFIX=(sh -c 'echo $$ >"$0" && exec "$@"' "$d/cgroup.procs")
        HC_MODE="CPU quota ${CPU_QUOTA_PCT}% of one core (cgroup v1 cpu.cfs_quota_us=$q, period 100000)"
        return 0
      fi
      rmdir "$d" 2>/dev/null || true
      CGROUP_DIR=""
      why+="; cgroup v1: cannot set cpu.cfs_quota_us"
    else
      why+="; cgroup v1: cannot create $d"
    fi
  else
    why+="; no cgroup v1 cpu controller"
  fi
  HC_MODE="full core — half-core mode requested but UNAVAILABLE: $why"
  log "half-core mode unavailable: $why"
  return 1
}

# ---------------------------------------------------------------- setup
install_packages
command -v go >/dev/null || die "go is needed (to build fulcrum and bench/benchtool)"

if ! ulimit -n 65536 2>/dev/null; then ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; fi
NOFILE=$(ulimit -n)
# HAProxy refuses to start unless the limit covers 2 fds per connection
# (client + server side), so its maxconn, and the W4 connection count that all
# balancers can hold, follow from the limit we got.
HAPROXY_MAXCONN=$(((NOFILE - 100) / 2))
((HAPROXY_MAXCONN > 30000)) && HAPROXY_MAXCONN=30000
W4_NOTE=""
if [[ " $WORKLOADS " == *" W4 "* ]] && ((W4_CONNS > HAPROXY_MAXCONN - 100)); then
  want=$W4_CONNS
  W4_CONNS=$(((HAPROXY_MAXCONN - 100) / 1000 * 1000))
  W4_NOTE="W4 held $W4_CONNS connections instead of $want: the open-file limit is $NOFILE and could not be raised (needs root with CAP_SYS_RESOURCE); HAProxy needs 2 fds per connection"
  log "warning: $W4_NOTE"
fi

NCPU=$(nproc)
if ((NCPU < 2)); then
  log "warning: only $NCPU CPU; balancer and load generator share it"
  BAL_CPU=0 LOAD_CPU=0
fi

TMP=$(mktemp -d /tmp/fulcrum-bench.XXXXXX)
chmod 755 "$TMP" # the nginx workers (user nobody) read the backend files
log "temp dir $TMP"

if [[ $HALF_CORE == 1 ]]; then setup_half_core || true; fi

log "building bench/benchtool"
(cd "$REPO" && go build -o "$TMP/benchtool" ./bench/benchtool) >"$TMP/benchtool-build.log" 2>&1 ||
  { cat "$TMP/benchtool-build.log" >&2; die "cannot build bench/benchtool"; }

declare -A NA_REASON=()
FULCRUM=""
if [[ " $BALANCERS " == *" fulcrum "* ]]; then
  if [[ -n $FULCRUM_BIN ]]; then
    FULCRUM=$FULCRUM_BIN
  else
    log "building fulcrum (./cmd/fulcrum)"
    if (cd "$REPO" && go build -o "$TMP/fulcrum" ./cmd/fulcrum) >"$TMP/fulcrum-build.log" 2>&1; then
      FULCRUM=$TMP/fulcrum
    else
      NA_REASON[fulcrum]="build failed: $(awk '!/^#/ { print; exit }' "$TMP/fulcrum-build.log")"
      log "fulcrum ${NA_REASON[fulcrum]} — its results will be n/a"
    fi
  fi
fi

pick_port; B1=$PICKED
pick_port; B2=$PICKED
pick_port; B3=$PICKED
declare -A LB_PORT=()
for b in $ALL_BALANCERS; do pick_port; LB_PORT[$b]=$PICKED; done

# ----- backends: one nginx instance, three ports, on the load-generator core
mkdir -p "$TMP/backend/www" "$TMP/backend/tmp"
head -c 16384 /dev/zero | tr '\0' 'x' >"$TMP/backend/www/16k"
chmod -R a+rX "$TMP/backend"
nginx_common_tmp() { # temp paths inside the instance's own dir
  local d=$1
  printf '    client_body_temp_path %s/tmp/client;\n    proxy_temp_path %s/tmp/proxy;\n    fastcgi_temp_path %s/tmp/fastcgi;\n    uwsgi_temp_path %s/tmp/uwsgi;\n    scgi_temp_path %s/tmp/scgi;\n' "$d" "$d" "$d" "$d" "$d"
}
cat >"$TMP/backend/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/backend/nginx.pid;
error_log $TMP/backend/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
$(nginx_common_tmp "$TMP/backend")
    server {
        listen 127.0.0.1:$B1 backlog=4096;
        listen 127.0.0.1:$B2 backlog=4096;
        listen 127.0.0.1:$B3 backlog=4096;
        root $TMP/backend/www;
        location = / { return 200 "ok"; }
        location = /16k { }
    }
}
EOF

# ----- reference balancers
mkdir -p "$TMP/nginx-lb/tmp" "$TMP/haproxy" "$TMP/fulcrum-run"
cat >"$TMP/nginx-lb/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx-lb/nginx.pid;
error_log $TMP/nginx-lb/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 30000; }
http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
$(nginx_common_tmp "$TMP/nginx-lb")
    upstream backends {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        server 127.0.0.1:$B3;
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:${LB_PORT[nginx]} backlog=4096;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF

cat >"$TMP/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $HAPROXY_MAXCONN

defaults
    mode http
    maxconn $HAPROXY_MAXCONN
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 300s
    timeout http-keep-alive 300s

frontend fe
    bind 127.0.0.1:${LB_PORT[haproxy]}
    default_backend be

backend be
    balance roundrobin
    http-reuse always
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
    server b3 127.0.0.1:$B3
EOF

cat >"$TMP/fulcrum-run/config.json" <<EOF
{"listen_addr": "127.0.0.1:${LB_PORT[fulcrum]}", "admin_addr": "", "strategy": "round_robin", "health_check_interval": "30s", "max_fail_count": 3, "access_log": false, "log_level": "warn", "backends": [{"url":"http://127.0.0.1:$B1"},{"url":"http://127.0.0.1:$B2"},{"url":"http://127.0.0.1:$B3"}]}
EOF

# Config checks, so that a typo shows up before any run.
nginx -t -q -p "$TMP/nginx-lb/" -c "$TMP/nginx-lb/nginx.conf" -e "$TMP/nginx-lb/error.log" >&2 || die "nginx balancer config invalid"
nginx -t -q -p "$TMP/backend/" -c "$TMP/backend/nginx.conf" -e "$TMP/backend/error.log" >&2 || die "nginx backend config invalid"
haproxy -c -q -f "$TMP/haproxy/haproxy.cfg" >&2 || die "haproxy config invalid"

log "starting backends (nginx) on 127.0.0.1:$B1,$B2,$B3, core $LOAD_CPU"
start_group "$TMP/backend/stdout.log" taskset -c "$LOAD_CPU" \
  nginx -p "$TMP/backend/" -c "$TMP/backend/nginx.conf" -e "$TMP/backend/error.log" -g 'daemon off;'
BACKEND_PID=$STARTED_PID
for p in $B1 $B2 $B3; do
  "$TMP/benchtool" probe -url "http://127.0.0.1:$p/" -timeout 10s ||
    { cat "$TMP/backend/error.log" "$TMP/backend/stdout.log" >&2 || true; die "backend on port $p did not come up"; }
done

# ---------------------------------------------------------------- balancers
# start_balancer NAME: starts it pinned to BAL_CPU; sets BAL_PID. Returns 1 if it
# did not answer within START_TIMEOUT.
start_balancer() {
  local b=$1 logf=$TMP/$1-$2.log
  case $b in
  fulcrum)
    [[ -n $FULCRUM ]] || return 1
    start_group "$logf" "${HC_PREFIX[@]}" taskset -c "$BAL_CPU" \
      env GOMAXPROCS="$FULCRUM_GOMAXPROCS" "$FULCRUM" -config "$TMP/fulcrum-run/config.json"
    ;;
  haproxy)
    start_group "$logf" "${HC_PREFIX[@]}" taskset -c "$BAL_CPU" \
      haproxy -db -f "$TMP/haproxy/haproxy.cfg"
    ;;
  nginx)
    start_group "$logf" "${HC_PREFIX[@]}" taskset -c "$BAL_CPU" \
      nginx -p "$TMP/nginx-lb/" -c "$TMP/nginx-lb/nginx.conf" -e "$TMP/nginx-lb/error.log" -g 'daemon off;'
    ;;
  esac
  BAL_PID=$STARTED_PID
  if ! "$TMP/benchtool" probe -url "http://127.0.0.1:${LB_PORT[$b]}/" -timeout "$START_TIMEOUT" 2>>"$logf"; then
    log "$b did not answer on 127.0.0.1:${LB_PORT[$b]} within $START_TIMEOUT; last log lines:"
    tail -n 5 "$logf" >&2 || true
    stop_group "$BAL_PID"
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------- workloads
RAW=$TMP/raw.tsv # workload run balancer value p99ms errors requests note
: >"$RAW"

to_ms() { # wrk time ("812.00us", "2.34ms", "1.02s", "1.50m") -> ms
  awk -v t="$1" 'BEGIN {
    if (t ~ /us$/) { sub(/us$/, "", t); printf "%.3f", t / 1000 }
    else if (t ~ /ms$/) { sub(/ms$/, "", t); printf "%.3f", t }
    else if (t ~ /m$/) { sub(/m$/, "", t); printf "%.3f", t * 60000 }
    else if (t ~ /h$/) { sub(/h$/, "", t); printf "%.3f", t * 3600000 }
    else if (t ~ /s$/) { sub(/s$/, "", t); printf "%.3f", t * 1000 }
    else print "" }'
}

# run_wrk OUTFILE CONNS DURATION URL [extra wrk args...]
run_wrk() {
  local out=$1 conns=$2 dur=$3 url=$4
  shift 4
  start_group "$out" taskset -c "$LOAD_CPU" wrk -t"$WRK_THREADS" -c"$conns" -d"$dur" --latency "$@" "$url"
  local pid=$STARTED_PID rc=0
  wait "$pid" || rc=$?
  stop_group "$pid"
  return "$rc"
}

measure_http() { # workload run balancer
  local w=$1 r=$2 b=$3 conns path extra=()
  case $w in
  W1) conns=64 path=/ ;;
  W2) conns=64 path=/16k ;;
  W3) conns=32 path=/ extra=(-H 'Connection: close') ;;
  esac
  local url="http://127.0.0.1:${LB_PORT[$b]}$path" out=$TMP/wrk-$w-$r-$b.txt
  if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
    run_wrk "$out.warmup" "$conns" "$WARMUP" "$url" "${extra[@]}" || true
  fi
  local t0 a0 o0 c0 t1 a1 o1 c1 g0 g1 wrk_ok=1
  read -r t0 a0 < <(cpu_total_jiffies)
  g0=$(group_jiffies "$BAL_PID")
  o0=$((g0 + $(group_jiffies "$BACKEND_PID")))
  times >"$TMP/times.txt"
  c0=$(children_jiffies)
  run_wrk "$out" "$conns" "$DURATION" "$url" "${extra[@]}" || wrk_ok=0
  read -r t1 a1 < <(cpu_total_jiffies)
  g1=$(group_jiffies "$BAL_PID")
  o1=$((g1 + $(group_jiffies "$BACKEND_PID")))
  times >"$TMP/times.txt"
  c1=$(children_jiffies)
  # Share of all CPU time in the run that went to processes other than the
  # balancer, the backends and wrk (a few % is the kernel's own share).
  local foreign
  foreign=$(awk -v t=$((t1 - t0)) -v o=$((o1 - o0 + c1 - c0)) -v a=$((a1 - a0)) \
    'BEGIN { f = a > 0 ? 100 * (t - o) / a : 0; if (f < 0) f = 0; printf "%.0f", f }')
  if ((wrk_ok == 0)); then
    log "$w run $r $b: wrk failed:"
    tail -n 5 "$out" >&2 || true
    printf '%s\t%s\t%s\t\t\t\t\twrk failed\n' "$w" "$r" "$b" >>"$RAW"
    return
  fi
  local rps p99 reqs errs non2xx
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  reqs=$(awk '/requests in/ { print $1 }' "$out")
  errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  errs=$((${errs:-0} + ${non2xx:-0}))
  # The balancer's own CPU time (utime+stime of its process group over the
  # measured run) per request served, in microseconds.
  local cpureq=""
  if [[ -n $reqs ]] && ((reqs > 0)); then
    cpureq=$(awk -v j=$((g1 - g0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", j * 1e6 / hz / n }')
  fi
  local note=""
  if [[ -n $reqs ]] && ((reqs > 0)) && ((errs * 100 > reqs)); then note="errors>1%"; fi
  if ((foreign > FOREIGN_MAX_PCT)); then note="${note:+$note; }other work took ${foreign}% of the CPUs"; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$r" "$b" "$rps" "$p99" "$errs" "$reqs" "$note" "$foreign" "$cpureq" >>"$RAW"
  log "$w run $r/$RUNS $b: ${rps:-?} req/s, p99 ${p99:-?} ms, balancer CPU ${cpureq:-?} us/req, errors $errs, other work ${foreign}% CPU${note:+ ($note)}"
}

measure_idle() { # W4: RSS delta per idle keep-alive client connection
  local r=$1 b=$2 before after out
  out=$TMP/w4-$r-$b.txt
  sleep 1
  before=$(group_rss_kib "$BAL_PID")
  start_group "$out" taskset -c "$LOAD_CPU" "$TMP/benchtool" idle \
    -addr "127.0.0.1:${LB_PORT[$b]}" -n "$W4_CONNS" -max-hold 10m
  local hp=$STARTED_PID i opened=""
  for ((i = 0; i < 1800; i++)); do
    if grep -q '^ready ' "$out"; then break; fi
    kill -0 "$hp" 2>/dev/null || break
    sleep 0.1
  done
  read -r _ opened _ < <(grep '^ready ' "$out" || echo "x 0 $W4_CONNS") || true
  sleep "$W4_SETTLE"
  after=$(group_rss_kib "$BAL_PID")
  kill -USR1 "$hp" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "$hp" 2>/dev/null || break; sleep 0.1; done
  stop_group "$hp"
  local alive
  alive=$(awk '/^alive/ { print $2 }' "$out")
  local note=""
  if [[ ${opened:-0} != "$W4_CONNS" ]]; then note="only ${opened:-0}/$W4_CONNS opened ($(grep -m1 'first error' "$out" || true))"; fi
  if [[ -n $alive && $alive != "${opened:-0}" ]]; then note="${note:+$note; }${alive}/${opened:-0} still open at the end"; fi
  local kib=""
  if ((${opened:-0} > 0)); then kib=$(awk -v a="$after" -v b="$before" -v n="$opened" 'BEGIN { printf "%.2f", (a - b) / n }'); fi
  printf '%s\t%s\t%s\t%s\t\t\t%s\t%s\n' W4 "$r" "$b" "$kib" "${opened:-0}" "$note" >>"$RAW"
  log "W4 run $r/$RUNS $b: RSS ${before} -> ${after} KiB, ${opened:-0} conns, ${kib:-?} KiB/conn${note:+ ($note)}"
}

# Is anything else using the CPUs? (Other work on the machine skews the numbers.)
cpu_busy_pct() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
  sleep 2
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}
IDLE_BUSY=$(cpu_busy_pct)
IDLE_NOTE=""
if ((IDLE_BUSY > 10)); then
  IDLE_NOTE="the machine was not idle before the run: ${IDLE_BUSY}% of all CPUs busy with other work (load average $(cut -d' ' -f1-3 /proc/loadavg)); expect noisy numbers"
  log "warning: $IDLE_NOTE"
fi

log "mode: $HC_MODE; balancer on core $BAL_CPU, wrk + backends on core $LOAD_CPU"
log "workloads: $WORKLOADS; balancers: $BALANCERS; runs: $RUNS; duration: $DURATION (+ $WARMUP warm-up)"

# wait_idle: on a shared machine, wait (up to WAIT_IDLE s) until other work
# uses at most FOREIGN_MAX_PCT of the CPUs (only the idle backends are ours now).
wait_idle() {
  ((WAIT_IDLE > 0)) || return 0
  local start=$SECONDS busy
  while :; do
    busy=$(cpu_busy_pct)
    ((busy <= FOREIGN_MAX_PCT)) && return 0
    if ((SECONDS - start >= WAIT_IDLE)); then
      log "machine still ${busy}% busy after waiting ${WAIT_IDLE}s; measuring anyway"
      return 0
    fi
  done
}

for w in $WORKLOADS; do
  for ((r = 1; r <= RUNS; r++)); do
    for b in $BALANCERS; do
      if [[ -n ${NA_REASON[$b]:-} ]]; then
        printf '%s\t%s\t%s\t\t\t\t\tn/a\n' "$w" "$r" "$b" >>"$RAW"
        continue
      fi
      wait_idle
      if ! start_balancer "$b" "$w-$r"; then
        printf '%s\t%s\t%s\t\t\t\t\tdid not start\n' "$w" "$r" "$b" >>"$RAW"
        continue
      fi
      if [[ $w == W4 ]]; then measure_idle "$r" "$b"; else measure_http "$w" "$r" "$b"; fi
      stop_group "$BAL_PID"
      sleep 0.5
    done
  done
done

stop_group "$BACKEND_PID"

# ---------------------------------------------------------------- report
declare -A MED_V=() MED_P=() MED_C=()
for w in $WORKLOADS; do
  for b in $ALL_BALANCERS; do
    MED_C[$w.$b]=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $3 == b && $10 != "" { print $10 }' "$RAW" | median)
    MED_V[$w.$b]=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $3 == b && $4 != "" { print $4 }' "$RAW" | median)
    MED_P[$w.$b]=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $3 == b && $5 != "" { print $5 }' "$RAW" | median)
  done
done

cell() { # workload balancer
  local w=$1 b=$2 v=${MED_V[$1.$2]} p=${MED_P[$1.$2]}
  if [[ " $BALANCERS " != *" $b "* ]]; then echo "not run"; return; fi
  if [[ -z $v ]]; then echo "n/a"; return; fi
  if [[ $w == W4 ]]; then
    printf '%.1f KiB/conn' "$v"
  else
    printf '%.0f req/s, p99 %.2f ms' "$v" "$p"
    if [[ -n ${MED_C[$w.$b]} ]]; then printf ', CPU %.1f µs/req' "${MED_C[$w.$b]}"; fi
  fi
}
ratio() { # workload a b
  local x=${MED_V[$1.$2]} y=${MED_V[$1.$3]}
  if [[ -z $x || -z $y ]]; then echo "n/a"; return; fi
  awk -v x="$x" -v y="$y" 'BEGIN { if (y + 0 == 0) print "n/a"; else printf "%.2f", x / y }'
}

TABLE=$TMP/table.md
{
  echo "| workload | fulcrum | haproxy | nginx | fulcrum/haproxy | fulcrum/nginx |"
  echo "|---|---|---|---|---|---|"
  for w in $WORKLOADS; do
    desc=${WL_DESC[$w]}
    [[ $w == W4 ]] && desc="$desc ($W4_CONNS held; KiB/conn, lower is better)"
    echo "| $desc | $(cell "$w" fulcrum) | $(cell "$w" haproxy) | $(cell "$w" nginx) | $(ratio "$w" fulcrum haproxy) | $(ratio "$w" fulcrum nginx) |"
  done
} >"$TABLE"

NOTES=$TMP/notes.md
{
  for b in $ALL_BALANCERS; do
    if [[ -n ${NA_REASON[$b]:-} ]]; then echo "- $b: ${NA_REASON[$b]}"; fi
  done
  if [[ -n $W4_NOTE ]]; then echo "- $W4_NOTE"; fi
  if [[ -n $IDLE_NOTE ]]; then echo "- $IDLE_NOTE"; fi
  # Problems of single runs; runs disturbed by other work are summed up in one line.
  awk -F'\t' -v max="$FOREIGN_MAX_PCT" '
    { n8 = $8; sub(/(; )?other work took [0-9]+% of the CPUs/, "", n8) }
    n8 != "" && n8 != "n/a" { printf "- %s run %s %s: %s\n", $1, $2, $3, n8 }
    $9 != "" { runs++; if ($9 + 0 > max) { busy++; if ($9 + 0 > worst) worst = $9 + 0 } }
    END {
      if (busy) printf "- %d of %d measured runs shared the machine with other work taking more than %d%% of all CPUs (up to %d%%; per run in the table of all runs): treat those figures as rough\n", busy, runs, max, worst
    }' "$RAW"
} >"$NOTES"

RAWMD=$TMP/raw.md
{
  echo "| workload | run | balancer | req/s or KiB/conn | p99 ms | balancer CPU µs/req | errors | requests or conns | other work, % CPU | note |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $10, $6, $7, $9, $8 }' "$RAW"
} >"$RAWMD"

echo
echo "Medians of $RUNS interleaved run(s); $HC_MODE; duration $DURATION per run."
echo
cat "$TABLE"
if [[ -s $NOTES ]]; then
  echo
  echo "Notes:"
  cat "$NOTES"
fi

if [[ $RESULTS == 1 ]]; then
  # awk reads all input (head would make the writer die of SIGPIPE under pipefail)
  ver_nginx=$(nginx -v 2>&1 | awk 'NR == 1' || true)
  ver_haproxy=$(haproxy -v 2>&1 | awk 'NR == 1 { sub(/ - .*/, ""); print }' || true)
  ver_wrk=$(wrk -v 2>&1 | awk 'NR == 1 { sub(/ Copyright.*/, ""); print }' || true)
  ver_go=$(go version)
  rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "no commit")
  cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  {
    echo "# Benchmark results"
    echo
    echo "Latest run of \`bench/run.sh\` (see bench/README.md). Regenerate with \`RESULTS=1 bash bench/run.sh\`."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: \`$(uname -a)\`"
    echo "- cpus: $NCPU ($cpu_model); memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- versions: $ver_nginx; $ver_haproxy; $ver_wrk; $ver_go; fulcrum at $rev"
    echo "- settings: BALANCERS=\"$BALANCERS\" WORKLOADS=\"$WORKLOADS\" RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP WRK_THREADS=$WRK_THREADS FULCRUM_GOMAXPROCS=$FULCRUM_GOMAXPROCS HALF_CORE=$HALF_CORE"
    echo "- mode: $HC_MODE; balancer pinned to core $BAL_CPU, wrk + 3 nginx backends on core $LOAD_CPU"
    echo
    echo "## Medians"
    echo
    cat "$TABLE"
    if [[ -s $NOTES ]]; then
      echo
      echo "Notes:"
      echo
      cat "$NOTES"
    fi
    echo
    echo "## All runs (in the order they ran)"
    echo
    cat "$RAWMD"
  } >"$BENCH_DIR/RESULTS.md"
  log "wrote $BENCH_DIR/RESULTS.md"
fi
