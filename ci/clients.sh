#!/usr/bin/env bash
# Generated clients, as users generate them, against the real server.
#
#   ci/clients.sh <path-to-keygate-binary>
#
# Lints openapi/openapi.json with Redocly's recommended rules (errors fail, warnings
# print). Generates a Python client (openapi-python-client) and a TypeScript client
# (@hey-api/openapi-ts, fetch) from the committed openapi/openapi.json, failing on any
# warning of either generator; type-checks the programs in clients/ that use them
# (mypy --strict, tsc strict); then runs each program against the binary, each on a
# fresh temporary database (the flow signs up the first user). No hand-written fix
# touches the generated code: when this fails, fix the spec.
#
# The generators are installed from clients/python/requirements.txt (into a throwaway
# venv) and clients/typescript/package-lock.json (npm ci). Needs python3 (3.11) with
# venv, and Node 20.19 or later with npm. About a minute on a warm machine.
set -euo pipefail

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 <path-to-keygate-binary>" >&2
    exit 2
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY_DIR=$ROOT/clients/python
TS_DIR=$ROOT/clients/typescript

WORK=$(mktemp -d)
PID=
LOG=

step() { printf '\n==> %s\n' "$*"; }

stop_server() {
    [[ -n $PID ]] || return 0
    # timeout passes the TERM on to the server, which finishes requests in flight.
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
}

cleanup() {
    local status=$?
    stop_server
    if [[ $status -ne 0 && -n $LOG && -f $LOG ]]; then
        echo "--- server log (last 30 lines) ---"
        tail -n 30 "$LOG" || true
    fi
    rm -rf "$WORK"
    if [[ $status -ne 0 ]]; then
        echo "generated clients: FAILED" >&2
    fi
    exit "$status"
}
trap cleanup EXIT

# generate LABEL COMMAND...: runs a generator in the current directory and prints its
# output. Fails when it fails, prints anything on stderr (both generators print their
# warnings there, some without the word "warning"), or mentions a warning at all.
generate() {
    local label=$1 out="$WORK/generate-$1.out" err="$WORK/generate-$1.err" rc=0
    shift
    "$@" >"$out" 2>"$err" || rc=$?
    cat "$out" "$err"
    if [[ $rc -ne 0 ]]; then
        echo "$label generator failed (exit $rc)" >&2
        return 1
    fi
    if [[ -s $err ]] || grep -Eqi 'warn|🚨|❗' "$out"; then
        echo "$label generator printed a warning (above): fix the spec" >&2
        return 1
    fi
}

# start_server NAME: the binary on a free port with a new database; sets URL.
start_server() {
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$WORK/$1"
    LOG="$WORK/$1/server.log"
    URL="http://127.0.0.1:$port"
    # The server dies by itself after 10 minutes, should this script die without its trap.
    timeout --kill-after=15 600 "$BIN" serve --listen "127.0.0.1:$port" --db "$WORK/$1/keygate.db" \
        >"$LOG" 2>&1 &
    PID=$!
    python3 - "$URL/api/health" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=1) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("the server did not answer GET /api/health with 200 within 10 seconds")
PY
    echo "server $URL on a fresh database"
}

step "Versions"
"$BIN" version
python3 --version
node --version
echo "npm $(npm --version)"

step "Spec lint: Redocly's recommended rules, no error allowed"
npx --yes @redocly/cli@2.77.0 lint --extends recommended --format summary openapi/openapi.json

step "Python: install the generator (clients/python/requirements.txt)"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check -r "$PY_DIR/requirements.txt"
"$WORK/venv/bin/openapi-python-client" --version

step "Python: generate clients/python/keygate_client from openapi/openapi.json"
# The generator runs ruff on its output, from PATH.
(cd "$PY_DIR" && PATH="$WORK/venv/bin:$PATH" generate python \
    openapi-python-client generate --path ../../openapi/openapi.json \
    --meta none --output-path keygate_client --overwrite --fail-on-warning)

step "Python: mypy --strict flow.py"
# Only the program: the generated code is taken as it is.
(cd "$PY_DIR" && "$WORK/venv/bin/mypy" --strict --follow-imports=silent --cache-dir "$WORK/mypy" flow.py)

step "TypeScript: npm ci (clients/typescript/package-lock.json)"
(cd "$TS_DIR" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$TS_DIR" && npx --no-install openapi-ts --version)

step "TypeScript: generate clients/typescript/src/client from openapi/openapi.json"
(cd "$TS_DIR" && generate typescript npx --no-install openapi-ts \
    --input ../../openapi/openapi.json --output src/client --no-log-file)

step "TypeScript: tsc --noEmit (strict), then build to dist/"
(cd "$TS_DIR" && npx --no-install tsc --noEmit && rm -rf dist && npx --no-install tsc)

step "Python client against the server"
start_server python
KEYGATE_URL=$URL "$WORK/venv/bin/python" "$PY_DIR/flow.py"
stop_server

step "TypeScript client against the server"
start_server typescript
KEYGATE_URL=$URL node "$TS_DIR/dist/flow.js"
stop_server

step "Generated clients: both passed"
