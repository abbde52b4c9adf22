#!/usr/bin/env bash
# Messages per second `tapedeck serve --speed max` sends to one WebSocket client over loopback
# (the sample recording, looped; trade + bookTicker in one combined stream).
# Usage: scripts/serve-speed.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SERVE_SPEED_SECONDS="${1:-5}" cargo test --release --test it serve::serve_speed -- --ignored --nocapture 2>&1 |
  grep -E "messages/s|test result|panicked"
