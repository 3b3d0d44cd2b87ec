#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and moto's AWS server are running; starts whichever is not.
# Idempotent: safe to run before every command.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

log() { printf '[services] %s\n' "$*" >&2; }

wait_for() { # name, tries, command...
  local name=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "$name did not become ready"; return 1
}

# PostgreSQL
if ! pg_isready -h "$PGHOST" -p "$PGPORT" -q; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    cluster_version=$(ls /etc/postgresql | sort -n | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start
  else
    log "PostgreSQL is not running and pg_ctlcluster is missing: install postgresql"; exit 1
  fi
  wait_for PostgreSQL 100 pg_isready -h "$PGHOST" -p "$PGPORT" -q
fi

# Redis
if ! redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "${STATE_DIR}" --logfile "${STATE_DIR}/redis.log"
  wait_for Redis 100 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping
fi

# moto (AWS APIs)
moto_up() { curl -sf -o /dev/null "http://127.0.0.1:${MOTO_PORT}/moto-api/"; }
if ! moto_up; then
  if ! command -v moto_server >/dev/null; then
    log "installing moto[server]"
    python3 -m pip install --quiet 'moto[server]'
  fi
  log "starting moto on port ${MOTO_PORT}"
  nohup moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"${STATE_DIR}/moto.log" 2>&1 &
  echo $! >"${STATE_DIR}/moto.pid"
  wait_for moto 150 moto_up
fi
log "PostgreSQL ${PGHOST}:${PGPORT}, Redis ${REDIS_HOST}:${REDIS_PORT}, moto ${AWS_ENDPOINT_URL}: ready"
