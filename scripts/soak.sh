#!/usr/bin/env bash
# Soak: `tapedeck serve --loop` of the sample → a proxy that drops every WebSocket connection
# 3 times a minute → `tapedeck record`, for MINUTES (default 30) at SPEED (default 10).
# Prints record's RSS at the start, middle and end, then checks that `verify` passes and
# that its disconnect count equals the number of connections the proxy killed.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-30}
SPEED=${SPEED:-10}
cargo build --release --quiet
BIN=$PWD/target/release/tapedeck
WORK=$(mktemp -d)
cleanup() { kill "${REC_PID:-}" "${PROXY_PID:-}" "${SERVE_PID:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cp -r recordings/binance-btcusdt-20240808 "$WORK/src"
"$BIN" serve "$WORK/src" --bind 127.0.0.1:0 --speed "$SPEED" --loop > "$WORK/serve.out" 2>/dev/null &
SERVE_PID=$!
for _ in $(seq 50); do grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
UP=$(sed -n 's/^listening on ws:\/\/\([^ ]*\).*/\1/p' "$WORK/serve.out" | head -1)
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
python3 scripts/soak_proxy.py "$PORT" "$UP" 20 > "$WORK/proxy.out" &
PROXY_PID=$!
sleep 0.5
"$BIN" record --exchange binance --symbols BTCUSDT --streams trade,quote,depth \
  --ws-url "ws://127.0.0.1:$PORT" --rest-url "http://127.0.0.1:$PORT" --out "$WORK/rec" \
  --duration "${MINUTES}m" --json > "$WORK/record.json" 2> "$WORK/record.err" &
REC_PID=$!
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$REC_PID/status" 2>/dev/null || echo "-"; }
sleep 60; echo "RSS after 1 min:  $(rss)"
sleep $(( MINUTES * 30 - 60 )); echo "RSS at the middle: $(rss)"
sleep $(( MINUTES * 30 - 15 )); echo "RSS near the end:  $(rss)"
wait "$REC_PID"
kill -TERM "$PROXY_PID"; wait "$PROXY_PID" || true
killed=$(sed -n 's/^total killed: //p' "$WORK/proxy.out")
set +e
"$BIN" verify "$WORK/rec" --json > "$WORK/verify.json"
code=$?
set -e
python3 - "$WORK/verify.json" "$WORK/record.json" "$killed" "$code" <<'PY'
import json, sys
verify = json.load(open(sys.argv[1]))
record = json.load(open(sys.argv[2]))
killed, code = int(sys.argv[3]), int(sys.argv[4])
disconnects = record["exchanges"]["binance"]["disconnects"]
ledger = verify["disconnects"]
n_ledger = len(ledger) if isinstance(ledger, list) else ledger
print(f"records {verify['records']}, verify exit {code}, corrupt blocks {len(verify['corrupt_blocks'])}, seq problems {len(verify['seq_problems'])}")
print(f"proxy killed {killed} websocket connections; verify's ledger lists {n_ledger} disconnects; record counted {disconnects} (the last is its own close at the end)")
# Exit 1 from verify is expected: the trades sent while a connection was down are real gaps.
ok = code in (0, 1) and not verify["corrupt_blocks"] and not verify["seq_problems"] and n_ledger == killed and disconnects == killed + 1
print("soak: OK" if ok else "soak: MISMATCH")
sys.exit(0 if ok else 1)
PY
