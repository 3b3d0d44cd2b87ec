#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 180), seeding each corpus with the shared
# test files of its format. Works on the stable toolchain through RUSTC_BOOTSTRAP=1.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-180}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(stl obj ply off threemf dxf step analyze)
data=${CAD_TESTDATA:-../../../../shared/testdata/cad}
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/cad-target-geometry-fuzz}
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  case $t in
    threemf) pat='*.3[mM][fF]' ;;
    step) pat='*.[sS][tT][eE][pP]' ;;
    analyze) pat='*' ;;
    *) pat="*.$t" ;;
  esac
  find "$data" -type f -iname "$pat" -size -300k -exec cp -n {} "corpus/$t/" \; 2>/dev/null || true
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=20 \
    || echo "FUZZ TARGET $t FAILED: see fuzz/artifacts/$t"
done
