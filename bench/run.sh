#!/usr/bin/env bash
# Throughput and latency of keygate's hot paths, in one run, on this machine.
#
#   bench/run.sh [seconds per endpoint, default 10]
#   KEYS=20000 bench/run.sh    # the many-keys part with fewer keys; KEYS=0 skips it
#
# Builds the release binary, starts it on 127.0.0.1 with a temporary database, signs up
# an owner, creates an API key and 20 projects, then runs wrk (one thread, 32
# connections) against each endpoint in turn and prints requests/s, p50 and p99, and
# each endpoint's throughput as a share of the GET /api/health measured last before it.
#
# Then, on a second server and database, many keys (KEYS, default 100000): key creation
# at one connection on a fresh server with one key and on this one with KEYS keys
# created and cached, the key path cycling through all of them alone and beside a
# stream of key creations, then after a restart on the same database a cold and a warm
# pass over all of them, RSS and memory per cached key, and the targets these rows are
# held to. Each target is a ratio taken in ROUNDS rounds (default 5), the median held to
# it. SETTLE (seconds, default 10) is the wait for a usage flush after a pass;
# CACHE_ENTRIES sets that server's cache bound (default: room for all the keys). The
# whole run takes about 8 minutes at 10 seconds per endpoint. Needs wrk (apt-get
# install wrk). Each server is stopped by its pid, on exit too.
set -euo pipefail

DURATION="${1:-10}"
KEYS="${KEYS:-100000}"
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet
BIN=target/release/keygate
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR="127.0.0.1:$PORT"
URL="http://$ADDR"

PID=
PIDS=()
start() { # database, extra serve args...
  local db=$1; shift
  KEYGATE_LOG=warn "$BIN" serve --listen "$ADDR" --db "$db" "$@" >>"$WORK/server.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 1 100); do
    "$BIN" healthcheck --listen "$ADDR" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "keygate did not start:" >&2
  cat "$WORK/server.log" >&2
  exit 1
}
stop() {
  [ -n "$PID" ] || return 0
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
}
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The password queue holds the whole sign-in flood below, so its clients wait for their
# answers instead of retrying 429s at once: the flood measures password work, not a
# request flood.
start "$WORK/keygate.db" --password-queue 512

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

# A row of the table from wrk's output: label, requests/s (a pass's own rate when the
# script printed one), p50, p99, non-2xx. The latest row's figures stay in RPS, P99 and
# REQUESTS for the targets below.
row() { # label, wrk output
  RPS=$(echo "$2" | awk '/Requests\/sec/ {r=$2} /Pass\/sec/ {p=$2} END {print p ? p : r}')
  P99=$(echo "$2" | awk '$1=="99%" {print $2}')
  REQUESTS=$(echo "$2" | awk '/requests in/ {print $1}')
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$RPS" "$(echo "$2" | awk '$1=="50%" {print $2}')" "$P99" \
    "$(echo "$2" | awk '/Non-2xx/ {print $NF}' | grep . || echo 0)" >>"$WORK/results.tsv"
}

run() { # label, path, extra wrk args...
  local label=$1 path=$2; shift 2
  row "$label" "$(wrk -t1 -c32 -d"${DURATION}s" --latency "$@" "$URL$path")"
}

: >"$WORK/results.tsv"
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
row "POST /api/auth/sign-in/email, the flood (200 at once)" "$(cat "$WORK/flood.txt")"
stop

# Many keys, on a server and database of their own. The cache bound counts sessions
# too, and a cycle over more keys than the cache holds misses on every request (the
# least recently used key is always the next one due), so this server gets room for all
# the keys and the owner's session; the default bound is reported below.
#
# The targets are ratios of two rates, and this machine's rates drift by a third within
# minutes. So each target is measured in ROUNDS rounds (default 5), the two rates of a
# round back to back, and the median of the rounds' ratios is held to the target.
if [ "$KEYS" -gt 0 ]; then
  ROUNDS="${ROUNDS:-5}"
  BOUND="${CACHE_ENTRIES:-$((KEYS + 100))}"
  KDB="$WORK/keys.db"
  start "$KDB" --cache-entries "$BOUND"
  rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; } # kB

  # wrk runs for its whole duration even when a thread stops early, and its rate then
  # counts the idle rest. So a script with a fixed amount of work times it itself (from
  # its first request to its last, with a monotonic clock), stops its thread and
  # interrupts wrk. The interruption waits for the thread to end, since a SIGINT taken
  # by the thread would not wake wrk's main thread.
  PRELUDE='local ffi = require("ffi")
ffi.cdef("typedef struct { long s, ns; } bench_ts; int clock_gettime(int, bench_ts *);")
local ts = ffi.new("bench_ts")
local now = function() ffi.C.clock_gettime(1, ts); return tonumber(ts.s) + tonumber(ts.ns) * 1e-9 end
local pid = io.open("/proc/self/stat"):read("*l"):match("^%d+")
local finish = function() wrk.thread:stop(); io.popen("sleep 0.1; kill -INT " .. pid) end'

  # Signs up the owner on the server at URL and writes a key-creation script for it to
  # the file given; AUTH gets the headers of the owner's session.
  owner() { # script file
    rm -f "$WORK/cookies"
    local signup org
    signup=$(curl -sf -c "$WORK/cookies" -H 'content-type: application/json' \
      -d '{"name":"Bench","email":"bench@example.com","password":"bench-password"}' \
      "$URL/api/auth/sign-up/email")
    org=$(echo "$signup" | json '["session"]["activeOrganizationId"]')
    AUTH=(-H "cookie: keygate.session_token=$(awk '$6 ~ /session_token/ {print $7}' "$WORK/cookies")"
      -H "origin: $URL" -H 'content-type: application/json')
    BODY="{\"name\":\"bench\",\"metadata\":{\"organizationId\":\"$org\"}}"
    printf 'wrk.method = "POST"\nwrk.body = %s\n' "'$BODY'" >"$1"
  }
  owner "$WORK/create.lua"
  curl -sf -o /dev/null "${AUTH[@]}" -d "$BODY" "$URL/api/user.createApiKey"
  MANY_AUTH=("${AUTH[@]}")
  RSS_START=$(rss)

  # Creates keys at 32 connections and writes each returned key to the key file; the
  # thread stops once it has KEYS of them (requests in flight then may add a few more
  # keys to the database, not to the file).
  cat >"$WORK/seed.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
$PRELUDE
local out, n = io.open("$WORK/keys", "w"), 0
response = function(status, headers, body)
  local k = status == 200 and body:match('"key":"([^"]+)"')
  if k and n < $KEYS then
    out:write(k, "\n")
    n = n + 1
    if n == $KEYS then out:flush(); finish() end
  end
end
LUA
  # Key-authenticated reads cycling through the key file. Each request is formatted once,
  # before the first is sent: formatting it per request costs wrk (on the same cores as
  # the server) about a sixth of what GET /api/health without a script costs it. With a
  # pass limit, the thread stops once it has sent each key once and wrk prints the pass's
  # own rate: the responses it had by then (all but the 31 other connections' requests in
  # flight) over the time since its first request.
  cycle() { # pass limit (0: none)
    cat <<LUA
$PRELUDE
local reqs = {}
for l in io.lines("$WORK/keys") do
  reqs[#reqs + 1] = wrk.format("GET", "/api/user.getPermissions", {["x-api-key"] = l})
end
local i, limit, t0 = 0, $1, 0
request = function()
  i = i + 1
  if i == 1 then t0 = now() end
  if limit > 0 and i == limit + 1 then
    wrk.thread:set("rate", (limit - 31) / (now() - t0))
    finish()
  end
  return reqs[(i - 1) % #reqs + 1]
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function()
  local rate = threads[1]:get("rate")
  if rate then print(string.format("Pass/sec: %.2f", rate)) end
end
LUA
  }
  pass() { # label: one pass over all keys (bounded at two minutes), as a row
    row "$1" "$(wrk -t1 -c32 -d120s --latency -s "$WORK/pass.lua" "$URL/api/user.getPermissions")"
    if [ "$REQUESTS" -lt $((KEYS - 64)) ]; then
      echo "$1: the pass ended after $REQUESTS of $KEYS keys (time bound)" >>"$WORK/notes"
    fi
  }
  creations() { # label, script: key creations at one connection, as a row
    row "$1" "$(wrk -t1 -c1 -d"${DURATION}s" --latency "${AUTH[@]}" -s "$2" \
      "$URL/api/user.createApiKey")"
  }
  # The first usage flush after a pass writes a row per key used, and its checkpoint
  # follows; measured inside it, a row shows the flush rather than what it is meant to.
  settle() { sleep "${SETTLE:-10}"; }
  median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
  ratio() { echo "$1 / $2" | bc -l; }

  T0=$(date +%s.%N)
  wrk -t1 -c32 -d120s "${AUTH[@]}" -s "$WORK/seed.lua" "$URL/api/user.createApiKey" >/dev/null
  T1=$(date +%s.%N)
  SEEDED=$(wc -l <"$WORK/keys")
  [ "$SEEDED" -eq "$KEYS" ] || { echo "seeding made $SEEDED of $KEYS keys in 120 s" >&2; exit 1; }
  cycle "$KEYS" >"$WORK/pass.lua"
  cycle 0 >"$WORK/cycle.lua"
  RSS_SEEDED=$(rss)
  pass "GET /api/user.getPermissions, first use of each key after seeding"
  RSS_CACHED=$(rss)
  settle

  # Key creation at one connection: on a fresh server and database with one key (a new
  # one each round, on a port of its own), then on this one with KEYS keys cached.
  MANY_PID=$PID MANY_URL=$URL MANY_ADDR=$ADDR
  ONE_ADDR="127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  CREATE_RATIOS=()
  for r in $(seq 1 "$ROUNDS"); do
    ADDR=$ONE_ADDR URL="http://$ONE_ADDR"
    start "$WORK/one-$r.db"
    owner "$WORK/create-one.lua"
    curl -sf -o /dev/null "${AUTH[@]}" -d "$BODY" "$URL/api/user.createApiKey"
    creations "POST /api/user.createApiKey, 1 connection, 1 key (round $r)" "$WORK/create-one.lua"
    ONE=$RPS
    stop
    PID=$MANY_PID URL=$MANY_URL ADDR=$MANY_ADDR AUTH=("${MANY_AUTH[@]}")
    creations "POST /api/user.createApiKey, 1 connection, $KEYS keys cached (round $r)" \
      "$WORK/create.lua"
    CREATE_RATIOS+=("$(ratio "$RPS" "$ONE")")
  done
  run "GET /api/user.getPermissions, $KEYS keys in turn, alone" /api/user.getPermissions \
    -s "$WORK/cycle.lua"
  wrk -t1 -c1 -d"$((DURATION + 2))s" --latency "${AUTH[@]}" -s "$WORK/create.lua" \
    "$URL/api/user.createApiKey" >"$WORK/writer.txt" &
  WRITER=$!
  sleep 1
  run "GET /api/user.getPermissions, $KEYS keys in turn, with creations" \
    /api/user.getPermissions -s "$WORK/cycle.lua"
  BESIDE_P99=$P99
  wait "$WRITER"
  row "POST /api/user.createApiKey, 1 connection, beside those reads" "$(cat "$WORK/writer.txt")"

  # A cold and a warm pass, each round on a fresh start on the same database, against
  # the health check measured just before them, driven the same way as the passes: a
  # request() that returns a request formatted once, so that both rates carry the same
  # cost in wrk, on the same cores as the server (about 4% of a plain health check's).
  cat >"$WORK/health.lua" <<LUA
local req = wrk.format("GET", "/api/health")
request = function() return req end
LUA
  COLD_RATIOS=() WARM_RATIOS=()
  for r in $(seq 1 "$ROUNDS"); do
    stop
    start "$KDB" --cache-entries "$BOUND"
    run "GET /api/health, restarted on the same database (round $r)" /api/health \
      -s "$WORK/health.lua"
    HEALTH=$RPS
    [ "$r" -gt 1 ] || RSS_COLD=$(rss)
    pass "GET /api/user.getPermissions, cold pass: each key a miss (round $r)"
    COLD_RATIOS+=("$(ratio "$RPS" "$HEALTH")")
    [ "$r" -gt 1 ] || RSS_PASS=$(rss)
    settle
    pass "GET /api/user.getPermissions, warm pass: each key a hit (round $r)"
    WARM_RATIOS+=("$(ratio "$RPS" "$HEALTH")")
  done
  stop

  {
    printf 'seeding: %s keys over HTTP (wrk, 32 connections, user.createApiKey) in %.1f s\n' \
      "$KEYS" "$(echo "$T1 - $T0" | bc)"
    printf 'RSS: %.0f MB with one key, %.0f MB with %s keys stored, %.0f MB with them cached\n' \
      "$((RSS_START / 1024))" "$((RSS_SEEDED / 1024))" "$KEYS" "$((RSS_CACHED / 1024))"
    printf '  after a restart: %.0f MB, %.0f MB once the cold pass cached them all: %.2f KB per cached key\n' \
      "$((RSS_COLD / 1024))" "$((RSS_PASS / 1024))" "$(echo "($RSS_PASS - $RSS_COLD) / $KEYS" | bc -l)"
    printf 'cache bound: --cache-entries %s here; default %s (keys and sessions together, least recently used dropped)\n' \
      "$BOUND" "$("$BIN" serve --help | grep -A1 -- '--cache-entries' | sed -n 's/.*\[default: \([0-9]*\)\].*/\1/p')"
    ms() { echo "$1" | awk '{v=$1+0; if ($1 ~ /us$/) v/=1000; else if ($1 ~ /[0-9]s$/) v*=1000; print v}'; }
    verdict() { if [ "$(echo "$1" | bc -l)" -eq 1 ]; then echo met; else echo MISSED; fi; }
    rounds() { printf '%.2f ' "$@"; }
    R1=$(median "${CREATE_RATIOS[@]}")
    R2=$(ms "$BESIDE_P99")
    R3=$(median "${COLD_RATIOS[@]}")
    R4=$(median "${WARM_RATIOS[@]}")
    printf '%-56s %9s %9s %-7s %s\n' "target (median of $ROUNDS rounds)" "measured" "wanted" "" "rounds"
    printf '%-56s %9.2f %9s %-7s %s\n' "user.createApiKey, $KEYS keys cached / 1 key" "$R1" ">= 0.8" \
      "$(verdict "$R1 >= 0.8")" "$(rounds "${CREATE_RATIOS[@]}")"
    printf '%-56s %7.2fms %9s %-7s\n' "key-path p99 beside key creations" "$R2" "< 10ms" "$(verdict "$R2 < 10")"
    printf '%-56s %9.2f %9s %-7s %s\n' "cold pass / health" "$R3" ">= 0.5" "$(verdict "$R3 >= 0.5")" \
      "$(rounds "${COLD_RATIOS[@]}")"
    printf '%-56s %9.2f %9s %-7s %s\n' "warm pass / health" "$R4" ">= 0.9" "$(verdict "$R4 >= 0.9")" \
      "$(rounds "${WARM_RATIOS[@]}")"
  } >>"$WORK/notes"
fi

echo "keygate $("$BIN" version | awk '{print $2}'), $(nproc) cores, wrk -t1 -c32 -d${DURATION}s, $KEYS keys, $(date -u +%FT%TZ)"
awk -F'\t' '
  BEGIN { printf "%-66s %12s %10s %10s %8s %9s\n", "endpoint", "requests/s", "p50", "p99", "non-2xx", "vs health" }
  $1 ~ /^GET \/api\/health/ { base=$2 }
  { printf "%-66s %12s %10s %10s %8s %8.0f%%\n", $1, $2, $3, $4, $5, 100*$2/base }
' "$WORK/results.tsv"
[ ! -f "$WORK/notes" ] || cat "$WORK/notes"
