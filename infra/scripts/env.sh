# Local environment shared by `make run`, `make up`, `make test` and `make token`.
# Every value can be overridden from the caller's environment.
export MOTO_PORT="${MOTO_PORT:-5005}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:${MOTO_PORT}}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export PGHOST="${PGHOST:-127.0.0.1}"
export PGPORT="${PGPORT:-5432}"
export PGUSER="${PGUSER:-postgres}"
export DATABASE_URL="${DATABASE_URL:-postgres://${PGUSER}@${PGHOST}:${PGPORT}/cad_platform}"
export REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
export REDIS_PORT="${REDIS_PORT:-6379}"
export UPLOADS_BUCKET="${UPLOADS_BUCKET:-cad-platform-uploads}"
export LOCAL_ADDR="${LOCAL_ADDR:-127.0.0.1:3000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cad-target}"
export RUST_LOG="${RUST_LOG:-info,sqlx=warn,aws_config=warn}"
export STATE_DIR="${STATE_DIR:-/var/tmp/cad-platform-state}"
mkdir -p "$STATE_DIR"
# Metrics: the real-time view in Redis stays on; the EMF lines CloudWatch reads are off locally
# (they would drown the console). METRICS_EMF=on shows them.
export METRICS_EMF="${METRICS_EMF:-off}"
export METRICS_SERVICE="${METRICS_SERVICE:-local}"
# The shared CAD test files with reference values: next to the clone (../shared), or the
# workplace's copy when the clone lives elsewhere.
if [[ -z "${CAD_TESTDATA:-}" ]]; then
  _repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  if [[ -d "$_repo/../shared/testdata/cad" ]]; then
    export CAD_TESTDATA="$(cd "$_repo/../shared/testdata/cad" && pwd)"
  elif [[ -d /work/shared/testdata/cad ]]; then
    export CAD_TESTDATA=/work/shared/testdata/cad
  fi
  unset _repo
fi
