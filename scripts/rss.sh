#!/usr/bin/env bash
# Peak memory of a long replay: builds a recording of ~10M records by looping the real
# sample capture N times as one continuous session (default 250 → 10.3M records; times and
# venue ids carry on across rounds, see examples/loop_recording.rs), then replays it with
# the three built-in detectors and prints the peak RSS. Usage: scripts/rss.sh [N] [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-250}
dir=${2:-${TMPDIR:-/tmp}/tapedeck-rss}
cargo build --release --quiet --bin tapedeck --example loop_recording
bin=./target/release/tapedeck
if [ ! -e "$dir/conf" ]; then
  ./target/release/examples/loop_recording recordings/binance-btcusdt-20240808 "$dir" "$n"
fi
"$bin" inspect "$dir" | grep -E '^(records|size)'
peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
"$bin" replay "$dir" --quiet \
  --detect waves:amplitude=0.05,timeframe=10s \
  --detect volatility:timeframe=10s,short=5,long=20 \
  --detect volume:timeframe=10s,ma=20,k=3 &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  kb=$(peak_kb "$pid" 2>/dev/null || echo 0)
  [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
  sleep 0.05
done
wait "$pid"
echo "peak RSS: $((peak / 1024)) MiB"
