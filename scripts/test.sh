#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests and the integration tests that start the real
# services against a real MongoDB-protocol server (see scripts/mongo-env.sh for which one).
# Extra arguments go to the test runner, e.g. `./scripts/test.sh auth::`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mongo-env.sh
trap stop_test_mongo EXIT

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The database-fault tests run a SecantusDB of their own (from .venv) that they can stop.
ensure_venv
start_test_mongo
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
