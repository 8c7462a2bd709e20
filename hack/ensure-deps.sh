#!/usr/bin/env bash
# ensure-deps.sh — make sure the Debian packages the test tiers need are present.
# As root it installs what is missing (non-interactively); otherwise it prints the apt-get command.
set -euo pipefail

# package -> a file that proves it is installed
declare -A need=(
  [chromium]=/usr/lib/chromium/chromium
  [postgresql]=/usr/lib/postgresql
  [ca-certificates]=/etc/ssl/certs/ca-certificates.crt
)
if [ -n "${CNPG_MCP_EXTRA_DEPS:-}" ]; then
  for p in $CNPG_MCP_EXTRA_DEPS; do need[$p]=/nonexistent-check-with-dpkg; done
fi

missing=()
for pkg in "${!need[@]}"; do
  if [ -e "${need[$pkg]}" ] || dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    continue
  fi
  missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
