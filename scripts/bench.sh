#!/usr/bin/env bash
# Runs the criterion suite (log, engine, capture) and writes bench/summary.md: one row per
# benchmark with its median time and throughput, plus the machine's description.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench
log=$(mktemp)
started=$(date +%s)
cargo bench --bench log --bench engine --bench capture -- --noplot 2>&1 | tee "$log" >/dev/null
elapsed=$(( $(date +%s) - started ))
{
  echo "# Benchmark summary"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
  echo "- rustc: $(rustc --version)"
  echo "- suite wall time: ${elapsed} s"
  echo
  echo "| benchmark | median time | median throughput |"
  echo "|---|---|---|"
  awk '
    /^[a-z_]+\/[^ ]+/ && !/Benchmarking/ { name=$1; t=""; if ($2 == "time:") { t=$5" "$6 } next }
    /^ +time:/ && name != "" { t=$4" "$5 }
    /^ +thrpt:/ && name != "" { printf "| %s | %s | %s %s |\n", name, t, $4, $5; name="" }
  ' "$log"
} > bench/summary.md
cat bench/summary.md
