#!/usr/bin/env bash
# Benchmarks the shop: builds release binaries, starts a fresh MongoDB-protocol server (see
# scripts/mongo-env.sh) and the three services as separate processes, seeds data, runs every
# scenario and the reference ceilings, and writes a table plus bench/results/<date>.json.
# Extra arguments go to the bench binary, e.g. `./scripts/bench.sh --duration 10 --scenarios browse`.
# BENCH_PROFILE=product-service (or auth-service, order-service) also records a `perf` profile of
# that service for the whole run and writes its report to target/perf-<service>.txt.
# BENCH_SCHED=1 also records the scheduler while `browse` and `browse-during-login-flood` are
# measured, and prints what ran on product-service's CPU while its threads waited for one
# (scripts/sched_blame.py; written to target/sched-<scenario>.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mongo-env.sh

PIDS=()
PERF_PID=""
cleanup() {
  if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Only the services: a bare `wait` would also wait for the database, which stops below.
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_test_mongo
}
trap cleanup EXIT

cargo build --release --locked --workspace --bins
start_test_mongo

export RUST_LOG="${RUST_LOG:-warn}"
export JWT_ISSUER="http://127.0.0.1:8000"
export JWKS_URL="http://127.0.0.1:8000/.well-known/jwks.json"
export AUTH_HOST=127.0.0.1 PRODUCT_HOST=127.0.0.1 ORDER_HOST=127.0.0.1
export AUTH_PORT=8000 PRODUCT_PORT=8001 ORDER_PORT=8002
export ORDER_PRODUCT_SERVICE_URL="http://127.0.0.1:8001" ORDER_AUTH_TOKEN_URL="http://127.0.0.1:8000/token"
# The load comes from one address and a few users: lift the abuse limits for the run.
export AUTH_RATE_LIMIT_PER_MINUTE=100000000 AUTH_RATE_LIMIT_BURST=100000000
export ORDER_RATE_LIMIT_PER_MINUTE=100000000 ORDER_RATE_LIMIT_BURST=100000000

for service in auth-service product-service order-service; do
  ./target/release/$service >"target/bench-$service.log" 2>&1 &
  PIDS+=($!)
done
for port in 8000 8001 8002; do
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break
    sleep 0.2
  done
done

if [ -n "${BENCH_PROFILE:-}" ]; then
  case "$BENCH_PROFILE" in
    auth-service) profiled=${PIDS[0]} ;;
    product-service) profiled=${PIDS[1]} ;;
    order-service) profiled=${PIDS[2]} ;;
    *) echo "BENCH_PROFILE must name a service" >&2; exit 2 ;;
  esac
  perf record -F 299 --call-graph dwarf,16384 -p "$profiled" -o "target/perf-$BENCH_PROFILE.data" \
    >"target/perf-$BENCH_PROFILE.log" 2>&1 &
  PERF_PID=$!
fi

mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%dT%H-%M-%SZ).json"
pids="auth=${PIDS[0]},product=${PIDS[1]},order=${PIDS[2]}${MONGO_PID:+,database=$MONGO_PID}"
sched=()
if [ -n "${BENCH_SCHED:-}" ]; then
  # The scheduler's tracepoints live in tracefs, which a container may not have mounted.
  [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
  rm -f target/sched-*.data
  sched=(--sched-trace target)
fi
./target/release/bench --pids "$pids" --issuer "$JWT_ISSUER" --mongodb-uri "$MONGODB_URI" \
  --out "$out" "${sched[@]}" "$@"
cp "$out" bench/results/latest.json

if [ -n "${BENCH_SCHED:-}" ]; then
  for trace in target/sched-*.data; do
    [ -e "$trace" ] || continue
    report="${trace%.data}.txt"
    echo "$(basename "$trace" .data | sed 's/^sched-//'):"
    { perf script -i "$trace" -F comm,pid,tid,cpu,time,event,trace 2>/dev/null |
      python3 scripts/sched_blame.py --victim product --pids "$pids" || true; } | tee "$report"
  done
fi

if [ -n "$PERF_PID" ]; then
  kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""
  perf report -i "target/perf-$BENCH_PROFILE.data" --no-children --percent-limit 0.7 --stdio \
    --sort symbol -g none >"target/perf-$BENCH_PROFILE.txt" 2>/dev/null
  echo "profile of $BENCH_PROFILE: target/perf-$BENCH_PROFILE.txt"
fi
