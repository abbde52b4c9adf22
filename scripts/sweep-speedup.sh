#!/usr/bin/env bash
# Sweep speedup: the same grid on the sample recording with --threads 1 and --threads 2.
# Prints each run's grid time (decode excluded: it happens once, before the grid) and the
# whole-command wall time, then the ratios. Target: grid speedup ≥ 1.7x on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
REC=${1:-recordings/binance-btcusdt-20240808}
ROUNDS=${ROUNDS:-3}
cargo build --release --quiet
BIN=./target/release/tapedeck
GRID=(--strategy wave-follow --param timeframe=10s --grid amplitude=0.01:0.30:0.01 --grid ma=1,2,3,5)
best() { sort -g | head -1; }
run() {
  local threads=$1 grid=() wall=()
  for _ in $(seq "$ROUNDS"); do
    local t0 t1 err
    t0=$(date +%s.%N)
    err=$("$BIN" sweep "$REC" "${GRID[@]}" --threads "$threads" --no-store 2>&1 >/dev/null)
    t1=$(date +%s.%N)
    grid+=("$(sed -n 's/.*grid \([0-9.]*\) s on.*/\1/p' <<<"$err")")
    wall+=("$(echo "$t1 - $t0" | bc -l)")
  done
  echo "$(printf '%s\n' "${grid[@]}" | best) $(printf '%s\n' "${wall[@]}" | best)"
}
read -r g1 w1 < <(run 1)
read -r g2 w2 < <(run 2)
points=$("$BIN" sweep "$REC" "${GRID[@]}" --no-store --json | grep -c '"rank"')
printf 'grid points: %s, best of %s rounds\n' "$points" "$ROUNDS"
printf 'threads=1: grid %.3f s, wall %.3f s\n' "$g1" "$w1"
printf 'threads=2: grid %.3f s, wall %.3f s\n' "$g2" "$w2"
printf 'speedup: grid %.2fx, wall %.2fx\n' "$(echo "$g1 / $g2" | bc -l)" "$(echo "$w1 / $w2" | bc -l)"
