#!/usr/bin/env bash
# Screenshots a backtest report (REPORT_DIR/report.html) with headless Chromium, offline:
#   scripts/report-screenshot.sh REPORT_DIR [OUT.png]   (OUT defaults to REPORT_DIR/report.png)
# Needs Debian's chromium (apt-get install -y chromium). A demo report for visual checks:
#   TAPEDECK_REPORT_DEMO=/tmp/report-demo cargo test --release --lib backtest::report -- --ignored
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 REPORT_DIR [OUT.png]" >&2
  exit 2
fi
dir=$(cd "$1" && pwd)
[[ -f "$dir/report.html" ]] || { echo "no report.html in $dir" >&2; exit 1; }
out=${2:-$dir/report.png}
case $out in /*) ;; *) out=$PWD/$out ;; esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1400,2200 --screenshot="$out" \
  "file://$dir/report.html" >/dev/null 2>&1 || true
[[ -s "$out" ]] || { echo "chromium wrote no screenshot to $out" >&2; exit 1; }
echo "$out"
