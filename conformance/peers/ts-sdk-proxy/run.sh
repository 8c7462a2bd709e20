#!/usr/bin/env bash
# Runs mcp-auth-conformance against an MCP authorization implementation this project did not write:
# a small MCP server on the MCP TypeScript SDK's ProxyOAuthServerProvider (server.mjs, the SDK's
# documented wiring), with this repository's mock Auth0 as its upstream.
#
#   conformance/peers/ts-sdk-proxy/run.sh            # writes RESULT.md and report/ next to this script
#
# Needs: Go, Node ≥ 18 with npm (registry access), Chromium (/usr/lib/chromium/chromium).
# Scratch files (npm packages, binaries, logs) go to $SCRATCH (default /tmp/cnpg-mcp-peers/ts-sdk-proxy).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
scratch="${SCRATCH:-/tmp/cnpg-mcp-peers/ts-sdk-proxy}"
mock_port="${MOCK_PORT:-18181}"
peer_port="${PEER_PORT:-18182}"
sdk_version="${SDK_VERSION:-1.32.2}"
mkdir -p "$scratch"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== building mockauth0 and mcp-auth-conformance"
(cd "$root" && go build -o "$scratch/mockauth0" ./mockauth0/cmd/mockauth0 && go build -o "$scratch/mcp-auth-conformance" ./conformance/cmd/mcp-auth-conformance)

echo "== installing @modelcontextprotocol/sdk@$sdk_version and express in $scratch"
cp "$here/server.mjs" "$scratch/server.mjs"
if [ ! -d "$scratch/node_modules/@modelcontextprotocol/sdk" ]; then
  (cd "$scratch" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund "@modelcontextprotocol/sdk@$sdk_version" express@5 >/dev/null)
fi

# The mock tenant: the default one, plus an API whose identifier is the peer's MCP URL, and Auth0's
# resource-parameter compatibility profile (the SDK proxy forwards the client's `resource`, which
# Auth0 only accepts as an API identifier under that profile).
"$scratch/mockauth0" --print-default-config > "$scratch/tenant.yaml"
python3 - "$scratch/tenant.yaml" "http://localhost:$peer_port/mcp" <<'EOF'
import sys
p, api = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("apis:\n", "apis:\n- allow_offline_access: true\n  identifier: %s\n  name: ts-sdk-peer\n  scopes:\n  - value: mcp:read\n    description: read\n" % api, 1)
s = s.replace("tenant:\n", "tenant:\n  resource_parameter_profile: audience\n", 1)
open(p, "w").write(s)
EOF

echo "== starting the mock Auth0 on 127.0.0.1:$mock_port"
"$scratch/mockauth0" --addr "127.0.0.1:$mock_port" --admin --config "$scratch/tenant.yaml" > "$scratch/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$scratch/mock.log" && break; sleep 0.1; done

echo "== starting the SDK proxy peer on localhost:$peer_port"
(cd "$scratch" && UPSTREAM_ISSUER="http://127.0.0.1:$mock_port/" PORT="$peer_port" exec node server.mjs) > "$scratch/peer.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "peer MCP endpoint" "$scratch/peer.log" && break; sleep 0.1; done

echo "== running the suite"
set +e
"$scratch/mcp-auth-conformance" --target "http://localhost:$peer_port/mcp" \
  --mock-auth0-admin "http://127.0.0.1:$mock_port/" \
  --upstream-client-id cnpg-mcp-proxy --upstream-client-secret cnpg-mcp-proxy-dev-secret \
  --upstream-audience "http://localhost:$peer_port/mcp" \
  --report-dir "$here/report" --no-color "$@" | tee "$scratch/suite.out"
status=${PIPESTATUS[0]}
set -e

{
  echo "# mcp-auth-conformance against the MCP TypeScript SDK's ProxyOAuthServerProvider"
  echo
  echo "Peer: \`@modelcontextprotocol/sdk@$sdk_version\` \`ProxyOAuthServerProvider\` + \`mcpAuthRouter\` +"
  echo "\`requireBearerAuth\` (see \`server.mjs\`), upstream = this repository's mock Auth0 (an API for the"
  echo "MCP URL, \`resource_parameter_profile: audience\`). Reproduce with \`conformance/peers/ts-sdk-proxy/run.sh\`."
  echo "Generated $(date -u +%Y-%m-%dT%H:%MZ); suite exit status $status."
  echo
  echo '```'
  sed -n '/^MCP authorization conformance/,$p' "$scratch/suite.out"
  echo '```'
  echo
  echo "## Failed and warned checks"
  echo
  python3 - "$here/report/report.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for x in r["results"]:
    if x["status"] in ("fail", "warn"):
        msgs = x.get("failures") or x.get("warnings") or []
        print("- **%s** (%s, %s): %s" % (x["id"], x["level"], x["status"], " / ".join(m.replace("\n", " ") for m in msgs)[:400]))
print()
skips = {}
for x in r["results"]:
    if x["status"] == "skip":
        skips.setdefault(x["skipReason"].split(":")[0], []).append(x["id"])
print("## Skipped checks, by reason")
print()
for reason, ids in sorted(skips.items(), key=lambda kv: -len(kv[1])):
    print("- %s: %s" % (reason, " ".join(ids)))
EOF
} > "$here/RESULT.md"
rm -f "$here/report/index.html.tmp"
echo "== wrote $here/RESULT.md"
exit 0
