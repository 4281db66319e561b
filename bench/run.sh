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
WORKLOADS=${WORKLOADS:-"W1 W2 W3 W4 W5 W6"}
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
  [W5]="W5 HTTPS tiny GET, keep-alive, TLS 1.3 ECDSA P-256, 64 conns"
  [W6]="W6 full TLS 1.3 handshake per request, 32 conns"
)
is_tls() { [[ $1 == W5 || $1 == W6 ]]; } # workloads that run against the balancers' TLS configs
ALL_BALANCERS="fulcrum haproxy nginx"

for w in $WORKLOADS; do [[ -n ${WL_DESC[$w]:-} ]] || die "unknown workload '$w' (known: W1 W2 W3 W4 W5 W6)"; done
for b in $BALANCERS; do [[ " $ALL_BALANCERS " == *" $b "* ]] || die "unknown balancer '$b' (known: $ALL_BALANCERS)"; done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"

# shellcheck source=lib/common.sh
source "$BENCH_DIR/lib/common.sh"

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
# shellcheck source=lib/configs.sh
source "$BENCH_DIR/lib/configs.sh"

log "starting backends (nginx) on 127.0.0.1:$B1,$B2,$B3, core $LOAD_CPU"
start_group "$TMP/backend/stdout.log" taskset -c "$LOAD_CPU" \
  nginx -p "$TMP/backend/" -c "$TMP/backend/nginx.conf" -e "$TMP/backend/error.log" -g 'daemon off;'
BACKEND_PID=$STARTED_PID
for p in $B1 $B2 $B3; do
  "$TMP/benchtool" probe -url "http://127.0.0.1:$p/" -timeout 10s ||
    { cat "$TMP/backend/error.log" "$TMP/backend/stdout.log" >&2 || true; die "backend on port $p did not come up"; }
done

# ---------------------------------------------------------------- balancers
# start_balancer NAME TAG [-tls]: starts it pinned to BAL_CPU, with its plain-HTTP
# config, or with "-tls" its HTTPS one (W5, W6); sets BAL_PID. Returns 1 if it
# did not answer within START_TIMEOUT.
start_balancer() {
  local b=$1 logf=$TMP/$1-$2.log tls=${3:-} scheme=http
  [[ -n $tls ]] && scheme=https
  case $b in
  fulcrum)
    [[ -n $FULCRUM ]] || return 1
    start_group "$logf" "${HC_PREFIX[@]}" taskset -c "$BAL_CPU" \
      env GOMAXPROCS="$FULCRUM_GOMAXPROCS" "$FULCRUM" -config "$TMP/fulcrum-run/config$tls.json"
    ;;
  haproxy)
    start_group "$logf" "${HC_PREFIX[@]}" taskset -c "$BAL_CPU" \
      haproxy -db -f "$TMP/haproxy/haproxy$tls.cfg"
    ;;
  nginx)
    start_group "$logf" "${HC_PREFIX[@]}" taskset -c "$BAL_CPU" \
      nginx -p "$TMP/nginx-lb/" -c "$TMP/nginx-lb/nginx$tls.conf" -e "$TMP/nginx-lb/error.log" -g 'daemon off;'
    ;;
  esac
  BAL_PID=$STARTED_PID
  if ! "$TMP/benchtool" probe -url "$scheme://127.0.0.1:${LB_PORT[$b]}/" -timeout "$START_TIMEOUT" 2>>"$logf"; then
    log "$b did not answer on 127.0.0.1:${LB_PORT[$b]} within $START_TIMEOUT; last log lines:"
    tail -n 5 "$logf" >&2 || true
    stop_group "$BAL_PID"
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------- workloads
RAW=$TMP/raw.tsv # workload run balancer value p99ms errors requests note foreign% cpu-us/req p50ms
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
# With URL "tlsload://HOST:PORT/PATH" it runs W6's client (benchtool tlsload)
# instead of wrk, on the same core and with the same accounting.
run_wrk() {
  local out=$1 conns=$2 dur=$3 url=$4
  shift 4
  if [[ $url == tlsload://* ]]; then
    local hp=${url#tlsload://}
    start_group "$out" taskset -c "$LOAD_CPU" "$TMP/benchtool" tlsload -addr "${hp%%/*}" -path "/${hp#*/}" \
      -c "$conns" -d "$dur" -sni bench.test
  else
    start_group "$out" taskset -c "$LOAD_CPU" wrk -t"$WRK_THREADS" -c"$conns" -d"$dur" --latency "$@" "$url"
  fi
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
  W5) conns=64 path=/ ;;
  W6) conns=32 path=/ ;;
  esac
  local url="http://127.0.0.1:${LB_PORT[$b]}$path" out=$TMP/wrk-$w-$r-$b.txt
  case $w in
  W5) url="https://127.0.0.1:${LB_PORT[$b]}$path" ;;
  W6) url="tlsload://127.0.0.1:${LB_PORT[$b]}$path" ;;
  esac
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
  local rps p50 p99 reqs errs non2xx resumed=0
  if [[ $w == W6 ]]; then # benchtool tlsload's key-value lines
    rps=$(awk '$1 == "rps" { print $2 }' "$out")
    p50=$(awk '$1 == "p50_ms" { print $2 }' "$out")
    p99=$(awk '$1 == "p99_ms" { print $2 }' "$out")
    reqs=$(awk '$1 == "requests" { print $2 }' "$out")
    errs=$(awk '$1 == "errors" { print $2 }' "$out")
    resumed=$(awk '$1 == "resumed" { print $2 }' "$out")
  else
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    reqs=$(awk '/requests in/ { print $1 }' "$out")
    errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    errs=$((${errs:-0} + ${non2xx:-0}))
  fi
  # The balancer's own CPU time (utime+stime of its process group over the
  # measured run) per request served, in microseconds.
  local cpureq=""
  if [[ -n $reqs ]] && ((reqs > 0)); then
    cpureq=$(awk -v j=$((g1 - g0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", j * 1e6 / hz / n }')
  fi
  local note=""
  if [[ -n $reqs ]] && ((reqs > 0)) && ((errs * 100 > reqs)); then note="errors>1%"; fi
  if ((${resumed:-0} > 0)); then note="${note:+$note; }$resumed handshakes resumed"; fi
  if ((foreign > FOREIGN_MAX_PCT)); then note="${note:+$note; }other work took ${foreign}% of the CPUs"; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$r" "$b" "$rps" "$p99" "$errs" "$reqs" "$note" "$foreign" "$cpureq" "$p50" >>"$RAW"
  log "$w run $r/$RUNS $b: ${rps:-?} req/s, p50 ${p50:-?} ms, p99 ${p99:-?} ms, balancer CPU ${cpureq:-?} us/req, errors $errs, other work ${foreign}% CPU${note:+ ($note)}"
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
      tlsarg=""
      if is_tls "$w"; then tlsarg=-tls; fi
      if ! start_balancer "$b" "$w-$r" $tlsarg; then
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

# shellcheck source=lib/report.sh
source "$BENCH_DIR/lib/report.sh"
