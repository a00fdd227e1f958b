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
# HA_PROFILE=debug builds and runs the debug binaries instead (quicker for local runs).
# Extra arguments go to ha_test.py (e.g. --phase-seconds 15 --threads 8).
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

start_test_mongo
python3 scripts/ha_test.py --bin-dir "$bin_dir" "$@"
