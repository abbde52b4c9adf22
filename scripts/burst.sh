#!/usr/bin/env bash
# Loopback burst: a local Binance sends 100k trade messages per second for 10 s; tapedeck
# records them and the count must match exactly. Override with BURST_RATE and BURST_SECS.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test it burst_of_100k -- --ignored --nocapture 2>&1 | grep -E "^burst:|test result|panicked"
