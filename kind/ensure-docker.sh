#!/usr/bin/env bash
# ensure-docker.sh — make sure a Docker engine answers: install Debian's docker.io when missing (as root)
# and start dockerd in the background when it is not running (logs in $CACHE_DIR/dockerd.log).
set -euo pipefail
CACHE_DIR=${CACHE_DIR:-$HOME/.cache/cnpg-mcp}
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "the Docker engine is missing: sudo apt-get install -y docker.io, then start it" >&2; exit 1
  fi
  echo "installing docker.io"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null; then
  if [ "$(id -u)" != 0 ]; then echo "dockerd is not running: start it (sudo systemctl start docker)" >&2; exit 1; fi
  mkdir -p "$CACHE_DIR"
  echo "starting dockerd (log: $CACHE_DIR/dockerd.log)"
  nohup dockerd >"$CACHE_DIR/dockerd.log" 2>&1 &
fi
for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done
echo "dockerd did not answer within 60 s (see $CACHE_DIR/dockerd.log)" >&2
exit 1
