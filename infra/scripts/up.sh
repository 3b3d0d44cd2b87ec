#!/usr/bin/env bash
# Starts the local system in the background and waits until it answers.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/env.sh"
cd "$here/../.."
pidfile="$STATE_DIR/local-server.pid"
if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "already running (pid $(cat "$pidfile")); \`make down\` first to restart"; exit 0
fi
cargo build -q -j "${JOBS:-2}" -p local
nohup "$CARGO_TARGET_DIR/debug/local-server" serve >"$STATE_DIR/local-server.log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 150); do
  if curl -sf "http://$LOCAL_ADDR/health" >/dev/null; then
    echo "API up on http://$LOCAL_ADDR (pid $(cat "$pidfile"), log $STATE_DIR/local-server.log)"
    echo "Tokens: make token ROLE=admin|engineer|viewer"
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "local-server exited:"; tail -20 "$STATE_DIR/local-server.log"; exit 1
  fi
  sleep 0.2
done
echo "local-server did not answer on http://$LOCAL_ADDR/health"; tail -20 "$STATE_DIR/local-server.log"; exit 1
