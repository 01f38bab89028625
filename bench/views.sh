#!/usr/bin/env bash
# `project.all` for a member against an owner, for answers of the same size.
#
#   bench/views.sh [seconds per measurement, default 5] [sizes, default "20 100x5 1000"]
#
# Builds and starts the release binary (or the one $BIN names) on 127.0.0.1 with a
# temporary database, signs up an owner and creates a member with `canAccessToAPI`, one
# key each. For each size (`P` projects, or `PxA` projects with A applications in each
# default environment) it creates the resources, gives the member every one of them (so
# both answers are byte for byte the same), and measures health, the owner's
# `project.all` and the member's with wrk (one thread, 32 connections). Needs wrk, curl
# and python3. The server is stopped on exit.
set -euo pipefail

DURATION="${1:-5}"
SIZES="${2:-20 100x5 1000}"
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

KEYGATE_LOG=warn "$BIN" serve --listen "$ADDR" --db "$WORK/keygate.db" >"$WORK/server.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  "$BIN" healthcheck --listen "$ADDR" >/dev/null 2>&1 && break
  sleep 0.1
done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf -H 'content-type: application/json' "$@"; }
SIGNUP=$(post -c "$WORK/owner" -d '{"name":"Owner","email":"owner@example.com","password":"bench-password"}' \
  "$URL/api/auth/sign-up/email")
ORG=$(echo "$SIGNUP" | json '["session"]["activeOrganizationId"]')
OWNER=(-b "$WORK/owner" -H "origin: $URL")
OWNER_KEY=$(post "${OWNER[@]}" -d "{\"name\":\"owner\",\"metadata\":{\"organizationId\":\"$ORG\"}}" \
  "$URL/api/user.createApiKey" | json '["key"]')
MEMBER=$(post "${OWNER[@]}" -d '{"email":"member@example.com","password":"bench-password","name":"Member","role":"member"}' \
  "$URL/api/user.createUserWithCredentials" | json '["userId"]')
post "${OWNER[@]}" -d "{\"userId\":\"$MEMBER\",\"canAccessToAPI\":true}" "$URL/api/user.assignPermissions" >/dev/null
post -c "$WORK/member" -d '{"email":"member@example.com","password":"bench-password"}' \
  "$URL/api/auth/sign-in/email" >/dev/null
MEMBER_KEY=$(post -b "$WORK/member" -H "origin: $URL" \
  -d "{\"name\":\"member\",\"metadata\":{\"organizationId\":\"$ORG\"}}" \
  "$URL/api/user.createApiKey" | json '["key"]')

# Creates projects (and applications in their default environments) until there are
# `want` projects with `apps` applications each, 8 requests at a time.
grow() { # want-projects apps-per-project
  local want=$1 apps=$2 have
  have=$(curl -sf -H "x-api-key: $OWNER_KEY" "$URL/api/project.search?limit=1" | json '["total"]')
  seq "$have" $((want - 1)) | xargs -P8 -I{} curl -sf -o /dev/null -H "x-api-key: $OWNER_KEY" \
    -H 'content-type: application/json' -d '{"name":"p-{}"}' "$URL/api/project.create"
  curl -sf -H "x-api-key: $OWNER_KEY" "$URL/api/project.all" >"$WORK/all.json"
  python3 - "$WORK/all.json" "$apps" >"$WORK/envs" <<'PY'
import json, sys
projects = json.load(open(sys.argv[1]))
for p in projects:
    for e in p["environments"]:
        if e["isDefault"]:
            print(e["environmentId"], int(sys.argv[2]) - len(e["applications"]))
PY
  while read -r env missing; do
    for _ in $(seq 1 "$missing"); do echo "$env"; done
  done <"$WORK/envs" | xargs -P8 -I{} curl -sf -o /dev/null -H "x-api-key: $OWNER_KEY" \
    -H 'content-type: application/json' -d '{"name":"app","environmentId":"{}"}' \
    "$URL/api/application.create"
  curl -sf -H "x-api-key: $OWNER_KEY" "$URL/api/project.all" >"$WORK/all.json"
  python3 - "$WORK/all.json" "$MEMBER" >"$WORK/grant.json" <<'PY'
import json, sys
projects = json.load(open(sys.argv[1]))
envs = [e for p in projects for e in p["environments"]]
print(json.dumps({
    "userId": sys.argv[2], "canAccessToAPI": True,
    "accessedProjects": [p["projectId"] for p in projects],
    "accessedEnvironments": [e["environmentId"] for e in envs],
    "accessedServices": [a["applicationId"] for e in envs for a in e["applications"]],
}))
PY
  post "${OWNER[@]}" -d @"$WORK/grant.json" "$URL/api/user.assignPermissions" >/dev/null
}

measure() { # path, extra wrk args...
  local path=$1; shift
  wrk -t1 -c32 -d"${DURATION}s" --latency "$@" "$URL$path" \
    | awk '/Requests\/sec/ {r=$2} $1=="99%" {p=$2} /Non-2xx/ {n=$NF} END {printf "%s %s %s", r, p, n+0}'
}

echo "keygate $("$BIN" version | awk '{print $2}'), $(nproc) cores, wrk -t1 -c32 -d${DURATION}s, $(date -u +%FT%TZ)"
printf '%-10s %10s %10s %12s %10s %12s %10s %9s\n' size bytes health owner/s "p99" member/s "p99" member/owner
for size in $SIZES; do
  projects=${size%x*}
  apps=0
  [ "$size" != "$projects" ] && apps=${size#*x}
  grow "$projects" "$apps"
  owner_bytes=$(curl -sf -H "x-api-key: $OWNER_KEY" "$URL/api/project.all" | wc -c)
  member_bytes=$(curl -sf -H "x-api-key: $MEMBER_KEY" "$URL/api/project.all" | wc -c)
  [ "$owner_bytes" = "$member_bytes" ] || echo "answers differ: owner $owner_bytes bytes, member $member_bytes" >&2
  read -r health _ _ <<<"$(measure /api/health)"
  read -r owner owner_p99 owner_bad <<<"$(measure /api/project.all -H "x-api-key: $OWNER_KEY")"
  read -r member member_p99 member_bad <<<"$(measure /api/project.all -H "x-api-key: $MEMBER_KEY")"
  [ "$owner_bad$member_bad" = "00" ] || echo "non-2xx answers: owner $owner_bad, member $member_bad" >&2
  printf '%-10s %10s %10s %12s %10s %12s %10s %9.2f\n' "$size" "$owner_bytes" "$health" \
    "$owner" "$owner_p99" "$member" "$member_p99" "$(python3 -c "print($member / $owner)")"
done
