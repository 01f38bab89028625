#!/usr/bin/env bash
# What forward auth costs a protected service, through the real Caddy, in one run.
#
#   bench/forward_auth.sh [seconds per measurement, default 5] [rounds, default 5]
#
# Builds the release binary, starts keygate on 127.0.0.1 with a temporary database (an
# owner, an API key, an application with the domain app.localhost) and one Caddy with
# three sites: an upstream that answers 200 by itself, that upstream behind
# forward_auth (deploy/caddy/Caddyfile's directives), and the same upstream without
# auth. Each round runs wrk (one thread, 32 connections) against
#   (a) the upstream behind forward_auth, with the key,
#   (b) the upstream through Caddy without auth,
#   (c) GET /api/authz/forward-auth called directly, with the key and forwarded headers,
#   (d) keygate's GET /api/health,
# and prints requests/s per round, their medians, a/b and c/d (target 0.8 or more).
# Needs wrk and caddy. Every process is stopped by its pid, on exit too.
set -euo pipefail

DURATION="${1:-5}"
ROUNDS="${2:-5}"
cd "$(dirname "$0")/.."
for tool in wrk caddy; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
cargo build --release --quiet
BIN=target/release/keygate
WORK=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KG=$(port) UP=$(port) AUTH=$(port) OPEN=$(port)
URL="http://127.0.0.1:$KG"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

KEYGATE_LOG=warn "$BIN" serve --listen "127.0.0.1:$KG" --db "$WORK/k.db" --public-url "$URL" \
  >"$WORK/keygate.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "$URL/api/health" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -fsS -H 'content-type: application/json' "$@"; }
post -c "$WORK/c" -d '{"name":"O","email":"o@example.com","password":"correct horse battery"}' \
  "$URL/api/auth/sign-up/email" >/dev/null
ORG=$(curl -fsS -b "$WORK/c" "$URL/api/organization.active" | json '["id"]')
KEY=$(post -b "$WORK/c" -H "origin: $URL" \
  -d "{\"name\":\"bench\",\"metadata\":{\"organizationId\":\"$ORG\"}}" "$URL/api/user.createApiKey" | json '["key"]')
ENV=$(post -H "x-api-key: $KEY" -d '{"name":"site"}' "$URL/api/project.create" | json '["environment"]["environmentId"]')
APP=$(post -H "x-api-key: $KEY" -d "{\"name\":\"web\",\"environmentId\":\"$ENV\"}" \
  "$URL/api/application.create" | json '["applicationId"]')
post -H "x-api-key: $KEY" -d "{\"applicationId\":\"$APP\",\"host\":\"app.localhost\"}" \
  "$URL/api/domain.create" >/dev/null

cat >"$WORK/Caddyfile" <<CADDY
{
	admin off
	auto_https off
}
http://:$UP {
	bind 127.0.0.1
	respond "ok" 200
}
http://:$AUTH {
	bind 127.0.0.1
	forward_auth 127.0.0.1:$KG {
		uri /api/authz/forward-auth
		copy_headers X-Keygate-User-Id X-Keygate-Organization-Id X-Keygate-Role X-Keygate-Auth X-Keygate-Key-Id Remote-User Remote-Email Remote-Name Remote-Groups
	}
	request_header -X-Api-Key
	reverse_proxy 127.0.0.1:$UP
}
http://:$OPEN {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$UP
}
CADDY
HOME="$WORK" XDG_DATA_HOME="$WORK" XDG_CONFIG_HOME="$WORK" \
  caddy run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$OPEN/" >/dev/null && break; sleep 0.1; done
# Both paths must answer 200 before they are measured.
curl -fsS -o /dev/null -H "Host: app.localhost" -H "x-api-key: $KEY" "http://127.0.0.1:$AUTH/"
curl -fsS -o /dev/null -H "x-api-key: $KEY" -H "x-forwarded-host: app.localhost" \
  -H "x-forwarded-uri: /" -H "x-forwarded-method: GET" "$URL/api/authz/forward-auth"

rate() { # url, wrk header args...
  local url=$1; shift
  local out
  out=$(wrk -t1 -c32 -d"${DURATION}s" "$@" "$url")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "non-2xx answers from $url" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}

declare -a A B C D
printf '%-6s %12s %12s %12s %12s\n' round "a: guarded" "b: open" "c: direct" "d: health"
for r in $(seq "$ROUNDS"); do
  A[r]=$(rate "http://127.0.0.1:$AUTH/" -H "Host: app.localhost" -H "x-api-key: $KEY")
  B[r]=$(rate "http://127.0.0.1:$OPEN/" -H "Host: app.localhost")
  C[r]=$(rate "$URL/api/authz/forward-auth" -H "x-api-key: $KEY" -H "x-forwarded-host: app.localhost" \
    -H "x-forwarded-uri: /" -H "x-forwarded-method: GET")
  D[r]=$(rate "$URL/api/health")
  printf '%-6s %12s %12s %12s %12s\n' "$r" "${A[r]}" "${B[r]}" "${C[r]}" "${D[r]}"
done
python3 - "${A[*]}" "${B[*]}" "${C[*]}" "${D[*]}" <<'PY'
import statistics, sys
a, b, c, d = ([float(x) for x in s.split()] for s in sys.argv[1:])
m = statistics.median
print(f"median req/s: a {m(a):.0f}  b {m(b):.0f}  c {m(c):.0f}  d {m(d):.0f}")
ab = [x / y for x, y in zip(a, b)]
cd = [x / y for x, y in zip(c, d)]
print(f"a/b (guarded / open through Caddy): median {m(ab):.2f} (rounds {min(ab):.2f}-{max(ab):.2f})")
print(f"c/d (forward-auth / health): median {m(cd):.2f} (rounds {min(cd):.2f}-{max(cd):.2f}), target 0.8")
PY
