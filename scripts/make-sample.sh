#!/usr/bin/env bash
# Rebuilds the bundled sample recording from the real capture in tests/fixtures.
# The result is deterministic except for the meta's creation time and command line;
# tests check it record for record against a fresh import.
set -euo pipefail
cd "$(dirname "$0")/.."
out=recordings/binance-btcusdt-20240808
cargo build --release --quiet
rm -rf "$out"
./target/release/tapedeck import hftbacktest \
  tests/fixtures/binance_spot/hftbacktest/btcusdt_20240808.gz \
  --symbol BTCUSDT --canonical BTC/USDT --out "$out"
./target/release/tapedeck inspect "$out"
