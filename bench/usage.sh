#!/usr/bin/env bash
# What the usage flush costs the key path and other writes, with many keys in use.
#
#   bench/usage.sh [keys, default 100000] [seconds, default 20]
#
# Builds and starts the release binary (or the one $BIN names) on 127.0.0.1 with a
# temporary database, signs up an owner, creates `keys` keys over HTTP (32 connections)
# and uses each once, so that all are cached. Then, for `seconds`, it runs
# key-authenticated reads (`user.getPermissions`, 32 connections) that cycle through all
# the keys, so that every flush (every 2 seconds) has tens of thousands of keys to write,
# and beside them a light stream of `project.create` (one connection, a request every
# 10 ms or so). Every answer's arrival and latency is logged, and the flushes are taken
# from the server's own log (`key usage flushed` at debug level, with its duration); it
# reports the key path's rate and p99 during flushes against between them, and
# `project.create`'s p99 for requests started during and between flushes. A build that
# does not log its flushes is measured against the first second of each 2-second cycle.
# Last, the bytes the server wrote to storage per second (WAL, checkpoints) over the run.
# Set BIN to another build to compare. Needs wrk (with LuaJIT's ffi), curl and python3;
# takes about a minute and a half at 100,000 keys.
set -euo pipefail

KEYS="${1:-100000}"
SECONDS_="${2:-20}"
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
now() { python3 -c 'import time; print(f"{time.time():.3f}")'; }

# Every key stays cached: the cache is not what this measures.
KEYGATE_LOG="warn,keygate::server=debug" "$BIN" serve --listen "$ADDR" \
  --db "$WORK/keygate.db" --cache-entries $((KEYS * 2)) >"$WORK/server.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# The flusher starts its 2-second clock as the server starts listening: the first
# answer to a health check, polled every few milliseconds, marks it.
for _ in $(seq 1 1000); do
  curl -sf -o /dev/null "$URL/api/health" 2>/dev/null && break
  sleep 0.005
done
T0=$(now)

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
SIGNUP=$(curl -sf -c "$WORK/cookies" -H 'content-type: application/json' \
  -d '{"name":"Bench","email":"bench@example.com","password":"bench-password"}' \
  "$URL/api/auth/sign-up/email")
ORG=$(echo "$SIGNUP" | json '["session"]["activeOrganizationId"]')
TOKEN=$(awk '$6 ~ /session_token/ {print $7}' "$WORK/cookies")
AUTH=(-H "cookie: keygate.session_token=$TOKEN" -H "origin: $URL" -H 'content-type: application/json')
BODY="{\"name\":\"bench\",\"metadata\":{\"organizationId\":\"$ORG\"}}"
KEY=$(curl -sf "${AUTH[@]}" -d "$BODY" "$URL/api/user.createApiKey" | json '["key"]')

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

# Logs when each answer arrived and how long it took (microseconds, wall clock). Each
# thread has one connection, so its requests and answers alternate. Thread `id` of `n`
# uses every n-th key of the key file, in turn (`keys` is the key file's path, or empty
# for one fixed request).
cat >"$WORK/timed.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } kg_timespec;
int clock_gettime(int clock, kg_timespec *tp);
]]
local ts = ffi.new("kg_timespec")
local function now_us()
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end
local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
end
init = function(args)
  out_path, n, keys_path = args[1], tonumber(args[2]), args[3]
  out = io.open(out_path .. "." .. id, "w")
  keys, at, lines, sent = {}, 0, 0, 0
  if keys_path ~= "" then
    local j = 0
    for l in io.lines(keys_path) do
      if j % n == id then keys[#keys + 1] = l end
      j = j + 1
    end
  end
end
request = function()
  sent = now_us()
  if #keys == 0 then
    at = at + 1
    return wrk.format("POST", nil, nil, '{"name":"p-' .. at .. '"}')
  end
  at = at % #keys + 1
  return wrk.format("GET", nil, {["x-api-key"] = keys[at]})
end
response = function()
  local t = now_us()
  out:write(string.format("%.0f %.0f\n", t, t - sent))
  lines = lines + 1
  if lines % 256 == 0 then out:flush() end
end
if os.getenv("KG_PAUSE_MS") then
  delay = function() return tonumber(os.getenv("KG_PAUSE_MS")) end
end
LUA

echo "keygate $("$BIN" version | awk '{print $2}'), $(nproc) cores, $KEYS keys, $(date -u +%FT%TZ)"
START=$(now)
touch "$WORK/keys"
while [ "$(wc -l <"$WORK/keys")" -lt "$KEYS" ]; do
  wrk -t1 -c32 -d2s "${AUTH[@]}" -s "$WORK/seed.lua" "$URL/api/user.createApiKey" >/dev/null
done
head -n "$KEYS" "$WORK/keys" >"$WORK/keys.n" && mv "$WORK/keys.n" "$WORK/keys"
while [ "$(cat "$WORK/warm.pos" 2>/dev/null || echo 0)" -lt "$KEYS" ]; do
  wrk -t1 -c32 -d2s -s "$WORK/warm.lua" "$URL/api/user.getPermissions" >/dev/null
done
echo "created and used $KEYS keys in $(python3 -c "print(round($(now) - $START, 1))") s; RSS $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$PID/status")"

# The measurement: key-authenticated reads with 32 connections, and one connection
# creating a project every 10 ms or so, for `seconds`.
MEASURE_FROM=$(now)
written() { awk '/^write_bytes/ {print $2}' "/proc/$PID/io"; }
WRITTEN_FROM=$(written)
wrk -t32 -c32 -d"${SECONDS_}s" -s "$WORK/timed.lua" "$URL/api/user.getPermissions" \
  -- "$WORK/reads" 32 "$WORK/keys" >"$WORK/reads.txt" &
READS=$!
KG_PAUSE_MS=10 wrk -t1 -c1 -d"${SECONDS_}s" -H "x-api-key: $KEY" -H 'content-type: application/json' \
  -s "$WORK/timed.lua" "$URL/api/project.create" -- "$WORK/creates" 1 "" >"$WORK/creates.txt"
wait "$READS"
WRITTEN=$(( $(written) - WRITTEN_FROM ))

python3 - "$WORK" "$T0" "$MEASURE_FROM" "$WRITTEN" "$SECONDS_" <<'PY'
import datetime, glob, re, sys
work, t0, start = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
written, seconds = int(sys.argv[4]), float(sys.argv[5])

def load(prefix):
    out = []
    for path in glob.glob(f"{work}/{prefix}.*"):
        if path.endswith(".txt"):
            continue
        for line in open(path):
            parts = line.split()
            if len(parts) == 2:
                t, lat = float(parts[0]) / 1e6, float(parts[1]) / 1e3
                out.append((t - lat / 1e3, t, lat))  # started, answered (s), latency (ms)
    return out

reads, creates = load("reads"), load("creates")
# What the server logged: each flush's end and duration.
flushes = []
for line in open(f"{work}/server.log"):
    m = re.match(r"(\S+Z).*key usage flushed.*keys=(\d+).*ms=([0-9.]+)", line)
    if m:
        end = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        ms = float(m.group(3))
        flushes.append((end - ms / 1000, end, int(m.group(2)), ms))
logged = bool(flushes)
if not logged:
    # A build that does not log its flushes: they start every 2 s from the server's start;
    # take the first second of each cycle.
    k = int((start - t0) // 2)
    flushes = [(t0 + 2 * i, t0 + 2 * i + 1, 0, 0.0) for i in range(k, k + 200)]
# The span measured: from the first answer plus a second (connections warm up) to the
# last answer less a second (files flushed in 256-line chunks).
lo = min(r[1] for r in reads) + 1
hi = max(r[1] for r in reads) - 1
flushes = [f for f in flushes if f[1] > lo and f[0] < hi]

def during(t):
    return any(a <= t <= b for a, b, _, _ in flushes)

span_flush = sum(min(b, hi) - max(a, lo) for a, b, _, _ in flushes)
span_between = (hi - lo) - span_flush

def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else float("nan")

def stats(rows, pred):
    done = [r for r in rows if lo <= r[1] <= hi and pred(r[1])]
    started = [r[2] for r in rows if lo <= r[0] <= hi and pred(r[0])]
    return len(done), p99(started), max(started, default=float("nan"))

rf, rb = stats(reads, during), stats(reads, lambda t: not during(t))
cf, cb = stats(creates, during), stats(creates, lambda t: not during(t))
call = stats(creates, lambda t: True)
rate_f = rf[0] / span_flush if span_flush else float("nan")
rate_b = rb[0] / span_between
print(f"measured {hi - lo:.1f} s: {len(flushes)} flushes, {span_flush:.1f} s in them"
      + ("" if logged else " (not logged: the first second of each 2 s cycle)"))
if logged:
    print("  flushes (keys, ms): " + ", ".join(f"{k} {ms:.0f}" for _, _, k, ms in flushes))
print(f"key path during flushes:  {rate_f:9.0f}/s, p99 {rf[1]:7.2f} ms")
print(f"key path between flushes: {rate_b:9.0f}/s, p99 {rb[1]:7.2f} ms")
print(f"key path during / between: {rate_f / rate_b:.2f}")
print(f"project.create started during flushes:  p99 {cf[1]:7.2f} ms, max {cf[2]:7.2f} ms")
print(f"project.create started between flushes: p99 {cb[1]:7.2f} ms, max {cb[2]:7.2f} ms")
print(f"project.create, all {call[0]}: p99 {call[1]:.2f} ms")
print(f"written to storage by the server: {written / seconds / 1e6:.1f} MB/s")
PY
