# Sourced by the scripts: makes MONGODB_URI point at a MongoDB-protocol server.
#
# 1. MONGODB_URI already set: used as it is.
# 2. `mongod` on PATH: started as a single-node replica set in a temporary folder.
# 3. Otherwise SecantusDB (a MongoDB wire-protocol server) is installed into the project-local,
#    git-ignored .venv and started in memory on a free port.
# The server started here is stopped by `stop_test_mongo` (the callers trap EXIT).

_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MONGO_PID=""
MONGO_DIR=""

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() {
  local port=$1 tries=${2:-100}
  for _ in $(seq "$tries"); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

start_test_mongo() {
  if [ -n "${MONGODB_URI:-}" ]; then
    echo "Using MONGODB_URI from the environment."
    return 0
  fi
  local port
  port=$(free_port)
  if command -v mongod >/dev/null 2>&1; then
    MONGO_DIR=$(mktemp -d)
    echo "Starting mongod (replica set rs0) on port $port."
    mongod --replSet rs0 --bind_ip 127.0.0.1 --port "$port" --dbpath "$MONGO_DIR" \
      --setParameter "transactionLifetimeLimitSeconds=${MONGO_TXN_LIFETIME_SECS:-60}" \
      --logpath "$MONGO_DIR/mongod.log" --fork >/dev/null
    MONGO_PID=$(pgrep -n -f "mongod --replSet rs0 --bind_ip 127.0.0.1 --port $port" || true)
    wait_for_port "$port" || { echo "mongod did not start" >&2; return 1; }
    if command -v mongosh >/dev/null 2>&1; then
      mongosh --quiet --port "$port" --eval 'rs.initiate()' >/dev/null
    else
      ensure_venv
      "$_root/.venv/bin/python" - "$port" <<'PY'
import sys, time, pymongo
c = pymongo.MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/?directConnection=true")
c.admin.command("replSetInitiate")
for _ in range(100):
    if c.admin.command("hello").get("isWritablePrimary"):
        break
    time.sleep(0.2)
PY
    fi
    export MONGODB_URI="mongodb://127.0.0.1:$port/?replicaSet=rs0"
  else
    ensure_venv
    echo "Starting SecantusDB on port $port."
    # MONGO_TXN_LIFETIME_SECS: how long a transaction whose client died (SIGKILL mid-transaction)
    # keeps its documents locked before the server aborts it; mongod's
    # transactionLifetimeLimitSeconds, default 60. SecantusDB has the same limit but no flag for
    # it, so it is set through its Python API.
    "$_root/.venv/bin/python" -c '
import sys, secantus.cli, secantus.server
lifetime = float(sys.argv[1])
init = secantus.server.SecantusDBServer.__init__
def patched(self, *args, **kwargs):
    kwargs.setdefault("transaction_lifetime_seconds", lifetime)
    init(self, *args, **kwargs)
secantus.server.SecantusDBServer.__init__ = patched
sys.exit(secantus.cli.main(sys.argv[2:]))
' "${MONGO_TXN_LIFETIME_SECS:-60}" --host 127.0.0.1 --port "$port" --storage-path :memory: \
      --log-level WARNING >"${SECANTUS_LOG:-/dev/null}" 2>&1 &
    MONGO_PID=$!
    wait_for_port "$port" || { echo "SecantusDB did not start" >&2; return 1; }
    # SecantusDB only: its retryable-write bookkeeping slows it down over long runs.
    export MONGODB_URI="mongodb://127.0.0.1:$port/?retryWrites=false"
  fi
}

ensure_venv() {
  if [ ! -x "$_root/.venv/bin/python" ] || ! "$_root/.venv/bin/python" -c 'import secantus, pymongo' 2>/dev/null; then
    echo "Installing SecantusDB into .venv (once)."
    python3 -m venv "$_root/.venv"
    "$_root/.venv/bin/pip" install --quiet --disable-pip-version-check secantusdb==0.7.0b3 pymongo
  fi
}

stop_test_mongo() {
  if [ -n "$MONGO_PID" ]; then
    kill "$MONGO_PID" 2>/dev/null || true
    wait "$MONGO_PID" 2>/dev/null || true
  fi
  if [ -n "$MONGO_DIR" ]; then
    rm -rf "$MONGO_DIR"
  fi
}
