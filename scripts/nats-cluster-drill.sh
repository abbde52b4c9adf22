#!/usr/bin/env bash
# Drill: kill a JetStream node during `record`, and show that nothing is lost or duplicated.
#
#   scripts/nats-cluster-drill.sh [WORKDIR]
#
# 1. Starts a 3-node cluster on loopback (scripts/nats-cluster.sh) and `tapedeck serve` of the
#    sample recording at --speed 5 (about 70 s) as the exchange.
# 2. Records it into an R3 stream through all three nodes:
#    nats://127.0.0.1:14221,127.0.0.1:14222,127.0.0.1:14223/DRILL?replicas=3
# 3. SIGKILLs the stream's leader a third of the way in, and restarts it later.
# 4. Checks with `tapedeck verify` (exit 0: seq contiguous, every batch whole, trade and
#    depth ids without gaps) and by comparing trade ids with the sample's: every trade
#    exactly once.
# Needs nats-server (Debian) and curl; builds tapedeck in release mode if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TAPEDECK:-target/release/tapedeck}
[ -x "$T" ] || cargo build --release
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
CLUSTER=$WORK/cluster
SAMPLE=recordings/binance-btcusdt-20240808
URL="nats://127.0.0.1:14221,127.0.0.1:14222,127.0.0.1:14223/DRILL?replicas=3"
SERVE_PID=

cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2> /dev/null || true
  scripts/nats-cluster.sh stop "$CLUSTER" > /dev/null 2>&1 || true
}
trap cleanup EXIT

scripts/nats-cluster.sh start "$CLUSTER"
"$T" serve "$SAMPLE" --bind 127.0.0.1:0 --speed 5 --start-on-connect > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do
  ADDR=$(sed -n 's/^listening on ws:\/\/\([^ ]*\).*/\1/p' "$WORK/serve.out")
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "serve did not start" >&2; exit 2; }

echo "recording into $URL from ws://$ADDR"
"$T" record --exchange binance --symbols BTCUSDT --streams trade,quote,depth \
  --ws-url "ws://$ADDR" --rest-url "http://$ADDR" --out "$URL" --duration 85s --json \
  > "$WORK/record.json" 2> "$WORK/record.log" &
RECORD_PID=$!

leader() {
  for n in 1 2 3; do
    curl -fsS -m 2 "http://127.0.0.1:1822$n/jsz?streams=true&accounts=true" 2> /dev/null || continue
    return
  done | python3 -c '
import json, sys
d = json.load(sys.stdin)
for a in d.get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == "DRILL":
            print(s["cluster"]["leader"][1:])
'
}

sleep 25
VICTIM=$(leader)
[ -n "$VICTIM" ] || { echo "no leader found for stream DRILL" >&2; exit 2; }
echo "t=25s: SIGKILL node n$VICTIM, the stream leader"
scripts/nats-cluster.sh kill "$VICTIM" "$CLUSTER"
sleep 20
echo "t=45s: restart node n$VICTIM (new leader: n$(leader))"
scripts/nats-cluster.sh restart "$VICTIM" "$CLUSTER" > /dev/null
wait "$RECORD_PID"
echo "record finished: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["records_written"], "records written")' "$WORK/record.json" 2> /dev/null || cat "$WORK/record.json")"
grep -c "not acknowledged; retrying" "$WORK/record.log" | sed 's/^/publish retries logged: /' || true

echo "== verify"
"$T" verify "$URL" | tee "$WORK/verify.txt"
"$T" export "$URL" --kind trade > "$WORK/trades.ndjson"
"$T" export "$SAMPLE" --kind trade > "$WORK/sample-trades.ndjson"
python3 - "$WORK/trades.ndjson" "$WORK/sample-trades.ndjson" << 'EOF'
import json, sys
def ids(path):
    return [json.loads(line)["trade_id"] for line in open(path) if line.strip()]
got, want = ids(sys.argv[1]), ids(sys.argv[2])
dups = len(got) - len(set(got))
missing = len(set(want) - set(got))
print(f"trades: {len(got)} recorded, {len(want)} in the sample, {dups} duplicated, {missing} missing")
sys.exit(0 if dups == 0 and missing == 0 and len(got) == len(want) else 1)
EOF
echo "drill passed"
