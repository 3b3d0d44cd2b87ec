#!/usr/bin/env bash
# End-to-end HTTP benchmarks through an optimised build (profile perf) of the local server, measured by wrk at
# fixed concurrency (figures in the README's performance section):
#   1. compression: GET /api/files?limit=100 (about 86 KB of JSON) with each Accept-Encoding,
#      response cache off, so every request pays query + serialisation + compression; identity
#      is the baseline of the same run;
#   2. response cache: the same GET uncached (cache off) and cached (X-Cache: HIT), zstd.
#
#   infra/bench/http_api.sh          # DURATION=15s CONNECTIONS=8 THREADS=2 by default
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../scripts/env.sh"
cd "$here/../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
infra/scripts/services.sh

DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-8}"
THREADS="${THREADS:-2}"
export DATABASE_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/cad_bench"
export UPLOADS_BUCKET="cad-bench-uploads"
export QUEUE_PREFIX="bench-"
export RUST_LOG="warn"
export CACHE_KEY_PREFIX="bench-$$:"
export CACHE_WARM_INTERVAL_S=86400

cargo build -q --profile perf -j "${JOBS:-2}" -p local
bin="$CARGO_TARGET_DIR/perf/local-server"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
start() { # port, extra env...
  local port=$1; shift
  env LOCAL_ADDR="127.0.0.1:$port" "$@" "$bin" serve >"$STATE_DIR/bench-server-$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.1; done
  echo "server on $port did not start"; cat "$STATE_DIR/bench-server-$port.log"; exit 1
}
start 3101 CACHE_DISABLED=true
start 3102

# 100 processed-looking files owned by the demo engineer, once.
psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -f infra/bench/seed_listing.sql

token=$("$bin" token engineer)
path="/api/files?limit=100"
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v } else { sub(/s$/,"",v); print v*1000 } }'; }
run_wrk() { # port, encoding -> "rps p50 p99"
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        -H "Authorization: Bearer $token" -H "Accept-Encoding: $2" "http://127.0.0.1:$1$path")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")") $(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")"
}
size=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:3101$path" | wc -c)
echo "GET $path: $size bytes of JSON; wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "Compression (response cache off):"
echo
echo "| Accept-Encoding | bytes on the wire | requests/s | p50 ms | p99 ms | req/s vs identity |"
echo "|---|---:|---:|---:|---:|---:|"
base=""
for enc in identity gzip br zstd; do
  wire=$(curl -s -H "Authorization: Bearer $token" -H "Accept-Encoding: $enc" "http://127.0.0.1:3101$path" | wc -c)
  read -r rps p50 p99 <<<"$(run_wrk 3101 "$enc")"
  [[ -z "$base" ]] && base=$rps
  printf '| %s | %s | %.0f | %.2f | %.2f | %.2f |\n' "$enc" "$wire" "$rps" "$p50" "$p99" "$(awk -v a="$rps" -v b="$base" 'BEGIN {print a/b}')"
done
echo
echo "Response cache (zstd):"
echo
curl -s -o /dev/null -H "Authorization: Bearer $token" -H "Accept-Encoding: zstd" "http://127.0.0.1:3102$path"
hit=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $token" -H "Accept-Encoding: zstd" "http://127.0.0.1:3102$path" | awk -F': ' 'tolower($1)=="x-cache" {print $2}' | tr -d '\r')
echo "| GET | X-Cache | requests/s | p50 ms | p99 ms | req/s vs uncached |"
echo "|---|---|---:|---:|---:|---:|"
read -r u_rps u_p50 u_p99 <<<"$(run_wrk 3101 zstd)"
printf '| uncached (query + compress) | BYPASS | %.0f | %.2f | %.2f | 1.00 |\n' "$u_rps" "$u_p50" "$u_p99"
read -r c_rps c_p50 c_p99 <<<"$(run_wrk 3102 zstd)"
printf '| cached | %s | %.0f | %.2f | %.2f | %.2f |\n' "$hit" "$c_rps" "$c_p50" "$c_p99" "$(awk -v a="$c_rps" -v b="$u_rps" 'BEGIN {print a/b}')"
