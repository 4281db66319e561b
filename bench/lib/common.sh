# bench/lib/common.sh — sourced by bench/run.sh: process groups and their cleanup,
# package install, free ports, CPU and memory accounting, half-core mode.
# Expects log, die and the settings of run.sh to be defined.

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
  command -v openssl >/dev/null || missing+=(openssl)
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

