#!/usr/bin/env bash
# cnpg-crds.sh — extract the CloudNativePG CRDs from the operator release manifest shipped in the
# operator's Go module zip, into internal/kubetest/crds/ (committed; the tests read that copy).
#
#   hack/cnpg-crds.sh            operator version: $CNPG_OPERATOR_VERSION, else CNPG_API_VERSION from hack/versions.env
#
# Only the Go module proxy is needed (no download site). Re-run when the pinned version changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
version=${CNPG_OPERATOR_VERSION:-${CNPG_API_VERSION}}
dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/cloudnative-pg/cloudnative-pg@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
manifest="$dir/releases/cnpg-${version#v}.yaml"
[ -f "$manifest" ] || { echo "cnpg-crds: $manifest not found in the module" >&2; exit 1; }
out="$here/../internal/kubetest/crds/cnpg-${version#v}-crds.yaml"
{
  printf '# CloudNativePG %s CustomResourceDefinitions, extracted by hack/cnpg-crds.sh from\n' "$version"
  printf '# github.com/cloudnative-pg/cloudnative-pg@%s releases/cnpg-%s.yaml. Do not edit.\n' "$version" "${version#v}"
  awk '
    function flush() { if (doc ~ /(^|\n)kind: CustomResourceDefinition\n/) printf "---\n%s", doc; doc = "" }
    /^---/ { flush(); next }
    { doc = doc $0 "\n" }
    END { flush() }
  ' "$manifest"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "cnpg-crds: wrote $out ($(grep -c '^kind: CustomResourceDefinition' "$out") CRDs)"

# The Barman Cloud plugin's ObjectStore CRD (barmancloud.cnpg.io), from the plugin module's manifest.yaml.
pversion=$BARMAN_CLOUD_PLUGIN_VERSION
pdir=$(GOFLAGS=-mod=mod go mod download -json "github.com/cloudnative-pg/plugin-barman-cloud@$pversion" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
pout="$here/../internal/kubetest/crds/barman-cloud-plugin-$pversion-crds.yaml"
{
  printf '# Barman Cloud plugin %s CustomResourceDefinitions, extracted by hack/cnpg-crds.sh from\n' "$pversion"
  printf '# github.com/cloudnative-pg/plugin-barman-cloud@%s manifest.yaml. Do not edit.\n' "$pversion"
  awk '
    function flush() { if (doc ~ /(^|\n)kind: CustomResourceDefinition\n/) printf "---\n%s", doc; doc = "" }
    /^---/ { flush(); next }
    { doc = doc $0 "\n" }
    END { flush() }
  ' "$pdir/manifest.yaml"
} > "$pout.tmp"
mv "$pout.tmp" "$pout"
echo "cnpg-crds: wrote $pout ($(grep -c '^kind: CustomResourceDefinition' "$pout") CRDs)"
