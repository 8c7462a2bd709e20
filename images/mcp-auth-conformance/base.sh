#!/usr/bin/env bash
# base.sh — the base of the conformance suite's image: a Debian $DEBIAN_SUITE tree with Chromium, built
# (or reused) by kind/offline/build.sh's cached rootfs builder (debootstrap; no container registry) and
# imported into the local Docker engine. Prints the image name; `make images` passes it as BASE.
#
#   images/mcp-auth-conformance/base.sh      # cnpg-mcp.local/conformance-base:<suite>-<key>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../../hack/versions.env
. "$root/hack/versions.env"
DOCKER=${DOCKER:-docker}
PREFIX=${CNPG_MCP_IMAGE_PREFIX:-cnpg-mcp.local}

# Chromium and the fonts its pages need; the suite runs as uid 65532 with a home for its profile.
PKGS=ca-certificates
SETUP="apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation
apt-get clean
groupadd -r -g 65532 conformance && useradd -r -u 65532 -g 65532 -m -d /home/conformance -s /usr/sbin/nologin conformance
test -x /usr/lib/chromium/chromium"

dir=$("$root/kind/offline/build.sh" --rootfs conformance-chromium "$PKGS" "$SETUP")
img=$PREFIX/conformance-base:$(basename "$dir" | sed 's/^conformance-chromium-//')
if ! "$DOCKER" image inspect "$img" >/dev/null 2>&1; then
  echo "importing $dir as $img" >&2
  tar -C "$dir" --exclude=./.done -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$img" >/dev/null
fi
echo "$img"
