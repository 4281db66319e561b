# bench/lib/report.sh — sourced at the end of bench/run.sh: medians, the table,
# notes, and (RESULTS=1) bench/RESULTS.md.

# ---------------------------------------------------------------- report
declare -A MED_V=() MED_P=() MED_C=() MED_P50=()
for w in $WORKLOADS; do
  for b in $ALL_BALANCERS; do
    MED_C[$w.$b]=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $3 == b && $10 != "" { print $10 }' "$RAW" | median)
    MED_V[$w.$b]=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $3 == b && $4 != "" { print $4 }' "$RAW" | median)
    MED_P[$w.$b]=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $3 == b && $5 != "" { print $5 }' "$RAW" | median)
    MED_P50[$w.$b]=$(awk -F'\t' -v w="$w" -v b="$b" '$1 == w && $3 == b && $11 != "" { print $11 }' "$RAW" | median)
  done
done

cell() { # workload balancer
  local w=$1 b=$2 v=${MED_V[$1.$2]} p=${MED_P[$1.$2]}
  if [[ " $BALANCERS " != *" $b "* ]]; then echo "not run"; return; fi
  if [[ -z $v ]]; then echo "n/a"; return; fi
  if [[ $w == W4 ]]; then
    printf '%.1f KiB/conn' "$v"
  else
    printf '%.0f req/s' "$v"
    if [[ -n ${MED_P50[$w.$b]} ]]; then printf ', p50 %.2f ms' "${MED_P50[$w.$b]}"; fi
    printf ', p99 %.2f ms' "$p"
    if [[ -n ${MED_C[$w.$b]} ]]; then printf ', CPU %.1f µs/req' "${MED_C[$w.$b]}"; fi
  fi
}
ratio() { # workload a b [V|P|C]: ratio of the medians of req/s (V, default), p99 (P) or CPU/req (C)
  local -n med=MED_${4:-V}
  local x=${med[$1.$2]:-} y=${med[$1.$3]:-}
  if [[ -z $x || -z $y ]]; then echo "n/a"; return; fi
  awk -v x="$x" -v y="$y" 'BEGIN { if (y + 0 == 0) print "n/a"; else printf "%.2f", x / y }'
}

TABLE=$TMP/table.md
{
  echo "| workload | fulcrum | haproxy | nginx | fulcrum/haproxy | fulcrum/nginx | p99 fulcrum/haproxy | CPU/req fulcrum/haproxy |"
  echo "|---|---|---|---|---|---|---|---|"
  for w in $WORKLOADS; do
    desc=${WL_DESC[$w]}
    [[ $w == W4 ]] && desc="$desc ($W4_CONNS held; KiB/conn, lower is better)"
    echo "| $desc | $(cell "$w" fulcrum) | $(cell "$w" haproxy) | $(cell "$w" nginx) | $(ratio "$w" fulcrum haproxy) | $(ratio "$w" fulcrum nginx) | $(ratio "$w" fulcrum haproxy P) | $(ratio "$w" fulcrum haproxy C) |"
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
  echo "| workload | run | balancer | req/s or KiB/conn | p50 ms | p99 ms | balancer CPU µs/req | errors | requests or conns | other work, % CPU | note |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $11, $5, $10, $6, $7, $9, $8 }' "$RAW"
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
