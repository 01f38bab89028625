#!/usr/bin/env bash
# Throughput and latency of keygate's hot paths, in one run, on this machine.
#
#   bench/run.sh [seconds per endpoint, default 10]
#
# Builds the release binary, starts it on 127.0.0.1 with a temporary database, signs up
# an owner, creates an API key and 20 projects, then runs wrk (one thread, 32
# connections) against each endpoint in turn and prints requests/s, p50 and p99, and
# each endpoint's throughput as a share of GET /api/health. Needs wrk (apt-get install
# wrk). The server is stopped on exit.
set -euo pipefail

DURATION="${1:-10}"
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet
BIN=target/release/keygate
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR="127.0.0.1:$PORT"
URL="http://$ADDR"

# The password queue holds the whole sign-in flood below, so its clients wait for their
# answers instead of retrying 429s at once: the flood measures password work, not a
# request flood.
KEYGATE_LOG=warn "$BIN" serve --listen "$ADDR" --db "$WORK/keygate.db" --password-queue 512 \
  >"$WORK/server.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  "$BIN" healthcheck --listen "$ADDR" >/dev/null 2>&1 && break
  sleep 0.1
done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
SIGNUP=$(curl -sf -c "$WORK/cookies" -H 'content-type: application/json' \
  -d '{"name":"Bench","email":"bench@example.com","password":"bench-password"}' \
  "$URL/api/auth/sign-up/email")
ORG=$(echo "$SIGNUP" | json '["session"]["activeOrganizationId"]')
KEY=$(curl -sf -b "$WORK/cookies" -H "Origin: $URL" -H 'content-type: application/json' \
  -d "{\"name\":\"bench\",\"metadata\":{\"organizationId\":\"$ORG\"}}" \
  "$URL/api/user.createApiKey" | json '["key"]')

# Endpoints beyond those of this build are measured when they exist.
have() { curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "$URL$1" | grep -qv '^404$'; }
if have /api/project.all; then
  for i in $(seq 1 20); do
    curl -sf -o /dev/null -H "x-api-key: $KEY" -H 'content-type: application/json' \
      -d "{\"name\":\"project-$i\"}" "$URL/api/project.create"
  done
fi

cat >"$WORK/sign-in.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"bench-password"}'
LUA

cat >"$WORK/post.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, nil, '{"name":"bench-' .. n .. '"}')
end
LUA

run() { # label, path, extra wrk args...
  local label=$1 path=$2; shift 2
  local out
  out=$(wrk -t1 -c32 -d"${DURATION}s" --latency "$@" "$URL$path")
  local rps p50 p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

{
  run "GET /api/health" /api/health
  run "GET /api/user.getPermissions (x-api-key)" /api/user.getPermissions -H "x-api-key: $KEY"
  if have /api/project.all; then
    run "GET /api/project.all, 20 projects (x-api-key)" /api/project.all -H "x-api-key: $KEY"
    run "POST /api/project.create (x-api-key)" /api/project.create -H "x-api-key: $KEY" \
      -H 'content-type: application/json' -s "$WORK/post.lua"
    # One connection: every write commits alone. Beside the row above, it shows what
    # group commit gives concurrent writers (a later -c overrides wrk's -c32).
    run "POST /api/project.create (x-api-key), 1 connection" /api/project.create -c1 \
      -H "x-api-key: $KEY" -H 'content-type: application/json' -s "$WORK/post.lua"
  fi
  # The key path beside a sustained flood of 200 concurrent sign-ins (argon2id, 19 MiB):
  # the same endpoint measured just before, without the flood, is the reference.
  run "GET /api/user.getPermissions (x-api-key), alone" /api/user.getPermissions -H "x-api-key: $KEY"
  wrk -t1 -c200 -d"$((DURATION + 4))s" --latency --timeout 30s -s "$WORK/sign-in.lua" \
    "$URL/api/auth/sign-in/email" >"$WORK/flood.txt" &
  FLOOD=$!
  sleep 2
  run "GET /api/user.getPermissions (x-api-key), sign-in flood" /api/user.getPermissions -H "x-api-key: $KEY"
  wait "$FLOOD"
  printf 'POST /api/auth/sign-in/email, the flood (200 at once)\t%s\t%s\t%s\t%s\n' \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/flood.txt")" \
    "$(awk '$1=="50%" {print $2}' "$WORK/flood.txt")" \
    "$(awk '$1=="99%" {print $2}' "$WORK/flood.txt")" \
    "$(awk '/Non-2xx/ {print $NF}' "$WORK/flood.txt")"
} >"$WORK/results.tsv"

echo "keygate $("$BIN" version | awk '{print $2}'), $(nproc) cores, wrk -t1 -c32 -d${DURATION}s, $(date -u +%FT%TZ)"
awk -F'\t' '
  NR==1 { base=$2 }
  { rows[NR]=$0; rps[NR]=$2 }
  END {
    printf "%-48s %12s %10s %10s %8s %9s\n", "endpoint", "requests/s", "p50", "p99", "non-2xx", "vs health"
    for (i=1; i<=NR; i++) {
      split(rows[i], f, "\t")
      printf "%-48s %12s %10s %10s %8s %8.0f%%\n", f[1], f[2], f[3], f[4], f[5], 100*f[2]/base
    }
  }' "$WORK/results.tsv"
