#!/usr/bin/env bash
# API fuzzing: runs schemathesis against each service's /openapi.json with every check on,
# as a customer, an admin and the order-service client, against a fresh MongoDB-protocol
# server. Prints the requests and cases tried; fails on any server error, schema violation or
# ignored authentication. `FUZZ_MAX_EXAMPLES` (default 30) bounds the cases per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mongo-env.sh

SHOP_PID=""
cleanup() {
  if [ -n "$SHOP_PID" ]; then kill "$SHOP_PID" 2>/dev/null || true; wait "$SHOP_PID" 2>/dev/null || true; fi
  stop_test_mongo
}
trap cleanup EXIT

ensure_venv
if ! .venv/bin/python -c 'import schemathesis' 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi
cargo build --locked --bin shop
start_test_mongo

A=$(free_port); P=$(free_port); O=$(free_port)
export AUTH_PORT=$A PRODUCT_PORT=$P ORDER_PORT=$O AUTH_HOST=127.0.0.1 PRODUCT_HOST=127.0.0.1 ORDER_HOST=127.0.0.1
export JWT_ISSUER="http://127.0.0.1:$A" JWKS_URL="http://127.0.0.1:$A/.well-known/jwks.json"
export ORDER_PRODUCT_SERVICE_URL="http://127.0.0.1:$P" ORDER_AUTH_TOKEN_URL="http://127.0.0.1:$A/token"
export AUTH_ADMIN_USERNAME=fuzz-admin AUTH_ADMIN_PASSWORD='fuzz admin password'
export AUTH_RATE_LIMIT_PER_MINUTE=100000000 AUTH_RATE_LIMIT_BURST=100000000
export ORDER_RATE_LIMIT_PER_MINUTE=100000000 ORDER_RATE_LIMIT_BURST=100000000
export AUTH_LOGIN_MAX_FAILURES=100000000
export RUST_LOG="${RUST_LOG:-warn}"
./target/debug/shop >target/fuzz-shop.log 2>&1 &
SHOP_PID=$!
for port in $A $P $O; do wait_for_port "$port" 300 || { echo "service on $port did not start"; exit 1; }; done

.venv/bin/python scripts/fuzz.py --auth "http://127.0.0.1:$A" --product "http://127.0.0.1:$P" \
  --order "http://127.0.0.1:$O" --max-examples "${FUZZ_MAX_EXAMPLES:-30}"
