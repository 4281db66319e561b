#!/bin/bash
# reload_scale.sh BINARY [N] [ROUNDS]: issue 11's reload-at-scale measurement.
# Starts BINARY with a flat config of N backends (default 10000) on closed
# loopback ports 20000.. (health checks fail; interval 30s), times an
# unchanged POST /admin/reload and ROUNDS (default 3) reloads that each
# replace N/10 backends, and compares memory after them with a fresh start of
# the final config. Uses 127.0.0.1:18480 (traffic) and :18481 (admin).
# Memory figures are taken 5 s after the last action, after a forced GC
# (/debug/pprof/heap?gc=1). Needs python3, curl, bc.
set -u
BIN=$1; N=${2:-10000}; R=$((N/10)); ROUNDS=${3:-3}
D=$(mktemp -d); CFG=$D/cfg.json; A=http://127.0.0.1:18481
trap 'rm -rf "$D"' EXIT
python3 - "$CFG" "$N" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
json.dump({"listen_addr": "127.0.0.1:18480", "admin_addr": "127.0.0.1:18481",
           "strategy": "least_connections", "health_check_interval": "30s",
           "backends": ["http://127.0.0.1:%d" % p for p in range(20000, 20000 + n)]}, open(out, "w"))
PY
start() {
	"$BIN" -config "$1" >"$D/log" 2>&1 &
	PID=$!
	for _ in $(seq 1 400); do curl -s -o /dev/null $A/admin/backends && break; sleep 0.05; done
}
mem() {
	curl -s -o /dev/null "$A/debug/pprof/heap?gc=1"
	curl -s $A/metrics >"$D/m.txt"
	echo "RSS $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' /proc/$PID/status)" \
		"heap_inuse $(awk '/^go_memstats_heap_inuse_bytes/ {printf "%.1f MB", $2/1e6}' "$D/m.txt")" \
		"stack $(awk '/^go_memstats_stack_inuse_bytes/ {printf "%.1f MB", $2/1e6}' "$D/m.txt")" \
		"goroutines $(awk '/^go_goroutines/ {print $2}' "$D/m.txt") /metrics lines $(wc -l <"$D/m.txt")"
}
t0=$(date +%s.%N); start "$CFG"; t1=$(date +%s.%N)
echo "start-up to first admin answer: $(echo "$t1 - $t0" | bc) s"
sleep 5; echo "fresh: $(mem)"
echo "unchanged reload: $(curl -s -o /dev/null -w '%{time_total}s %{http_code}' -XPOST $A/admin/reload)"
for k in $(seq 1 "$ROUNDS"); do
	python3 - "$CFG" "$N" "$R" "$k" <<'PY'
import json, sys
cfg, n, r, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = json.load(open(cfg))
first = 20000 + n + (k - 1) * r  # r ports never used before
c["backends"] = c["backends"][r:] + ["http://127.0.0.1:%d" % p for p in range(first, first + r)]
json.dump(c, open(cfg, "w"))
PY
	echo "reload $k (replace $R): $(curl -s -o /dev/null -w '%{time_total}s %{http_code}' -XPOST $A/admin/reload)"
	sleep 2
done
sleep 5; echo "after $ROUNDS reloads: $(mem)"
kill $PID; wait $PID 2>/dev/null
start "$CFG"; sleep 5; echo "fresh start with the final config: $(mem)"
kill $PID; wait $PID 2>/dev/null
