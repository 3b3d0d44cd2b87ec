#!/usr/bin/env bash
# Stops the background system started by up.sh (moto, PostgreSQL and Redis keep running).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
pidfile="$STATE_DIR/local-server.pid"
if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  kill "$(cat "$pidfile")"
  for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  echo "stopped local-server (pid $(cat "$pidfile"))"
else
  echo "local-server is not running"
fi
rm -f "$pidfile"
