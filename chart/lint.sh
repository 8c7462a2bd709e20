#!/usr/bin/env bash
# lint.sh HELM CHART — helm lint and helm template the chart with every values file in chart/testdata,
# then check that the invalid combinations are refused with a message saying what to do.
set -euo pipefail
helm=$1 chart=$2
here=$(cd "$(dirname "$0")" && pwd)
fail=0
for v in "$here"/testdata/*.yaml; do
  name=$(basename "$v")
  if ! out=$("$helm" lint --strict "$chart" -f "$v" 2>&1); then echo "$out"; echo "FAIL helm lint $name"; fail=1; continue; fi
  if ! out=$("$helm" template cnpg-mcp "$chart" -f "$v" --kube-version 1.37.2 2>&1 >/dev/null); then echo "$out"; echo "FAIL helm template $name"; fail=1; continue; fi
  echo "ok   helm lint + template $name"
done
refuse() { # want-substring helm-args...
  local want=$1; shift
  if out=$("$helm" template cnpg-mcp "$chart" "$@" 2>&1); then echo "FAIL accepted: $*"; fail=1; return; fi
  if [[ $out != *"$want"* ]]; then echo "$out"; echo "FAIL wrong message for: $* (want: $want)"; fail=1; return; fi
  echo "ok   refused: ${*:-(no values)}"
}
refuse "publicURL is required"
refuse "set replicaCount=1" --set publicURL=https://mcp.example.com --set replicaCount=2
refuse "must not end with" --set publicURL=https://mcp.example.com/
refuse "store.postgres.existingSecret" --set publicURL=https://mcp.example.com --set store.type=postgres
refuse "value must be one of" --set publicURL=https://mcp.example.com --set store.type=sqlite
refuse "additional properties" --set publicURL=https://mcp.example.com --set replicas=2
exit $fail
