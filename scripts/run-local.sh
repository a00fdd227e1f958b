#!/usr/bin/env bash
# Runs the whole system on this machine without Docker: a MongoDB-protocol server found or started
# the way the test script does it (scripts/mongo-env.sh: MONGODB_URI when set, else a `mongod` on
# PATH as a single-node replica set, else SecantusDB in the project-local .venv), then the
# all-in-one `shop` binary (`cargo run --release`): auth-service :8000, product-service :8001,
# order-service :8002. Ctrl-C stops the services, then the database this script started.
#
# Extra arguments go to `cargo run`, e.g. `./scripts/run-local.sh --offline`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mongo-env.sh

SHOP_PID=""
cleanup() {
  if [ -n "$SHOP_PID" ] && kill -0 "$SHOP_PID" 2>/dev/null; then
    kill -TERM "$SHOP_PID" 2>/dev/null || true
    wait "$SHOP_PID" 2>/dev/null || true
  fi
  stop_test_mongo
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Build first, so the database is not left waiting through a long compile.
cargo build --release --locked --bin shop "$@"
start_test_mongo
echo "MongoDB: ${MONGODB_URI}"
echo "auth-service http://localhost:${AUTH_PORT:-8000}  product-service http://localhost:${PRODUCT_PORT:-8001}  order-service http://localhost:${ORDER_PORT:-8002}  (Ctrl-C stops)"
cargo run --release --locked --bin shop "$@" &
SHOP_PID=$!
wait "$SHOP_PID"
