#!/usr/bin/env bash
# The HA proof, runnable without Docker: two instances of each service as processes on loopback
# behind nginx (deploy/nginx/nginx.conf, unchanged), a steady stream of orders and reads, one
# instance of each service SIGKILLed in turn and restarted; reports requests sent and failed,
# p50/p99 latency per phase, and checks the stock invariant. See scripts/ha_test.py.
#
# Needs: nginx (the Debian package, installed here when missing), a MongoDB-protocol server
# (scripts/mongo-env.sh: MONGODB_URI, else mongod, else SecantusDB in .venv), and the service
# binaries, built here with the Dockerfile's command
# (`cargo build --release --locked -p auth-service -p product-service -p order-service`).
# HA_PROFILE=debug builds and runs the debug binaries instead (what CI runs: `.ci/run`, after the
# test step has built them; about two minutes). Exits non-zero when the bound or an invariant is
# broken. Extra arguments go to ha_test.py (e.g. --phase-seconds 15 --threads 8).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mongo-env.sh
trap stop_test_mongo EXIT

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "Installing nginx (Debian package)."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null
fi
export PATH="$PATH:/usr/sbin"

bins=(-p auth-service -p product-service -p order-service)
if [ "${HA_PROFILE:-release}" = "debug" ]; then
  cargo build --locked "${bins[@]}"
  bin_dir=target/debug
else
  cargo build --release --locked "${bins[@]}"
  bin_dir=target/release
fi
# The invariant checker (src/bin/check-invariants.rs) reads the databases at the end; a debug
# build is enough (CI's test step has built it already).
cargo build --locked -p shop --bin check-invariants

# A product-service instance killed mid-reservation leaves its transaction open, holding the
# product documents it wrote until the server aborts it (transactionLifetimeLimitSeconds, 60 s by
# default): every reservation of those products waits, then answers 503. Deployments set it
# lower (docker-compose.ha.yml does); so does this test, unless MONGODB_URI is given.
export MONGO_TXN_LIFETIME_SECS="${MONGO_TXN_LIFETIME_SECS:-5}"
start_test_mongo
python3 scripts/ha_test.py --bin-dir "$bin_dir" --checker target/debug/check-invariants "$@"
