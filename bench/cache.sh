#!/usr/bin/env bash
# What a warm credential cache of many keys costs the write path, measured by hand.
#
#   bench/cache.sh [keys, default 20000] [seconds per measurement, default 5]
#
# Builds and starts the release binary (or the one $BIN names) on
# a temporary database, signs up an owner and measures `user.createApiKey` at one
# connection while the cache holds little more than the owner's session. Then it creates
# `keys` keys, uses each once so that all of them are cached, and measures again, plus
# key-authenticated reads (16 connections) beside a stream of key creations, and the
# server's RSS; last, after a restart on the same database (the cache empty again), the
# creations once more, which tells the cost of the cache from that of a larger table.
# Set BIN to another build to compare. Needs wrk and curl.
set -euo pipefail

KEYS="${1:-20000}"
DURATION="${2:-5}"
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/keygate
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR="127.0.0.1:$PORT"
URL="http://$ADDR"

start() {
  KEYGATE_LOG=warn "$BIN" serve --listen "$ADDR" --db "$WORK/keygate.db" >>"$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    "$BIN" healthcheck --listen "$ADDR" >/dev/null 2>&1 && break
    sleep 0.1
  done
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
cleanup() { stop; rm -rf "$WORK"; }
trap cleanup EXIT
start

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
SIGNUP=$(curl -sf -c "$WORK/cookies" -H 'content-type: application/json' \
  -d '{"name":"Bench","email":"bench@example.com","password":"bench-password"}' \
  "$URL/api/auth/sign-up/email")
ORG=$(echo "$SIGNUP" | json '["session"]["activeOrganizationId"]')
TOKEN=$(awk '$6 ~ /session_token/ {print $7}' "$WORK/cookies")
AUTH=(-H "cookie: keygate.session_token=$TOKEN" -H "origin: $URL" -H 'content-type: application/json')
BODY="{\"name\":\"bench\",\"metadata\":{\"organizationId\":\"$ORG\"}}"
KEY=$(curl -sf "${AUTH[@]}" -d "$BODY" "$URL/api/user.createApiKey" | json '["key"]')

cat >"$WORK/create.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
LUA

# Creates keys and appends them to the key file (wrk runs for its whole duration, so the
# seeding repeats short runs until there are enough).
cat >"$WORK/seed.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
local out = io.open("$WORK/keys", "a")
out:setvbuf("line")
response = function(status, headers, body)
  local k = status == 200 and body:match('"key":"([^"]+)"')
  if k then out:write(k, "\n") end
end
LUA

# Uses the keys of the key file in turn, from where the previous run stopped.
cat >"$WORK/warm.lua" <<LUA
keys = {}
for l in io.lines("$WORK/keys") do keys[#keys + 1] = l end
local f = io.open("$WORK/warm.pos")
i = f and tonumber(f:read("*l")) or 0
if f then f:close() end
request = function()
  i = i + 1
  return wrk.format("GET", "/api/user.getPermissions", {["x-api-key"] = keys[(i - 1) % #keys + 1]})
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function()
  local f = io.open("$WORK/warm.pos", "w")
  f:write(threads[1]:get("i"), "\n")
  f:close()
end
LUA

rate() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1=="99%" {print $2}'; }
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$PID/status"; }

echo "keygate $("$BIN" version | awk '{print $2}'), $(nproc) cores, $(date -u +%FT%TZ)"
echo "RSS at start: $(rss)"
ONE=$(wrk -t1 -c1 -d"${DURATION}s" "${AUTH[@]}" -s "$WORK/create.lua" "$URL/api/user.createApiKey" | rate)
echo "user.createApiKey, 1 connection, cache nearly empty: $ONE/s"

START=$(date +%s.%N)
touch "$WORK/keys"
while [ "$(wc -l <"$WORK/keys")" -lt "$KEYS" ]; do
  wrk -t1 -c32 -d2s "${AUTH[@]}" -s "$WORK/seed.lua" "$URL/api/user.createApiKey" >/dev/null
done
head -n "$KEYS" "$WORK/keys" >"$WORK/keys.n" && mv "$WORK/keys.n" "$WORK/keys"
while [ "$(cat "$WORK/warm.pos" 2>/dev/null || echo 0)" -lt "$KEYS" ]; do
  wrk -t1 -c16 -d2s -s "$WORK/warm.lua" "$URL/api/user.getPermissions" >/dev/null
done
# The first usage flush after the warm-up writes a row per key (about a second of
# writes at 100,000 keys, and a large WAL to checkpoint); let it pass.
sleep "${SETTLE:-10}"
echo "created and cached $(wc -l <"$WORK/keys") keys in $(python3 -c "import time; print(round(time.time() - $START - ${SETTLE:-10}, 1))") s; RSS $(rss)"

MANY=$(wrk -t1 -c1 -d"${DURATION}s" "${AUTH[@]}" -s "$WORK/create.lua" "$URL/api/user.createApiKey" | rate)
echo "user.createApiKey, 1 connection, $KEYS keys cached: $MANY/s ($(python3 -c "print(round($MANY / $ONE, 2))") of the rate with the cache nearly empty)"

ALONE=$(wrk -t1 -c16 -d"${DURATION}s" --latency -H "x-api-key: $KEY" "$URL/api/user.getPermissions")
wrk -t1 -c1 -d"$((DURATION + 2))s" "${AUTH[@]}" -s "$WORK/create.lua" "$URL/api/user.createApiKey" >/dev/null &
WRITER=$!
sleep 1
BESIDE=$(wrk -t1 -c16 -d"${DURATION}s" --latency -H "x-api-key: $KEY" "$URL/api/user.getPermissions")
wait "$WRITER"
echo "user.getPermissions (x-api-key), 16 connections, alone: $(echo "$ALONE" | rate)/s, p99 $(echo "$ALONE" | p99)"
echo "  beside a stream of key creations: $(echo "$BESIDE" | rate)/s, p99 $(echo "$BESIDE" | p99)"

stop
start
AFTER=$(wrk -t1 -c1 -d"${DURATION}s" "${AUTH[@]}" -s "$WORK/create.lua" "$URL/api/user.createApiKey" | rate)
echo "user.createApiKey, 1 connection, the same keys stored but none cached (after a restart): $AFTER/s"
