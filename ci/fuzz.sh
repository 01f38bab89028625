#!/usr/bin/env bash
# Spec-driven fuzzing of the HTTP API with schemathesis.
#
#   ci/fuzz.sh [seconds of fuzzing in all, default 300]
#
# Builds the release binary, starts it on 127.0.0.1 with a temporary database, signs up
# the owner, creates API keys (and keys for apiKey.verify to judge), spare sessions, a
# member, an invitation, two more organizations, a project with a second environment
# and an application with a domain, then runs schemathesis against the server's own
# /openapi.json with every check but one (see CHECKS below), in five passes that share
# the time:
#
#   key (3/8)             every operation but those that can end a key or a session,
#                         authenticated with an API key;
#   session (1/4)         the same operations with the session cookie and its Origin;
#   keys (1/8)            deleting, disabling and rotating keys, and signing out, with a
#                         key and a session of their own;
#   session-ending (1/8)  revoking sessions, new passwords, deleting organizations,
#                         with the session;
#   two-factor (1/8)      sign-in's code step, with the cookie of a member's password
#                         step (the member has two-factor on).
#
# Each pass then checks that its credential still works: a pass that lost it early
# would have seen only 401s, which conform to the spec and would go unnoticed. The ids
# made during setup are given to schemathesis as dictionaries, so that about half of
# the generated requests name things that exist and get past the 404s.
#
# Exits non-zero when schemathesis reports a failure or a pass lost its credential,
# and then prints the server's errors and the tail of its log. A pass that stopped on a
# fault inside schemathesis or hypothesis themselves (a Python traceback, no failed
# check) runs once more with the next seed; the second outcome stands. Needs schemathesis 4.x
# (python3 -m pip install 'schemathesis>=4,<5'), curl and python3. The server is
# stopped on exit, and stops by itself (timeout) should this script be killed before
# it can stop it.
#
# SCHEMATHESIS_SEED replays a run (every run prints its seed). FUZZ_REPORT_DIR, when
# set, keeps schemathesis' JUnit and NDJSON reports there.
set -euo pipefail

FUZZ_SECONDS="${1:-300}"
cd "$(dirname "$0")/.."

if ! command -v schemathesis >/dev/null; then
    echo "schemathesis is not installed: python3 -m pip install 'schemathesis>=4,<5'" >&2
    exit 1
fi
schemathesis --version

cargo build --release --locked --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/keygate"
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR="127.0.0.1:$PORT"
URL="http://$ADDR"
LOG="$WORK/server.log"

# The passes take FUZZ_SECONDS in all, plus setup and schemathesis' own start: the
# server never outlives that by much, even when this script dies without its trap.
LIFETIME=$((FUZZ_SECONDS + 600))
KEYGATE_LOG=info timeout --kill-after=15 "$LIFETIME" \
    "$BIN" serve --listen "$ADDR" --db "$WORK/keygate.db" >"$LOG" 2>&1 &
PID=$!

show_log() {
    echo "--- server log: errors and warnings (last 40) ---"
    grep -E ' (ERROR|WARN) ' "$LOG" | tail -n 40 || true
    echo "--- server log: 5xx answers (last 20) ---"
    grep -E 'status=5[0-9][0-9]' "$LOG" | tail -n 20 || true
    echo "--- server log: last 40 lines ---"
    tail -n 40 "$LOG" || true
    echo "--- end of server log ---"
}

cleanup() {
    local status=$?
    # timeout passes the TERM on to the server, which finishes the requests in flight
    # (10 seconds at most). Should it hang, kill timeout's process group: the server.
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    if [[ $status -ne 0 ]]; then
        show_log
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    "$BIN" healthcheck --listen "$ADDR" >/dev/null 2>&1 && break
    sleep 0.1
done
"$BIN" healthcheck --listen "$ADDR" >/dev/null

# --- Setup -----------------------------------------------------------------------------

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# call PATH [curl args...]: the answer's body; a non-2xx answer fails the script.
call() {
    local path=$1 out code
    shift
    out=$(curl -sS -w '\n%{http_code}' "$@" "$URL$path")
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    if [[ $code != 2?? ]]; then
        echo "$path answered $code: $out" >&2
        return 1
    fi
    printf '%s\n' "$out"
}
# post PATH JSON [curl args...]: a mutation.
post() {
    local path=$1 body=$2
    shift 2
    call "$path" -H 'content-type: application/json' -d "$body" "$@"
}
cookie_of() { awk '$6 == "keygate.session_token" { print $7 }' "$1"; }

OWNER_EMAIL=owner@example.com
OWNER_PASSWORD=fuzz-owner-password
sign_in() { # cookie jar -> the answer
    post /api/auth/sign-in/email "{\"email\":\"$OWNER_EMAIL\",\"password\":\"$OWNER_PASSWORD\"}" \
        -c "$1"
}
SIGNUP=$(post /api/auth/sign-up/email \
    "{\"name\":\"Fuzz Owner\",\"email\":\"$OWNER_EMAIL\",\"password\":\"$OWNER_PASSWORD\"}" \
    -c "$WORK/session")
ORG=$(echo "$SIGNUP" | json '["session"]["activeOrganizationId"]')
OWNER_ID=$(echo "$SIGNUP" | json '["user"]["id"]')
SESSION=$(cookie_of "$WORK/session")
# Spare sessions, made now: sign-in is rate limited per client address, and the passes
# sign in (and fail to) many times. The first is signed out in the keys pass, the
# others are revoked or signed out by a new password in the session-ending pass.
SPARE_SESSION=$(sign_in "$WORK/spare" >/dev/null && cookie_of "$WORK/spare")
VICTIM_SESSIONS=()
for i in 1 2; do
    VICTIM_SESSIONS+=("$(sign_in "$WORK/victim-$i" | json '["session"]["id"]')")
done

new_key() { # name [more fields of the body] -> the answer of user.createApiKey
    post /api/user.createApiKey \
        "{\"name\":\"$1\",\"metadata\":{\"organizationId\":\"$ORG\"}${2:+,$2}}" \
        -b "$WORK/session" -H "Origin: $URL"
}
KEY=$(new_key fuzz | json '["key"]')
SPARE_KEY=$(new_key spare | json '["key"]')
# Keys for the keys pass to delete, disable and rotate. The key it runs with is not
# among them, and no operation of that pass shows its id.
VICTIM_KEYS=()
for i in 1 2 3; do
    VICTIM_KEYS+=("$(new_key "victim-$i" | json '["id"]')")
done
# Secrets for apiKey.verify to judge, one for each verdict a key of ours can get: valid
# (the pass's own key), insufficient permissions (read-only, for a method that writes),
# usage exceeded (a quota of 3), rate limited (2 a minute) and disabled. No pass runs
# with the last four.
READ_ONLY_KEY=$(new_key read-only '"scope":{"readOnly":true}' | json '["key"]')
QUOTA_KEY=$(new_key quota '"remaining":3' | json '["key"]')
RATE_KEY=$(new_key rate \
    '"rateLimitEnabled":true,"rateLimitTimeWindow":60000,"rateLimitMax":2' | json '["key"]')
DISABLED=$(new_key disabled)
DISABLED_KEY=$(echo "$DISABLED" | json '["key"]')
post /api/user.updateApiKey \
    "{\"apiKeyId\":\"$(echo "$DISABLED" | json '["id"]')\",\"enabled\":false}" \
    -b "$WORK/session" -H "Origin: $URL" >/dev/null

auth=(-H "x-api-key: $KEY")
PROJECT=$(post /api/project.create '{"name":"fuzz project","description":"seed"}' "${auth[@]}")
PROJECT_ID=$(echo "$PROJECT" | json '["project"]["projectId"]')
PRODUCTION_ID=$(echo "$PROJECT" | json '["environment"]["environmentId"]')
STAGING_ID=$(post /api/environment.create "{\"projectId\":\"$PROJECT_ID\",\"name\":\"staging\"}" \
    "${auth[@]}" | json '["environmentId"]')
APP_ID=$(post /api/application.create \
    "{\"environmentId\":\"$STAGING_ID\",\"name\":\"fuzz app\",\"appName\":\"fuzz-app\"}" \
    "${auth[@]}" | json '["applicationId"]')
DOMAIN_ID=$(post /api/domain.create \
    "{\"applicationId\":\"$APP_ID\",\"host\":\"fuzz.example.com\",\"path\":\"/app\"}" \
    "${auth[@]}" | json '["domainId"]')
MEMBER_EMAIL=member@example.com
MEMBER_PASSWORD=fuzz-member-password
MEMBER=$(post /api/user.createUserWithCredentials \
    "{\"email\":\"$MEMBER_EMAIL\",\"password\":\"$MEMBER_PASSWORD\",\"name\":\"Member\",\"role\":\"member\"}" \
    "${auth[@]}")
MEMBER_USER_ID=$(echo "$MEMBER" | json '["userId"]')
# The member turns two-factor on (its first code computed here, RFC 6238 with SHA-1),
# then signs in as far as the code step: the two-factor pass runs with that step's
# cookie, and its backup codes are in a dictionary.
member_sign_in() { # cookie jar -> the answer
    post /api/auth/sign-in/email "{\"email\":\"$MEMBER_EMAIL\",\"password\":\"$MEMBER_PASSWORD\"}" \
        -c "$1"
}
member_sign_in "$WORK/member" >/dev/null
SETUP=$(post /api/auth/two-factor/enable "{\"password\":\"$MEMBER_PASSWORD\"}" \
    -b "$WORK/member" -H "Origin: $URL")
TOTP_CODE=$(echo "$SETUP" | python3 -c '
import base64, hmac, json, struct, sys, time, urllib.parse
uri = json.load(sys.stdin)["totpURI"]
secret = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
mac = hmac.digest(key, struct.pack(">Q", int(time.time()) // 30), "sha1")
o = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000))')
post /api/auth/two-factor/verify-totp "{\"code\":\"$TOTP_CODE\"}" \
    -b "$WORK/member" -H "Origin: $URL" >/dev/null
mapfile -t BACKUP_CODES < <(echo "$SETUP" | python3 -c \
    'import json,sys; print("\n".join(json.load(sys.stdin)["backupCodes"]))')
member_sign_in "$WORK/member-step" >/dev/null
CHALLENGE=$(awk '$6 == "keygate.two_factor" { print $7 }' "$WORK/member-step")
MEMBER_ID=$(echo "$MEMBER" | json '["id"]')
OWNER_MEMBER_ID=$(call /api/user.all "${auth[@]}" |
    python3 -c "import json,sys; print([m['id'] for m in json.load(sys.stdin) if m['role']=='owner'][0])")
INVITEE_EMAIL=invitee@example.com
INVITATION=$(post /api/organization.inviteMember "{\"email\":\"$INVITEE_EMAIL\",\"role\":\"admin\"}" \
    "${auth[@]}")
INVITATION_ID=$(echo "$INVITATION" | json '["id"]')
INVITATION_TOKEN=$(echo "$INVITATION" | json '["token"]')
# Two more organizations of the owner's, made with the session (keys cannot), for
# organization.delete to delete.
OTHER_ORGS=()
for i in 1 2; do
    OTHER_ORGS+=("$(post /api/organization.create "{\"name\":\"fuzz org $i\"}" \
        -b "$WORK/session" -H "Origin: $URL" | json '["id"]')")
done

# --- schemathesis configuration --------------------------------------------------------

CONFIG="$WORK/schemathesis.toml"
toml_list() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@"; }
cat >"$CONFIG" <<TOML
# No crash cache in the working tree: its requests name ids of this run's database.
[cache]
enabled = false

# Ids and secrets made during setup: a field of that name takes one of them about half
# of the time, and anything schemathesis generates otherwise.
[dictionaries.organizations]
values = $(toml_list "$ORG" "${OTHER_ORGS[@]}")
[dictionaries.other_organizations]
values = $(toml_list "${OTHER_ORGS[@]}")
[dictionaries.projects]
values = $(toml_list "$PROJECT_ID")
[dictionaries.environments]
values = $(toml_list "$PRODUCTION_ID" "$STAGING_ID")
[dictionaries.applications]
values = $(toml_list "$APP_ID")
[dictionaries.domains]
values = $(toml_list "$DOMAIN_ID")
[dictionaries.hosts]
values = $(toml_list fuzz.example.com other.example.com 127.0.0.1 xn--bcher-kva.example)
[dictionaries.paths]
values = $(toml_list / /app /app/v1)
[dictionaries.verified_keys]
values = $(toml_list "$KEY" "$READ_ONLY_KEY" "$QUOTA_KEY" "$RATE_KEY" "$DISABLED_KEY")
[dictionaries.methods]
values = $(toml_list GET HEAD POST DELETE)
[dictionaries.users]
values = $(toml_list "$OWNER_ID" "$MEMBER_USER_ID")
[dictionaries.members]
values = $(toml_list "$OWNER_MEMBER_ID" "$MEMBER_ID")
[dictionaries.invitations]
values = $(toml_list "$INVITATION_ID")
[dictionaries.invitation_tokens]
values = $(toml_list "$INVITATION_TOKEN")
[dictionaries.victim_sessions]
values = $(toml_list "${VICTIM_SESSIONS[@]}")
[dictionaries.victim_keys]
values = $(toml_list "${VICTIM_KEYS[@]}")
[dictionaries.emails]
values = $(toml_list "$OWNER_EMAIL" "$MEMBER_EMAIL" "$INVITEE_EMAIL")
[dictionaries.backup_codes]
values = $(toml_list "${BACKUP_CODES[@]}" 000000 123456)
[dictionaries.passwords]
values = $(toml_list "$OWNER_PASSWORD" "$MEMBER_PASSWORD")

[parameters]
"query.organizationId" = { dictionary = "organizations", probability = 0.5 }
"body.organizationId" = { dictionary = "organizations", probability = 0.5 }
"body.metadata.organizationId" = { dictionary = "organizations", probability = 0.5 }
"query.projectId" = { dictionary = "projects", probability = 0.5 }
"body.projectId" = { dictionary = "projects", probability = 0.5 }
"body.scope.projectIds[*]" = { dictionary = "projects", probability = 0.5 }
"body.accessedProjects[*]" = { dictionary = "projects", probability = 0.5 }
"query.environmentId" = { dictionary = "environments", probability = 0.5 }
"body.environmentId" = { dictionary = "environments", probability = 0.5 }
"body.accessedEnvironments[*]" = { dictionary = "environments", probability = 0.5 }
"query.applicationId" = { dictionary = "applications", probability = 0.5 }
"body.applicationId" = { dictionary = "applications", probability = 0.5 }
"body.accessedServices[*]" = { dictionary = "applications", probability = 0.5 }
"query.domainId" = { dictionary = "domains", probability = 0.5 }
"body.domainId" = { dictionary = "domains", probability = 0.5 }
"body.host" = { dictionary = "hosts", probability = 0.5 }
"body.path" = { dictionary = "paths", probability = 0.5 }
"body.key" = { dictionary = "verified_keys", probability = 0.5 }
"body.method" = { dictionary = "methods", probability = 0.5 }
"query.userId" = { dictionary = "users", probability = 0.5 }
"body.userId" = { dictionary = "users", probability = 0.5 }
"body.memberId" = { dictionary = "members", probability = 0.5 }
"body.invitationId" = { dictionary = "invitations", probability = 0.5 }
"body.token" = { dictionary = "invitation_tokens", probability = 0.5 }
"body.invitationToken" = { dictionary = "invitation_tokens", probability = 0.5 }
"body.sessionId" = { dictionary = "victim_sessions", probability = 0.5 }
"body.apiKeyId" = { dictionary = "victim_keys", probability = 0.5 }
"body.email" = { dictionary = "emails", probability = 0.5 }
"body.password" = { dictionary = "passwords", probability = 0.3 }
"body.code" = { dictionary = "backup_codes", probability = 0.5 }
"body.currentPassword" = { dictionary = "passwords", probability = 0.3 }

# A body over the 16 KiB limit is refused with 413 before its fields are read: that
# rejects a request the schema forbids (a string far past its maxLength) as surely as a
# 400 does. The rest is schemathesis' own list.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

# The owner's first organization stays: the session-ending pass checks afterwards that
# its session still works there.
[[operations]]
include-operation-id = "organization.delete"
parameters = { "body.organizationId" = { dictionary = "other_organizations", probability = 0.5 } }
TOML

SEED="${SCHEMATHESIS_SEED:-$RANDOM$RANDOM}"
echo "server $URL, organization $ORG, project $PROJECT_ID, seed $SEED"

# Every check but positive_data_acceptance. That check calls every 4xx to a request that
# matches the schema a failure, but keeps a 400 for rules no schema can state: the
# default environment cannot be removed, an owner keeps one organization, a new
# password needs the current one, accessedProjects must name projects of the
# organization, acceptInvitation takes exactly one of invitationId and token. Those
# answers are documented (400 with `reason`); everything else about them (status,
# content type, headers, body schema) is still checked.
CHECKS=(--checks all --exclude-checks positive_data_acceptance)

# tool_fault FILE: whether a pass's output shows no failed check and only errors raised
# inside schemathesis or hypothesis themselves (a "Runtime Error" with a Python
# traceback, such as CPython 3.11's "AST constructor recursion depth mismatch" while
# hypothesis describes a lambda). Such a pass says nothing about keygate's answers.
tool_fault() {
    ! grep -q '^=* FAILURES =*$' "$1" &&
        grep -q 'Traceback (most recent call last)' "$1" &&
        awk '/^Errors:$/ {on=1; next} on && /^$/ {exit} on {print}' "$1" |
        awk 'NF {n++; if ($0 !~ /Runtime Error: [0-9]+$/) bad=1} END {exit !(n > 0 && !bad)}'
}

fuzz() { # label, seconds, schemathesis args...
    local label=$1 seconds=$2
    shift 2
    local reports=() seed=$SEED out="$WORK/pass-$1.txt" rc
    if [[ -n ${FUZZ_REPORT_DIR:-} ]]; then
        mkdir -p "$FUZZ_REPORT_DIR"
        reports=(--report junit,ndjson --report-dir "$FUZZ_REPORT_DIR/$label")
    fi
    echo
    echo "==> schemathesis, $label pass (${seconds}s)"
    # No generated security parameters: the credential of the pass is the one given.
    # Requests without it, or with a wrong one, come from the ignored_auth check.
    # Output is not sanitized, so that every curl reproduction is exact: the keys,
    # cookies and passwords are throwaways on a temporary database.
    # schemathesis runs through ci/run_schemathesis.py, which works around a fault of
    # CPython 3.11 inside hypothesis. A pass that still stops on a fault of the tool
    # itself runs once more, with the next seed; any other outcome of either run stands.
    for attempt in 1 2; do
        rc=0
        python3 ci/run_schemathesis.py --config-file "$CONFIG" run "$URL/openapi.json" \
            "${CHECKS[@]}" \
            --max-time "$seconds" \
            --seed "$seed" \
            --workers 2 \
            --no-color \
            --output-truncate false \
            --output-sanitize false \
            --generation-database none \
            --generation-with-security-parameters false \
            "${reports[@]}" \
            "$@" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
        if [[ $rc -eq 0 ]]; then
            return 0
        fi
        if [[ $attempt -eq 1 ]] && tool_fault "$out"; then
            seed=$((seed + 1))
            echo "==> the $label pass stopped on a fault inside schemathesis, not on an" \
                "answer of keygate; running it again with seed $seed"
            continue
        fi
        return "$rc"
    done
}

# still_works LABEL CURL-ARGS...: the credential of a pass must outlive the pass, or the
# rest of that pass was only 401s (which conform to the spec, so would go unnoticed).
still_works() {
    local label=$1 code
    shift
    code=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$URL/api/user.get")
    if [[ $code != 200 ]]; then
        echo "the $label pass lost its credential: user.get now answers $code" >&2
        return 1
    fi
}

filters() { # --include|--exclude, operation ids...
    local how=$1
    shift
    for op in "$@"; do printf '%s\n' "$how-operation-id" "$op"; done
}

# Operations that can end the key a pass runs with: deleting it, disabling it
# (updateApiKey with enabled=false), rotating it (the old secret dies after
# gracePeriodSeconds, default 0). schemathesis reuses the ids it saw in earlier answers,
# and user.get lists the key's id, so it does find it.
ENDS_KEY=(user.deleteApiKey user.updateApiKey user.rotateApiKey)
# Operations that can end the session a pass runs with: signing out, revoking it
# (get-session and user.listSessions show its id), a new password (ends the other
# sessions), deleting the organization it acts in. (user.remove cannot: nobody removes
# itself; the owner cannot be demoted.)
ENDS_SESSION=(auth.signOut user.revokeSession user.update organization.delete)

BUDGET_KEY=$((FUZZ_SECONDS * 3 / 8))
BUDGET_TWO_FACTOR=$((FUZZ_SECONDS / 8))
BUDGET_SESSION=$((FUZZ_SECONDS / 4))
BUDGET_KEYS=$((FUZZ_SECONDS / 8))
BUDGET_ENDS_SESSION=$((FUZZ_SECONDS - BUDGET_KEY - BUDGET_SESSION - BUDGET_KEYS - BUDGET_TWO_FACTOR))

status=0
# 1. Every other operation, with an API key. ENDS_SESSION waits for pass 4: a key can
#    revoke its user's sessions, and the sessions made above must live until then.
mapfile -t args < <(filters --exclude "${ENDS_KEY[@]}" "${ENDS_SESSION[@]}")
fuzz key "$BUDGET_KEY" -H "x-api-key: $KEY" "${args[@]}" || status=1
still_works key -H "x-api-key: $KEY" || status=1

# 2. The same with the session cookie: what keys cannot do (organization.create,
#    setActive, acceptInvitation) and the Origin checks (state changes authenticated by
#    the cookie must carry the server's Origin).
fuzz session "$BUDGET_SESSION" -H "Cookie: keygate.session_token=$SESSION" -H "Origin: $URL" \
    "${args[@]}" || status=1
still_works session -H "Cookie: keygate.session_token=$SESSION" || status=1

# 3. Deleting, disabling and rotating keys, with a key of its own (the x-api-key
#    decides), and signing out a spare session (its cookie; signOut reads only that).
mapfile -t args < <(filters --include "${ENDS_KEY[@]}" auth.signOut)
fuzz keys "$BUDGET_KEYS" -H "x-api-key: $SPARE_KEY" \
    -H "Cookie: keygate.session_token=$SPARE_SESSION" -H "Origin: $URL" "${args[@]}" || status=1
still_works keys -H "x-api-key: $SPARE_KEY" || status=1

# 4. Revoking sessions, new passwords and deleting organizations, with the session. No
#    operation of this pass shows the session's id or its organization's, so it survives
#    unless the server ends it wrongly (a new password keeps the current session).
# Pass 2 may have moved the session to another organization, which this pass deletes.
post /api/organization.setActive "{\"organizationId\":\"$ORG\"}" \
    -H "Cookie: keygate.session_token=$SESSION" -H "Origin: $URL" >/dev/null
mapfile -t args < <(filters --include user.revokeSession user.update organization.delete)
fuzz session-ending "$BUDGET_ENDS_SESSION" -H "Cookie: keygate.session_token=$SESSION" \
    -H "Origin: $URL" "${args[@]}" || status=1
still_works session-ending -H "Cookie: keygate.session_token=$SESSION" || status=1

# 5. Sign-in's code step, with the cookie of the member's password step: wrong codes,
#    backup codes (one of them ends the step), and the guessing budget's 429s.
mapfile -t args < <(filters --include twoFactor.verifyTotp twoFactor.verifyBackupCode)
fuzz two-factor "$BUDGET_TWO_FACTOR" -H "Cookie: keygate.two_factor=$CHALLENGE" \
    -H "Origin: $URL" "${args[@]}" || status=1

if ! kill -0 "$PID" 2>/dev/null; then
    echo "the server exited during the run" >&2
    status=1
fi

echo
if [[ $status -ne 0 ]]; then
    echo "API fuzzing failed (seed $SEED; replay with SCHEMATHESIS_SEED=$SEED)" >&2
else
    echo "API fuzzing found no failures (seed $SEED)"
fi
exit "$status"
