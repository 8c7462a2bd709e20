#!/usr/bin/env bash
# ensure-deps.sh — make sure the Debian packages the test tiers need are installed.
# As root it installs what is missing (non-interactively); otherwise it prints the apt-get command.
#   chromium     headless browser for the conformance suite, interop and pages (/usr/lib/chromium/chromium)
#   chromium-headless-shell  the same engine's old headless shell, which the suite prefers when installed
#                (about a fifth of Chromium's processor time per run; conformance/README.md)
#   postgresql   server binaries for the PostgreSQL store tests (/usr/lib/postgresql/*/bin)
# Extra packages can be asked for with CNPG_MCP_EXTRA_DEPS="pkg1 pkg2".
set -euo pipefail

packages=(chromium chromium-headless-shell postgresql ca-certificates ${CNPG_MCP_EXTRA_DEPS:-})

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
