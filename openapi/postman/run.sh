#!/usr/bin/env bash
# `make postman`: runs the Postman collection with newman against a server of its own.
#
# Starts `safeguard serve` on a fresh SQLite database (demo population seeded) on a free port,
# waits for /_status, mints a token for each demo client with `safeguard token` (the
# collection's documented local-token step), runs the collection with its environment and
# those values as --env-var overrides, then stops the server. Exit status: newman's.
#
#   openapi/postman/run.sh              run the collection
#   openapi/postman/run.sh --examples   run it, then store each request's response as its
#                                       saved example (openapi/postman/examples.py)
#
# Needs .venv (make .venv/.installed) and newman (npm ci --prefix openapi/postman); the
# make target sees to both.
set -euo pipefail
cd "$(dirname "$0")/../.."

examples=false
case "${1:-}" in
  "") ;;
  --examples) examples=true ;;
  *) echo "usage: $0 [--examples]" >&2; exit 2 ;;
esac

collection=openapi/safeguard-fhir.postman_collection.json
environment=openapi/safeguard-fhir.postman_environment.json
newman=openapi/postman/node_modules/.bin/newman
venv=.venv/bin
for needed in "$newman" "$venv/safeguard"; do
  [ -x "$needed" ] || { echo "$needed is missing: run make postman" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/safeguard-postman.XXXXXX")
port=$("$venv/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port/fhir"

# The server's settings, and the same for `safeguard token` (it reads the same database).
# Settings the caller's shell may hold and that would change what the journeys see are reset.
unset SAFEGUARD_CANONICAL_BASE_URL SAFEGUARD_RATE_LIMIT_PER_MINUTE SAFEGUARD_SUBSCRIPTION_ENDPOINTS
export SAFEGUARD_DATABASE_URL="sqlite:///$work/safeguard.db"
export SAFEGUARD_BASE_URL="$base"
export SAFEGUARD_EXPORT_DIR="$work/exports"
export SAFEGUARD_SEED_DEMO=true
export SAFEGUARD_LOCAL_TOKENS=true
export SAFEGUARD_TOKEN_LIFETIME_SECONDS=3600  # outlives a slow run

server=""
stop() {
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill "$server"
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT

started=$(date +%s)
"$venv/safeguard" serve --host 127.0.0.1 --port "$port" >"$work/server.log" 2>&1 &
server=$!

ready=false
for _ in $(seq 1 120); do
  if ! kill -0 "$server" 2>/dev/null; then
    break
  fi
  if "$venv/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
    "http://127.0.0.1:$port/_status" 2>/dev/null; then
    ready=true
    break
  fi
  sleep 0.5
done
if ! $ready; then
  echo "the server did not come up on port $port; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
echo "server up at $base in $(($(date +%s) - started)) s (database $work/safeguard.db)"

token() { "$venv/safeguard" token --client "$1" | tail -n 1; }
overrides=(
  --env-var "baseUrl=$base"
  --env-var "gpToken=$(token demo-gp)"
  --env-var "hospitalToken=$(token demo-hospital)"
  --env-var "laAToken=$(token demo-la-a)"
  --env-var "laBToken=$(token demo-la-b)"
)
reporters=(--reporters cli)
if $examples; then
  reporters=(--reporters cli,json --reporter-json-export "$work/report.json")
fi

status=0
"$newman" run "$collection" --environment "$environment" "${overrides[@]}" \
  --timeout-request 30000 --color off "${reporters[@]}" || status=$?

if [ "$status" -ne 0 ]; then
  echo "newman failed (exit $status); the server's log ends:" >&2
  tail -n 40 "$work/server.log" >&2
elif $examples; then
  "$venv/python" openapi/postman/examples.py "$work/report.json" "$collection" "http://127.0.0.1:$port"
fi
exit "$status"
