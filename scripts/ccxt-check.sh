#!/usr/bin/env bash
# A third-party client against `tapedeck serve`: ccxt's Python websocket client
# (ccxt.pro.binance) watches trades and the order book of a served recording, and
# scripts/ccxt_check.py compares what it saw with `tapedeck export` of the same recording.
# Everything stays on 127.0.0.1 (serve binds a free port; ccxt's URLs are all rewritten to it).
#
# Usage: scripts/ccxt-check.sh [REC]   (default: the bundled sample recording)
# Needs: python3 -m pip install -r scripts/requirements-ccxt.txt
# Env: TAPEDECK_BIN=path (skip the build and use this binary), PYTHON=python3, CCXT_TIMEOUT=120,
# CCXT_SPEED=max (serve's --speed; slower speeds wake ccxt's caller more often, so more of its
# books are compared: at 10 nearly one per diff, and the sample takes 35 s)
set -euo pipefail
cd "$(dirname "$0")/.."
REC="${1:-recordings/binance-btcusdt-20240808}"
PYTHON="${PYTHON:-python3}"
if [ -z "${TAPEDECK_BIN:-}" ]; then
  cargo build --release --quiet
  TAPEDECK_BIN=target/release/tapedeck
fi

work="$(mktemp -d)"
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ]; then
    # KILL, not TERM: serve catches TERM ("interrupted: finishing cleanly") and keeps serving.
    # It only reads a temporary copy, so nothing is lost.
    kill -KILL "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A copy: a recording opens in one process at a time, and export and serve each open it.
cp -R "$REC" "$work/rec"
"$TAPEDECK_BIN" export "$work/rec" --kind trade --out "$work/trades.ndjson"
"$TAPEDECK_BIN" export "$work/rec" --kind book_snapshot,book_delta --out "$work/book.ndjson"

# The clock waits for the first WebSocket client; at max it runs as fast as the slowest client reads.
speed="${CCXT_SPEED:-max}"
: >"$work/serve.out" # before the background job opens it, so the loop below can read it at once
"$TAPEDECK_BIN" serve "$work/rec" --bind 127.0.0.1:0 --speed "$speed" --start-on-connect \
  >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
addr=""
for _ in $(seq 300); do
  addr="$(sed -n 's|^listening on ws://\([^ ]*\).*|\1|p' "$work/serve.out" || true)"
  [ -n "$addr" ] && break
  if ! kill -0 "$serve_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "ccxt-check: tapedeck serve did not start:" >&2
  cat "$work/serve.err" >&2
  exit 2
fi
echo "tapedeck serve $REC on $addr (--speed $speed --start-on-connect)"

rc=0
"$PYTHON" scripts/ccxt_check.py --url "http://$addr" --trades "$work/trades.ndjson" \
  --book "$work/book.ndjson" --timeout "${CCXT_TIMEOUT:-120}" || rc=$?
if [ "$rc" -ne 0 ] && [ -s "$work/serve.err" ]; then
  echo "--- tapedeck serve stderr:" >&2
  cat "$work/serve.err" >&2
fi
exit "$rc"
