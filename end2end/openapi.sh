#!/usr/bin/env bash
# The live manager against its own OpenAPI document: schemathesis generates requests for every
# operation (valid and invalid) and fails on any 5xx or on a response body that breaks the
# documented schema. /api/v1 runs with a sign-in token, /oapi/v1 with a personal access token.
#
# Usage: end2end/openapi.sh <manager binary> <schemathesis `st` binary> [max examples per operation]
set -euo pipefail

MANAGER=$1
ST=$2
EXAMPLES=${3:-30}
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

DAMSELFLY_ROOT_PASSWORD=schema-check-root "$MANAGER" --data-dir "$WORK/data" --http-addr 127.0.0.1:0 \
  --grpc-addr 127.0.0.1:0 --site-root "$WORK/no-site" --ready-file "$WORK/ready.json" >"$WORK/manager.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/ready.json" ] && break; sleep 0.1; done
BASE="http://$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$WORK/ready.json")"

json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
JWT=$(curl -sf -XPOST "$BASE/api/v1/users/signin" -H 'content-type: application/json' \
  -d '{"name":"root","password":"schema-check-root"}' | json token)
COMMON=(--checks not_a_server_error,response_schema_conformance,content_type_conformance
  --max-examples "$EXAMPLES" --seed 7 --workers 1 --no-color --request-timeout 10
  --generation-database none --suppress-health-check all)
# Sign-out, password changes and user edits would end the run's own session or lock root out;
# they are covered by server/tests/it/api.rs instead. The token for /oapi/v1 is made afterwards, since
# the first run deletes whatever tokens it finds.
"$ST" run "$BASE/openapi.json" "${COMMON[@]}" -H "Authorization: Bearer $JWT" \
  --include-path-regex '^/(api/v1|healthy)' \
  --exclude-operation-id signout --exclude-operation-id reset_password --exclude-operation-id update_user
EXPIRY=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
# The first run may have deleted the default tenant or root's membership in it: give the token a
# tenant of its own.
post() {
  local out
  out=$(curl -sS -XPOST "$BASE$1" -H "Authorization: Bearer $JWT" -H 'content-type: application/json' -d "$2" \
    -w '\n%{http_code}')
  if [[ "${out##*$'\n'}" != 2* ]]; then echo "POST $1 failed: $out" >&2; exit 1; fi
  echo "${out%$'\n'*}"
}
TENANT=$(post /api/v1/tenants "{\"name\":\"schemathesis-oapi-$$\"}" | json id)
PAT=$(post /api/v1/personal-access-tokens \
  "{\"tenant_id\":$TENANT,\"name\":\"schemathesis\",\"scopes\":[\"job\",\"cluster\"],\"expired_at\":\"$EXPIRY\"}" | json token)

"$ST" run "$BASE/openapi.json" "${COMMON[@]}" -H "Authorization: Bearer $PAT" --include-path-regex '^/oapi/v1'
if grep -q 'panicked' "$WORK/manager.log"; then
  echo "the manager panicked during the run:"; grep -A5 panicked "$WORK/manager.log"; exit 1
fi
echo "OpenAPI conformance: no server errors, responses match the document"
