#!/usr/bin/env bash
# kubebins.sh — build Kubernetes components and etcd from Go modules (no download site needed) and cache them.
#
#   hack/kubebins.sh [component...]     default: kube-apiserver etcd
#
# Components: kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl etcd.
# Output: $CACHE_DIR/kube/$K8S_VERSION/bin/<component>; prints that directory on the last line.
# A component already built is reused (delete the file, or `make clean-cache`, to rebuild).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
CACHE_DIR=${CACHE_DIR:-$HOME/.cache/cnpg-mcp}
root=$CACHE_DIR/kube/$K8S_VERSION
bin=$root/bin
mkdir -p "$bin" "$root/k8s" "$root/etcd"
# One build at a time per cache: a second run (another worktree, a parallel make) waits here and then
# reuses what the first one built, instead of racing it on the same files.
exec 9>"$root/.lock"
if ! flock -n 9; then
  echo "kubebins: another build holds $root/.lock; waiting for it" >&2
  flock 9
fi
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off
[ $# -gt 0 ] || set -- kube-apiserver etcd

k8s_module() {
  local d=$root/k8s c
  [ -f "$d/go.sum" ] && return 0
  echo "kubebins: preparing k8s.io/kubernetes@$K8S_VERSION wrapper module" >&2
  go mod download k8s.io/kubernetes@"$K8S_VERSION"
  local kgo
  kgo=$(go mod download -json k8s.io/kubernetes@"$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    printf 'module cnpg-mcp.local/kubebins\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\ntool (\n' "$K8S_VERSION"
    for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl; do
      printf '\tk8s.io/kubernetes/cmd/%s\n' "$c"
    done
    printf ')\n\n'
    # k8s.io/kubernetes replaces its staging modules with local paths; a dependent module must pin them.
    printf 'replace (\n'
    sed -n '/^replace (/,/^)/p' "$kgo" | grep '=>' | awk -v v="$K8S_STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } > "$d/go.mod"
  (cd "$d" && go mod tidy)
}

etcd_module() {
  local d=$root/etcd
  [ -f "$d/go.sum" ] && return 0
  printf 'module cnpg-mcp.local/etcdbin\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n\ntool go.etcd.io/etcd/server/v3\n' "$ETCD_VERSION" > "$d/go.mod"
  (cd "$d" && go mod tidy)
}

ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld="$ld -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=2026-01-01T00:00:00Z"
  done
  echo "$ld"
}

for c in "$@"; do
  if [ -x "$bin/$c" ]; then echo "kubebins: reusing $bin/$c" >&2; continue; fi
  start=$(date +%s)
  case "$c" in
    etcd)
      etcd_module
      (cd "$root/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp.$$" go.etcd.io/etcd/server/v3) ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubelet|kubeadm|kubectl)
      k8s_module
      (cd "$root/k8s" && go build -trimpath -ldflags "$(ldflags)" -o "$bin/$c.tmp.$$" "k8s.io/kubernetes/cmd/$c") ;;
    *) echo "kubebins: unknown component $c" >&2; exit 2 ;;
  esac
  mv "$bin/$c.tmp.$$" "$bin/$c"
  echo "kubebins: built $c in $(( $(date +%s) - start ))s" >&2
done
echo "$bin"
