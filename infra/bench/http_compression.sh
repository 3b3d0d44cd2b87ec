#!/usr/bin/env bash
# End-to-end cost of compression: requests per second and p50/p99 latency of GET /api/files
# (100 files per page, about 90 KB of JSON) through a release build of the local server, with
# each Accept-Encoding, measured by wrk at fixed concurrency. Identity is the baseline of the
# same run.
#
#   infra/bench/http_compression.sh            # DURATION=15s CONNECTIONS=8 THREADS=2 by default
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../scripts/env.sh"
cd "$here/../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
infra/scripts/services.sh

DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-8}"
THREADS="${THREADS:-2}"
PORT="${BENCH_PORT:-3100}"
export LOCAL_ADDR="127.0.0.1:${PORT}"
export DATABASE_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/cad_bench"
export UPLOADS_BUCKET="cad-bench-uploads"
export QUEUE_PREFIX="bench-"
export RUST_LOG="warn"

cargo build -q --release -j "${JOBS:-2}" -p local
bin="$CARGO_TARGET_DIR/release/local-server"
"$bin" serve >"$STATE_DIR/bench-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "http://$LOCAL_ADDR/health" >/dev/null && break; sleep 0.1; done

# 100 processed-looking files owned by the demo engineer, once.
psql -q "$DATABASE_URL" <<'SQL'
INSERT INTO cad_files (uploaded_by, filename, original_name, file_size, mime_type, s3_key, status, tags,
                       project_name, part_name, description, metadata, thumbnails)
SELECT u.id, 'part-' || i || '.stl', 'part-' || i || '.stl', 10000 + i * 977, 'model/stl', 'uploads/bench/' || i,
       'ready', ARRAY['steel', 'batch-' || (i % 7)], 'Rover', 'Part ' || (i % 13), 'Bench part ' || i,
       jsonb_build_object('format', 'stl', 'triangles', 1000 + i * 13, 'bbox_min', jsonb_build_array(-i, -12.5, 0),
                          'bbox_max', jsonb_build_array(i, 12.5, 30.25), 'surface_area', 1234.5 + i, 'volume', 4567.8 + i,
                          'watertight', true, 'bodies', 1),
       jsonb_build_array(jsonb_build_object('width', 320, 'format', 'webp', 'key', 'thumbnails/' || md5(i::text) || '/320.webp'),
                         jsonb_build_object('width', 640, 'format', 'webp', 'key', 'thumbnails/' || md5(i::text) || '/640.webp'))
FROM generate_series(1, 100) i, users u
WHERE u.cognito_sub = 'demo-engineer' AND NOT EXISTS (SELECT 1 FROM cad_files WHERE s3_key = 'uploads/bench/1');
SQL

token=$("$bin" token engineer)
url="http://$LOCAL_ADDR/api/files?limit=100"
size=$(curl -s -H "Authorization: Bearer $token" "$url" | wc -c)
echo "GET /api/files?limit=100: $size bytes of JSON; wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
echo
echo "| Accept-Encoding | bytes on the wire | requests/s | p50 ms | p99 ms | req/s vs identity |"
echo "|---|---:|---:|---:|---:|---:|"
base_rps=""
for enc in identity gzip br zstd; do
  wire=$(curl -s -H "Authorization: Bearer $token" -H "Accept-Encoding: $enc" "$url" | wc -c)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -H "Authorization: Bearer $token" -H "Accept-Encoding: $enc" "$url")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v } else { sub(/s$/,"",v); print v*1000 } }'; }
  [[ -z "$base_rps" ]] && base_rps=$rps
  printf '| %s | %s | %.0f | %.2f | %.2f | %.2f |\n' "$enc" "$wire" "$rps" "$(to_ms "$p50")" "$(to_ms "$p99")" \
    "$(awk -v a="$rps" -v b="$base_rps" 'BEGIN {print a/b}')"
done
