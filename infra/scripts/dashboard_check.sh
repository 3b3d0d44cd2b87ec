#!/usr/bin/env bash
# Drives the admin dashboard in headless Chromium against a private copy of the local system
# (its own port, database, queues and cache prefix), after some traffic, and checks the rendered
# page: live figures, five queue rows, numeric latencies, no script errors.
#   infra/scripts/dashboard_check.sh [SCREENSHOT]     (default: $STATE_DIR/admin-dashboard.png)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/../.."
shot="${1:-$STATE_DIR/admin-dashboard.png}"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "[dashboard] installing Debian's chromium and chromium-driver"
  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 ||
    (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null))
fi
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install --quiet selenium

export LOCAL_ADDR="127.0.0.1:${DASHBOARD_CHECK_PORT:-3990}"
export DATABASE_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/cad_dashboard_check"
export QUEUE_PREFIX="dashcheck-"
export CACHE_KEY_PREFIX="dashcheck:$$:"
export RUST_LOG=warn
cargo build -q -j "${JOBS:-2}" -p local
bin="$CARGO_TARGET_DIR/debug/local-server"
"$bin" serve >"$STATE_DIR/dashboard-check.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sf "http://$LOCAL_ADDR/health" >/dev/null && break; sleep 0.2; done
curl -sf "http://$LOCAL_ADDR/health" >/dev/null || { tail -20 "$STATE_DIR/dashboard-check.log"; exit 1; }

admin=$("$bin" token admin)
engineer=$("$bin" token engineer)
for i in $(seq 30); do
  curl -s -o /dev/null -H "Authorization: Bearer $engineer" "http://$LOCAL_ADDR/api/files?limit=$((i % 5 + 1))"
  curl -s -o /dev/null -H "Authorization: Bearer $engineer" "http://$LOCAL_ADDR/api/users/me"
done
BASE_URL="http://$LOCAL_ADDR" TOKEN="$admin" python3 shared/admin/tests/browser/dashboard_check.py "$shot"
echo "[dashboard] rendered and checked; screenshot $shot"
