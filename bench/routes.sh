#!/usr/bin/env bash
# bench/routes.sh — W1 (tiny GET, keep-alive, 64 connections) through a flat
# config and through a config of 1,000 host routes (20,000 routes: each host
# has 19 path routes and a catch-all), interleaved, RUNS times each. The
# request's Host is the 500th host, so lookup goes through the host index.
# Reports the median req/s of each and their ratio (issue 11 asks >= 0.95).
#
#   bash bench/routes.sh            (needs wrk and nginx: apt-get install wrk nginx-light)
#
# Everything listens on 127.0.0.1 and is stopped by the EXIT trap.
set -euo pipefail
DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
BAL_CPU=${BAL_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
export PATH="$PATH:/usr/sbin:/sbin"
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx" >&2; exit 1; }

(cd "$REPO" && go build -o "$TMP/fulcrum" ./cmd/fulcrum)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes 1; pid $TMP/nginx/pid; error_log $TMP/nginx/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:19081; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:19082; location / { return 200 "ok"; } }
  server { listen 127.0.0.1:19083; location / { return 200 "ok"; } } }
CONF
taskset -c "$LOAD_CPU" nginx -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' & PIDS+=($!)
BACKENDS='["http://127.0.0.1:19081","http://127.0.0.1:19082","http://127.0.0.1:19083"]'
echo "{\"listen_addr\":\"127.0.0.1:19090\",\"admin_addr\":\"\",\"log_level\":\"warn\",\"backends\":$BACKENDS}" >"$TMP/flat.json"
python3 - "$TMP/routes.json" "$BACKENDS" <<'PY'
import json, sys
routes = []
for h in range(1000):
    host = f"site{h}.example.com"
    for p in range(19):
        routes.append({"match": {"host": [host], "path_prefix": f"/p{p}/"}, "pool": "web"})
    routes.append({"match": {"host": [host]}, "pool": "web"})
cfg = {"admin_addr": "", "log_level": "warn", "pools": {"web": {"backends": json.loads(sys.argv[2])}},
       "listeners": [{"name": "public", "listen_addr": "127.0.0.1:19090", "routes": routes}]}
json.dump(cfg, open(sys.argv[1], "w"))
PY
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run() { # run NAME CONFIG -> prints "req/s cpu_us_per_req"
  taskset -c "$BAL_CPU" env GOMAXPROCS=1 "$TMP/fulcrum" -config "$2" >"$TMP/$1.log" 2>&1 & local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null -H 'Host: site500.example.com' http://127.0.0.1:19090/p7/x && break; sleep 0.1; done
  taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s -H 'Host: site500.example.com' http://127.0.0.1:19090/p7/x >/dev/null
  local t0; t0=$(cpu_ticks $pid)
  local out; out=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"$DURATION" -H 'Host: site500.example.com' http://127.0.0.1:19090/p7/x)
  local t1; t1=$(cpu_ticks $pid)
  kill $pid; wait $pid 2>/dev/null || true
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local reqs; reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $(awk -v t=$((t1-t0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t/hz*1e6/n}')"
}
declare -a FLAT ROUTES
for i in $(seq "$RUNS"); do
  f=$(run flat "$TMP/flat.json"); r=$(run routes "$TMP/routes.json")
  echo "run $i: flat $f | 1000 host routes $r" >&2
  FLAT+=("${f%% *}"); ROUTES+=("${r%% *}")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mf=$(median "${FLAT[@]}"); mr=$(median "${ROUTES[@]}")
echo "W1 median req/s: flat $mf, 1000 host routes $mr, ratio $(awk -v a="$mr" -v b="$mf" 'BEGIN {printf "%.3f", a/b}')"
