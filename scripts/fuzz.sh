#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/) for SECONDS each (default 600), seeded with the real
# frames in tests/fixtures and blocks of the sample recording, and prints libFuzzer's run
# count per target. Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-600}
TARGETS=${TARGETS:-"normalize_binance normalize_gate normalize_lbank block_decode"}
seed() { # target, then files whose "ts: frame" or JSON lines become one seed each
  local dir=fuzz/corpus/$1; shift
  mkdir -p "$dir"
  python3 - "$dir" "$@" <<'PY'
import hashlib, sys
out, files = sys.argv[1], sys.argv[2:]
for f in files:
    for line in open(f, encoding="utf-8", errors="replace"):
        frame = line.split(": ", 1)[1] if " -> " in line or " <- " in line or line[:1].isdigit() else line
        frame = frame.strip()
        if frame.startswith("{") or frame.startswith("["):
            open(f"{out}/{hashlib.sha1(frame.encode()).hexdigest()}", "w").write(frame)
PY
}
seed normalize_binance tests/fixtures/binance_spot/cryptofeed/BINANCE.ws.1.0 tests/fixtures/binance_us/BINANCE_US.ws.1.0
seed normalize_gate tests/fixtures/gateio_spot/GATEIO.ws.1.0
seed normalize_lbank tests/fixtures/lbank/lbank_v2_ws_push_doc_examples.jsonl
mkdir -p fuzz/corpus/block_decode
cargo +nightly fuzz build -O --fuzz-dir fuzz >/dev/null
for t in $TARGETS; do
  log=$(mktemp)
  if ! cargo +nightly fuzz run -O --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -print_final_stats=1 > "$log" 2>&1; then
    echo "$t: FAILED"; tail -40 "$log"; exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "$t: ${SECONDS_EACH}s, $runs runs, no crash"
done
