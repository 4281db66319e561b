#!/usr/bin/env bash
# bench/testssl.sh — testssl.sh against fulcrum's TLS listener with the default TLS settings.
#
#   bash bench/testssl.sh               # ECDSA P-256, then RSA 2048 (KEYS="ecdsa rsa")
#   KEYS=ecdsa bash bench/testssl.sh    # only the ECDSA run
#   FULCRUM_BIN=/path/fulcrum bash bench/testssl.sh
#
# For each key type: makes a self-signed certificate with openssl, starts a
# tiny backend (benchtool serve) and fulcrum (flat config, tls_cert_file and
# tls_key_file, nothing else about TLS) on 127.0.0.1, runs
#   testssl.sh -p -s -f -S -U (protocols, cipher categories, forward secrecy,
#   server defaults, vulnerabilities)
# and judges its JSON with `benchtool sslcheck`: it fails on any finding of
# severity MEDIUM or higher other than those about the test certificate
# itself (trust chain, CRL/OCSP URIs, validity, names, CAA, stapling), on a
# check that could not run, unless TLS 1.3 is offered and SSLv2, SSLv3,
# TLS 1.0 and TLS 1.1 are not. The human-readable output is saved as
# bench/testssl-KEY.txt (OUT_DIR to change). Exit 0 when every run passes.
# Everything it starts is stopped by PID on exit, also on Ctrl-C or error.
set -euo pipefail

KEYS=${KEYS:-"ecdsa rsa"}
FULCRUM_BIN=${FULCRUM_BIN:-}
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
OUT_DIR=${OUT_DIR:-$BENCH_DIR}
TESTSSL=${TESTSSL:-}

log() { printf '[testssl] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

TMP=""
declare -a PIDS=()
cleanup() {
  local rc=$? p i
  set +e
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  [[ -n $TMP && -d $TMP ]] && rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_pid() { # stop one process this script started, by its PID
  local p=$1 i keep=() q
  kill -TERM "$p" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  for q in "${PIDS[@]}"; do [[ $q == "$p" ]] || keep+=("$q"); done
  PIDS=("${keep[@]}")
}

if [[ -z $TESTSSL ]]; then
  for c in testssl testssl.sh; do command -v "$c" >/dev/null && { TESTSSL=$(command -v "$c"); break; }; done
fi
if [[ -z $TESTSSL && $(id -u) == 0 ]]; then
  log "installing testssl.sh with apt-get"
  apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q testssl.sh >&2 || true
  TESTSSL=$(command -v testssl || command -v testssl.sh || true)
fi
[[ -n $TESTSSL ]] || die "testssl.sh is not installed (Debian: apt-get install testssl.sh)"
command -v openssl >/dev/null || die "openssl is needed for the test certificate"
command -v go >/dev/null || die "go is needed to build fulcrum and bench/benchtool"

TMP=$(mktemp -d /tmp/fulcrum-testssl.XXXXXX)
TESTSSL_VERSION=$("$TESTSSL" --version 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | awk '$1 ~ /^testssl/ && $2 ~ /^[0-9]/ { print $1, $2; exit }')
log "temp dir $TMP; $TESTSSL_VERSION"
(cd "$REPO" && go build -o "$TMP/benchtool" ./bench/benchtool) || die "cannot build bench/benchtool"
if [[ -z $FULCRUM_BIN ]]; then
  (cd "$REPO" && go build -o "$TMP/fulcrum" ./cmd/fulcrum) || die "cannot build fulcrum"
  FULCRUM_BIN=$TMP/fulcrum
fi

free_port() { # a port no TCP socket uses, outside the ephemeral range
  local p hex
  while :; do
    p=$((20000 + RANDOM % 12000))
    hex=$(printf '%04X' "$p")
    awk -v h="$hex" 'FNR > 1 { n = split($2, a, ":"); if (a[n] == h) { f = 1; exit } } END { exit !f }' \
      /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return; }
  done
}

wait_port() { # wait_port PORT PID: until 127.0.0.1:PORT accepts, or PID died / 10 s passed
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

run_one() { # run_one ecdsa|rsa
  local key=$1 dir=$TMP/$1 bport fport t0 rc=0
  mkdir -p "$dir"
  case $key in
  ecdsa) openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>"$dir/openssl.log" ;;
  rsa) openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>"$dir/openssl.log" ;;
  *) die "unknown key type $key (ecdsa, rsa)" ;;
  esac
  bport=$(free_port)
  "$TMP/benchtool" serve -addr "127.0.0.1:$bport" >"$dir/backend.log" 2>&1 &
  local bpid=$!
  PIDS+=("$bpid")
  fport=$(free_port)
  cat >"$dir/fulcrum.json" <<EOF
{"listen_addr": "127.0.0.1:$fport", "admin_addr": "", "log_level": "warn",
 "tls_cert_file": "$dir/cert.pem", "tls_key_file": "$dir/key.pem",
 "backends": ["http://127.0.0.1:$bport"]}
EOF
  "$FULCRUM_BIN" -config "$dir/fulcrum.json" >"$dir/fulcrum.log" 2>&1 &
  local fpid=$!
  PIDS+=("$fpid")
  wait_port "$bport" "$bpid" || die "backend did not start: $(cat "$dir/backend.log")"
  wait_port "$fport" "$fpid" || die "fulcrum did not start: $(tail -5 "$dir/fulcrum.log")"

  log "$key: testssl.sh -p -s -f -S -U against fulcrum on 127.0.0.1:$fport"
  t0=$SECONDS
  # --nodns none: no DNS lookups (an IP target on an offline machine);
  # --warnings off: never stop to ask; --quiet: no banner; exit codes of
  # testssl.sh count findings, so the JSON decides instead.
  "$TESTSSL" -p -s -f -S -U --quiet --color 0 --warnings off --nodns none \
    --connect-timeout 10 --openssl-timeout 10 \
    --jsonfile "$dir/testssl.json" "127.0.0.1:$fport" >"$dir/testssl.txt" 2>&1 || true
  local secs=$((SECONDS - t0))
  stop_pid "$fpid"
  stop_pid "$bpid"
  {
    echo "# bench/testssl.sh, $key certificate, $(date -u '+%Y-%m-%d %H:%M UTC'), fulcrum at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), ${secs}s"
    echo "# $TESTSSL_VERSION, $(openssl version)"
    echo "# $TESTSSL -p -s -f -S -U --quiet --color 0 --warnings off --nodns none --connect-timeout 10 --openssl-timeout 10 127.0.0.1:PORT"
    echo
    cat "$dir/testssl.txt"
    echo
    echo "# benchtool sslcheck (MEDIUM or higher, and the protocol rules):"
  } >"$OUT_DIR/testssl-$key.txt"
  [[ -s $dir/testssl.json ]] || { log "$key: testssl.sh wrote no JSON"; tail -20 "$dir/testssl.txt" >&2; return 1; }
  "$TMP/benchtool" sslcheck -json "$dir/testssl.json" | tee -a "$OUT_DIR/testssl-$key.txt" >&2 || rc=$?
  log "$key: $( ((rc == 0)) && echo passed || echo FAILED) in ${secs}s; output in $OUT_DIR/testssl-$key.txt"
  return "$rc"
}

fails=0
for k in $KEYS; do run_one "$k" || fails=$((fails + 1)); done
((fails == 0)) || die "$fails of the runs ($KEYS) failed"
log "all passed ($KEYS)"
