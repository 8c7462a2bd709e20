#!/usr/bin/env bash
# build.sh — build every image an offline kind cluster with CloudNativePG needs, from Go modules and Debian
# packages only (no container registry), and cache them.
#
#   kind/offline/build.sh            build what is missing or stale, reuse the rest, print a summary
#   kind/offline/build.sh --list     print the image names (as shell assignments) and exit
#   kind/offline/build.sh --check    exit 0 when every image is already built (builds nothing)
#   kind/offline/build.sh --rootfs NAME PACKAGES [SETUP]   one cached Debian tree for another image; prints its path
#
# What it produces (versions from hack/versions.env; names under the local-only prefix $PREFIX):
#   node image          Debian $DEBIAN_SUITE rootfs (debootstrap) + containerd/runc/CNI plugins from Debian
#                       + kind's own base files (from the sigs.k8s.io/kind module) + kubelet/kubeadm/kubectl
#                       (hack/kubebins.sh) + the control-plane images imported into its containerd
#   control plane       kube-apiserver, -controller-manager, -scheduler, etcd, coredns, pause: FROM scratch
#                       kube-proxy: a small Debian rootfs with iptables
#   local-path          rancher/local-path-provisioner (module) + a busybox helper; its manifest from the module
#   CloudNativePG       the operator (github.com/cloudnative-pg/cloudnative-pg at $CNPG_VERSION) with
#                       /operator/manager_amd64 and /manager -> it; the release manifest from the module zip,
#                       rewritten to the local image and IfNotPresent
#   PostgreSQL          Debian's postgresql-$POSTGRES_MAJOR as uid/gid 26, for the Cluster's imageName
#
# Cache: $CACHE_DIR/offline (Go binaries, wrapper modules, rootfs trees, manifests, images.env) and the local
# Docker engine (images labelled io.cnpg-mcp.key=<hash of their inputs>). A changed input rebuilds only what
# depends on it. Outputs: $CACHE_DIR/offline/images.env (image names) and $CACHE_DIR/offline/manifests/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../../hack/versions.env
. "$root/hack/versions.env"
CACHE_DIR=${CACHE_DIR:-$HOME/.cache/cnpg-mcp}
OUT=$CACHE_DIR/offline
PREFIX=${CNPG_MCP_IMAGE_PREFIX:-cnpg-mcp.local}
DOCKER=${DOCKER:-docker}
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0

K8S_REPO=$PREFIX/k8s
NODE_IMAGE=$PREFIX/kind-node:$K8S_VERSION
BASE_IMAGE=$PREFIX/kind-base:$DEBIAN_SUITE
LPP_IMAGE=$PREFIX/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION
LPP_HELPER_IMAGE=$PREFIX/local-path-helper:busybox
CNPG_IMAGE=$PREFIX/cloudnative-pg:$CNPG_VERSION
PG_IMAGE_REPO=$PREFIX/postgresql
OBJSTORE_IMAGE=$PREFIX/versitygw:$VERSITYGW_VERSION
PLUGIN_IMAGE=$PREFIX/plugin-barman-cloud:$BARMAN_CLOUD_PLUGIN_VERSION
PLUGIN_SIDECAR_IMAGE=$PREFIX/plugin-barman-cloud-sidecar:$BARMAN_CLOUD_PLUGIN_VERSION

list_images() {
  cat <<EOF
NODE_IMAGE=$NODE_IMAGE
K8S_IMAGE_REPOSITORY=$K8S_REPO
CNPG_IMAGE=$CNPG_IMAGE
CNPG_MANIFEST=$OUT/manifests/cnpg-$CNPG_VERSION.yaml
LPP_IMAGE=$LPP_IMAGE
LPP_HELPER_IMAGE=$LPP_HELPER_IMAGE
OBJSTORE_IMAGE=$OBJSTORE_IMAGE
PLUGIN_IMAGE=$PLUGIN_IMAGE
PLUGIN_SIDECAR_IMAGE=$PLUGIN_SIDECAR_IMAGE
EOF
}
if [ "${1:-}" = --list ]; then list_images; exit 0; fi
OBJSTORE_ONLY=
if [ "${1:-}" = --objectstore ]; then OBJSTORE_ONLY=1; fi
# --check: exit 0 when a previous run left every image of the cluster in the Docker engine (so a
# `make e2e OFFLINE=1` needs no build), else say what is missing and exit 1. Builds nothing.
if [ "${1:-}" = --check ]; then
  [ -f "$OUT/images.env" ] || { echo "offline: not built yet ($OUT/images.env missing)"; exit 1; }
  # shellcheck disable=SC1091
  . "$OUT/images.env"
  missing=0
  for i in "$NODE_IMAGE" "$CNPG_IMAGE" "$PG_IMAGE" "$OBJSTORE_IMAGE" "$PLUGIN_IMAGE" "$PLUGIN_SIDECAR_IMAGE"; do
    "$DOCKER" image inspect "$i" >/dev/null 2>&1 || { echo "offline: image $i missing"; missing=1; }
  done
  [ -f "$CNPG_MANIFEST" ] || { echo "offline: $CNPG_MANIFEST missing"; missing=1; }
  [ $missing = 0 ] && echo "offline: every image is built"
  exit $missing
fi

mkdir -p "$OUT"/{bin,mods,rootfs,ctx,manifests,logs}
T0=$(date +%s)
summary=()
log() { echo "offline: [$(( $(date +%s) - T0 ))s] $*" >&2; }
record() { summary+=("$(printf '%-8s %-52s %6ss' "$1" "$2" "$3")"); }

# key NAME INPUT... — a short hash of everything an artefact is made from (strings and files).
key() {
  local name=$1; shift
  { echo "$name"; for i in "$@"; do if [ -f "$i" ]; then sha256sum "$i"; else echo "$i"; fi; done; } | sha256sum | cut -c1-16
}
image_key() { "$DOCKER" image inspect -f '{{ index .Config.Labels "io.cnpg-mcp.key" }}' "$1" 2>/dev/null || true; }
# fresh IMAGE KEY — true when IMAGE exists and was built from the same inputs.
fresh() { [ "$(image_key "$1")" = "$2" ]; }

need_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v gcc >/dev/null || missing+=(gcc libc6-dev)
  command -v "$DOCKER" >/dev/null || missing+=(docker.io)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "offline: missing Debian packages: ${missing[*]} (sudo apt-get install -y ${missing[*]})" >&2; exit 1
  fi
}

mirror() {
  local m
  m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$m" ] || m=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  echo "${DEBIAN_MIRROR:-$m}"
}

# ---------------------------------------------------------------- Go binaries
# gobin VAR NAME MODULE VERSION PACKAGE [LDFLAGS] — build PACKAGE from a wrapper module requiring
# MODULE@VERSION; set VAR to the binary's path.
gobin() {
  local var=$1 name=$2 mod=$3 ver=$4 pkg=$5 ld=${6:-}
  local out=$OUT/bin/$name-$ver
  printf -v "$var" '%s' "$out"
  if [ -x "$out" ]; then record reused "go: $name $ver" 0; return; fi
  local s d=$OUT/mods/$name-$ver
  s=$(date +%s)
  log "building $name $ver from $mod (log: $OUT/logs/$name.log)"
  mkdir -p "$d"
  printf 'module cnpg-mcp.local/offline/%s\n\ngo 1.26.0\n\nrequire %s %s\n\ntool %s\n' "$name" "$mod" "$ver" "$pkg" > "$d/go.mod"
  ( cd "$d" && go mod tidy && nice go build -trimpath -ldflags "-s -w $ld" -o "$out.tmp" "$pkg" ) > "$OUT/logs/$name.log" 2>&1 \
    || { tail -20 "$OUT/logs/$name.log" >&2; exit 1; }
  mv "$out.tmp" "$out"
  record built "go: $name $ver" $(( $(date +%s) - s ))
}

kubebins() {
  # hack/kubebins.sh builds one component at a time with both cores; never run two at once.
  while pgrep -f 'hack/kubebins.sh' >/dev/null; do log "waiting for another hack/kubebins.sh to finish"; sleep 20; done
  local s; s=$(date +%s)
  local missing=0 c
  for c in kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd; do
    [ -x "$CACHE_DIR/kube/$K8S_VERSION/bin/$c" ] || missing=1
  done
  KUBEBIN=$(nice "$root/hack/kubebins.sh" kubelet kubeadm kubectl kube-controller-manager kube-scheduler kube-proxy \
    kube-apiserver etcd 2> >(sed 's/^/offline: /' >&2) | tail -1)
  record "$([ $missing = 1 ] && echo built || echo reused)" "kubernetes $K8S_VERSION binaries (hack/kubebins.sh)" $(( $(date +%s) - s ))
}

# ---------------------------------------------------------------- Debian root filesystems
# rootfs NAME PACKAGES [SETUP-SCRIPT] — a debootstrap'd $DEBIAN_SUITE tree, cached by its inputs.
rootfs() {
  local name=$1 pkgs=$2 setup=${3:-} k
  k=$(key "rootfs-$name" "$DEBIAN_SUITE" "$pkgs" "$setup")
  local r=$OUT/rootfs/$name-$DEBIAN_SUITE-$k
  if [ -e "$r/.done" ]; then record reused "rootfs: $name ($DEBIAN_SUITE)" 0; return; fi
  local s; s=$(date +%s)
  log "debootstrap $name ($DEBIAN_SUITE) (log: $OUT/logs/rootfs-$name.log)"
  rm -rf "$OUT/rootfs/$name-$DEBIAN_SUITE-"*
  { debootstrap --variant=minbase --include="$pkgs" "$DEBIAN_SUITE" "$r" "$(mirror)" &&
    if [ -n "$setup" ]; then chroot "$r" /bin/bash -euc "$setup"; fi &&
    rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/usr/share/doc/* "$r"/usr/share/man/* \
      "$r"/usr/share/info/* "$r"/usr/share/locale/*; } > "$OUT/logs/rootfs-$name.log" 2>&1 \
    || { tail -20 "$OUT/logs/rootfs-$name.log" >&2; return 1; }
  touch "$r/.done"
  record built "rootfs: $name ($DEBIAN_SUITE)" $(( $(date +%s) - s ))
}
rootfs_dir() { ls -d "$OUT/rootfs/$1-$DEBIAN_SUITE-"* | head -1; }

NODE_PKGS=systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins
PROXY_PKGS=iptables,nftables,conntrack,ipset,kmod
PG_PKGS=locales,ca-certificates
# CloudNativePG runs PostgreSQL as uid/gid 26; Debian gives gid 26 to "tape".
PG_SETUP="groupmod -g 2600 tape
groupadd -r -g 26 postgres && useradd -r -u 26 -g 26 -d /var/lib/postgresql -s /bin/bash postgres
mkdir -p /etc/postgresql-common && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && locale-gen
apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-$POSTGRES_MAJOR barman-cli-cloud
apt-get clean && mkdir -p /var/run/postgresql && chown -R 26:26 /var/lib/postgresql /var/run/postgresql"

# ---------------------------------------------------------------- images
# dbuild TAG DIR — the classic builder (enough for these Dockerfiles; no buildx needed), quiet unless it fails.
dbuild() {
  local out
  out=$(DOCKER_BUILDKIT=0 "$DOCKER" build -q -t "$1" "$2" 2>&1) || { echo "$out" >&2; return 1; }
}

# scratch_image NAME KEY BINARY PATH [ENTRYPOINT] — FROM scratch with one static binary.
scratch_image() {
  local img=$1 k=$2 bin=$3 path=$4 ep=${5:-}
  if fresh "$img" "$k"; then record reused "image: $img" 0; return; fi
  local s d; s=$(date +%s); d=$OUT/ctx/$(echo "$img" | tr '/:' '__')
  rm -rf "$d"; mkdir -p "$d"; cp "$bin" "$d/bin"
  { echo "FROM scratch"; echo "COPY bin $path"; echo "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    echo "LABEL io.cnpg-mcp.key=$k"; [ -z "$ep" ] || echo "ENTRYPOINT [\"$path\"]"; } > "$d/Dockerfile"
  dbuild "$img" "$d"
  record built "image: $img" $(( $(date +%s) - s ))
}

# import_rootfs DIR IMAGE KEY CHANGES... — docker import of a rootfs tree.
import_rootfs() {
  local dir=$1 img=$2 k=$3; shift 3
  local ch=(--change "LABEL io.cnpg-mcp.key=$k") c
  for c in "$@"; do ch+=(--change "$c"); done
  tar -C "$dir" --exclude=./.done -c . | "$DOCKER" import "${ch[@]}" - "$img" >/dev/null
}

build_pause() {
  local img=$K8S_REPO/pause:$PAUSE_VERSION k
  k=$(key pause "$here/files/pause.c")
  if fresh "$img" "$k"; then record reused "image: $img" 0; return; fi
  local s d=$OUT/ctx/pause; s=$(date +%s); rm -rf "$d"; mkdir -p "$d"
  gcc -Os -static -o "$d/pause" "$here/files/pause.c" && strip "$d/pause"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nLABEL io.cnpg-mcp.key=%s\nENTRYPOINT ["/pause"]\n' "$k" > "$d/Dockerfile"
  dbuild "$img" "$d"
  record built "image: $img" $(( $(date +%s) - s ))
}

build_lpp_helper() {
  local k; k=$(key lpp-helper /bin/busybox)
  if fresh "$LPP_HELPER_IMAGE" "$k"; then record reused "image: $LPP_HELPER_IMAGE" 0; return; fi
  local s d=$OUT/ctx/lpp-helper; s=$(date +%s); rm -rf "$d"; mkdir -p "$d"; cp /bin/busybox "$d/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\nENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLABEL io.cnpg-mcp.key=%s\n' "$k" > "$d/Dockerfile"
  dbuild "$LPP_HELPER_IMAGE" "$d"
  record built "image: $LPP_HELPER_IMAGE" $(( $(date +%s) - s ))
}

build_kube_proxy() {
  local img=$K8S_REPO/kube-proxy:$K8S_VERSION r k
  r=$(rootfs_dir proxy)
  k=$(key kube-proxy "$r" "$KUBEBIN/kube-proxy" "$here/files/iptables-wrapper")
  if fresh "$img" "$k"; then record reused "image: $img" 0; return; fi
  local s; s=$(date +%s)
  install -m0755 "$KUBEBIN/kube-proxy" "$r/usr/local/bin/kube-proxy"
  install -m0755 "$here/files/iptables-wrapper" "$r/usr/sbin/iptables-wrapper"
  chroot "$r" sh -c 'for t in iptables ip6tables; do update-alternatives --install /usr/sbin/$t $t /usr/sbin/iptables-wrapper 1000 --slave /usr/sbin/$t-save $t-save /usr/sbin/iptables-wrapper --slave /usr/sbin/$t-restore $t-restore /usr/sbin/iptables-wrapper >/dev/null 2>&1; done; true'
  import_rootfs "$r" "$img" "$k" 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  record built "image: $img" $(( $(date +%s) - s ))
}

build_postgres() {
  local r k v full; r=$(rootfs_dir pg)
  v=$(ls "$r/usr/lib/postgresql"); full=$(chroot "$r" "/usr/lib/postgresql/$v/bin/postgres" -V | awk '{print $3}')
  # CloudNativePG reads the major version from the tag: it must start with it.
  PG_IMAGE=$PG_IMAGE_REPO:$full-system-$DEBIAN_SUITE
  k=$(key postgres "$r")
  if fresh "$PG_IMAGE" "$k"; then record reused "image: $PG_IMAGE" 0; return; fi
  local s; s=$(date +%s)
  import_rootfs "$r" "$PG_IMAGE" "$k" "ENV PATH=/usr/lib/postgresql/$v/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    'ENV LANG=en_US.utf8' 'USER 26'
  record built "image: $PG_IMAGE" $(( $(date +%s) - s ))
}

# The Barman Cloud plugin's sidecar (injected into every instance pod and restore job of a Cluster that uses
# the plugin): barman-cloud-* from Debian's barman-cli-cloud (already in the PostgreSQL tree) + the plugin's
# binary as /manager, running as postgres (26) like upstream's sidecar image.
build_plugin_sidecar() {
  local bin=$1 k; k=$(key plugin-sidecar "$bin" "$(image_key "$PG_IMAGE")")
  if fresh "$PLUGIN_SIDECAR_IMAGE" "$k"; then record reused "image: $PLUGIN_SIDECAR_IMAGE" 0; return; fi
  local s d=$OUT/ctx/plugin-sidecar; s=$(date +%s); rm -rf "$d"; mkdir -p "$d"; cp "$bin" "$d/manager"
  printf 'FROM %s\nCOPY manager /manager\nUSER 26:26\nLABEL io.cnpg-mcp.key=%s\nENTRYPOINT ["/manager"]\n' "$PG_IMAGE" "$k" > "$d/Dockerfile"
  dbuild "$PLUGIN_SIDECAR_IMAGE" "$d"
  record built "image: $PLUGIN_SIDECAR_IMAGE" $(( $(date +%s) - s ))
}

build_cnpg() {
  local bin=$1 k; k=$(key cnpg "$bin")
  if fresh "$CNPG_IMAGE" "$k"; then record reused "image: $CNPG_IMAGE" 0; return; fi
  local s d=$OUT/ctx/cnpg; s=$(date +%s); rm -rf "$d"; mkdir -p "$d/operator"
  # The operator finds its own binary for the instance pods as /operator/manager_<arch>.
  cp "$bin" "$d/operator/manager_amd64"; ln -s operator/manager_amd64 "$d/manager"
  printf 'FROM scratch\nCOPY operator/ /operator/\nCOPY manager /manager\nUSER 65532:65532\nLABEL io.cnpg-mcp.key=%s\nENTRYPOINT ["/manager"]\n' "$k" > "$d/Dockerfile"
  dbuild "$CNPG_IMAGE" "$d"
  record built "image: $CNPG_IMAGE" $(( $(date +%s) - s ))
}

manifests() {
  local cdir ldir
  cdir=$(go mod download -json "github.com/cloudnative-pg/cloudnative-pg@v$CNPG_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  sed -E -e "s#^([[:space:]]*(image|value):[[:space:]]*)[^[:space:]]*/cloudnative-pg:$CNPG_VERSION\$#\1$CNPG_IMAGE#" \
    -e 's/imagePullPolicy: Always/imagePullPolicy: IfNotPresent/' "$cdir/releases/cnpg-$CNPG_VERSION.yaml" > "$OUT/manifests/cnpg-$CNPG_VERSION.yaml"
  grep -q "image: $CNPG_IMAGE" "$OUT/manifests/cnpg-$CNPG_VERSION.yaml" || { echo "offline: CNPG manifest image not rewritten" >&2; exit 1; }
  # The operator's default PostgreSQL image: Clusters created without imageName (e.g. by the MCP tools)
  # get the local one. The operator reads this ConfigMap at start-up (--config-map-name).
  printf -- '\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cnpg-controller-manager-config\n  namespace: cnpg-system\ndata:\n  POSTGRES_IMAGE_NAME: %s\n' \
    "$PG_IMAGE" >> "$OUT/manifests/cnpg-$CNPG_VERSION.yaml"
  ldir=$(go mod download -json "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  # local-path as the cluster's default StorageClass, on local images.
  awk -v p="$LPP_IMAGE" -v h="$LPP_HELPER_IMAGE" '
    /^kind: StorageClass/ { sc=1 }
    /^---/ { sc=0 }
    { sub(/image: [^ ]*local-path-provisioner:[^ ]*/, "image: " p); sub(/image: busybox$/, "image: " h); print }
    sc && /^  name: local-path$/ { print "  annotations:"; print "    storageclass.kubernetes.io/is-default-class: \"true\"" }
  ' "$ldir/deploy/local-path-storage.yaml" > "$OUT/manifests/default-storage.yaml"
  grep -q "image: $LPP_HELPER_IMAGE" "$OUT/manifests/default-storage.yaml" || { echo "offline: local-path manifest not rewritten" >&2; exit 1; }
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cnpg-mcp-cni, namespace: kube-system}\ndata: {note: "static ptp conflist in /etc/cni/net.d (single node)"}\n' \
    > "$OUT/manifests/default-cni.yaml"
}

build_base() {
  local kindsrc r k
  kindsrc=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  r=$(rootfs_dir node)
  k=$(key base "$r" "$KIND_VERSION" "$crictl" "$here/files/cgroupv1-rw.sh" "$here/files/10-cnpg-mcp-ptp.conflist" "$PAUSE_VERSION" "$K8S_REPO")
  if fresh "$BASE_IMAGE" "$k"; then record reused "image: $BASE_IMAGE" 0; return; fi
  local s f=$kindsrc/images/base/files; s=$(date +%s)
  install -m0755 "$f"/usr/local/bin/* "$r/usr/local/bin/"
  mkdir -p "$r"/kind/bin "$r"/etc/containerd "$r"/etc/default "$r"/etc/sysctl.d "$r"/etc/systemd/system/kubelet.service.d "$r"/etc/cni/net.d "$r"/opt/cni/bin
  cp -r "$f/kind/." "$r/kind/"; chmod -R u+w "$r/kind"; chmod 0755 "$r/kind" "$r/kind/bin" "$r"/kind/bin/*
  install -m0644 "$f/etc/crictl.yaml" "$r/etc/"
  install -m0644 "$f"/etc/containerd/* "$r/etc/containerd/"
  install -m0644 "$f"/etc/sysctl.d/* "$r/etc/sysctl.d/"
  install -m0644 "$f"/etc/systemd/system/*.service "$f"/etc/systemd/system/*.slice "$r/etc/systemd/system/"
  install -m0644 "$f"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"
  # local pause image; containerd without --privileged must not raise oom_score_adj
  sed -i -E "s#^([[:space:]]*sandbox_image = \")[^\"]*\"#\1$K8S_REPO/pause:$PAUSE_VERSION\"#; s/restrict_oom_score_adj = false/restrict_oom_score_adj = true/" "$r/etc/containerd/config.toml"
  grep -q "$K8S_REPO/pause:$PAUSE_VERSION" "$r/etc/containerd/config.toml"
  # kubelet >= 1.35 refuses cgroup v1 unless told otherwise
  echo "KUBELET_EXTRA_ARGS=--runtime-cgroups=/system.slice/containerd.service --fail-cgroupv1=false" > "$r/etc/default/kubelet"
  if ! grep -q cnpg_mcp_cgroupv1_rw "$r/usr/local/bin/entrypoint"; then
    sed -i -e "/^# validate state$/e cat $here/files/cgroupv1-rw.sh" -e 's/^fix_cgroup$/cnpg_mcp_cgroupv1_rw\nfix_cgroup/' "$r/usr/local/bin/entrypoint"
    grep -q '^cnpg_mcp_cgroupv1_rw$' "$r/usr/local/bin/entrypoint"
  fi
  ln -sf /usr/bin/containerd "$r/usr/local/bin/containerd"; ln -sf /usr/bin/ctr "$r/usr/local/bin/ctr"
  ln -sf /usr/bin/containerd-shim-runc-v2 "$r/usr/local/bin/containerd-shim-runc-v2"; ln -sf /usr/sbin/runc "$r/usr/local/sbin/runc"
  for p in host-local loopback ptp portmap bridge; do ln -sf "/usr/lib/cni/$p" "$r/opt/cni/bin/$p"; done
  install -m0755 "$crictl" "$r/usr/local/bin/crictl"
  install -m0644 "$here/files/10-cnpg-mcp-ptp.conflist" "$r/etc/cni/net.d/"
  chroot "$r" /bin/bash -ec '
    find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* /lib/systemd/system/local-fs.target.wants/* \
      /lib/systemd/system/sockets.target.wants/*udev* /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    grep -q "^ReadKMsg=no" /etc/systemd/journald.conf || echo "ReadKMsg=no" >> /etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init
    systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
    systemctl mask systemd-binfmt.service >/dev/null 2>&1
    mkdir -p /etc/kubernetes/manifests
    ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" \
      | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json'
  import_rootfs "$r" "$BASE_IMAGE-rootfs" "$k"
  local d=$OUT/ctx/base; mkdir -p "$d"
  # docker import cannot set STOPSIGNAL: one layer on top does
  printf 'FROM %s\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nLABEL io.cnpg-mcp.key=%s\nENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]\n' "$BASE_IMAGE-rootfs" "$k" > "$d/Dockerfile"
  dbuild "$BASE_IMAGE" "$d"
  "$DOCKER" rmi "$BASE_IMAGE-rootfs" >/dev/null 2>&1 || true
  record built "image: $BASE_IMAGE" $(( $(date +%s) - s ))
}

# The node image: what `kind build node-image` does, importing local images instead of pulling them.
build_node() {
  local imgs=("$@") k parts=() i
  for i in "$BASE_IMAGE" "${imgs[@]}"; do parts+=("$i=$(image_key "$i")"); done
  k=$(key node "${parts[@]}" "$KUBEBIN/kubeadm" "$KUBEBIN/kubelet" "$KUBEBIN/kubectl" "$OUT/manifests/default-storage.yaml" "$OUT/manifests/default-cni.yaml")
  if fresh "$NODE_IMAGE" "$k"; then record reused "image: $NODE_IMAGE" 0; return; fi
  local s c=cnpg-mcp-node-build-$$; s=$(date +%s)
  "$DOCKER" rm -f "$c" >/dev/null 2>&1 || true
  "$DOCKER" run -d --name "$c" --entrypoint=sleep --security-opt seccomp=unconfined "$BASE_IMAGE" infinity >/dev/null
  trap '"$DOCKER" rm -f -v '"$c"' >/dev/null 2>&1 || true' EXIT
  "$DOCKER" exec "$c" mkdir -p /kind/manifests
  for b in kubeadm kubelet kubectl; do "$DOCKER" cp "$KUBEBIN/$b" "$c:/usr/bin/$b"; done
  "$DOCKER" cp "$OUT/manifests/default-storage.yaml" "$c:/kind/manifests/default-storage.yaml"
  "$DOCKER" cp "$OUT/manifests/default-cni.yaml" "$c:/kind/manifests/default-cni.yaml"
  "$DOCKER" exec "$c" sh -c "echo $K8S_VERSION > /kind/version"
  "$DOCKER" exec "$c" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 & for i in $(seq 1 60); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.5; done; ctr version >/dev/null'
  for i in "${imgs[@]}"; do
    "$DOCKER" save "$i" | "$DOCKER" exec -i "$c" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - >/dev/null
  done
  "$DOCKER" exec "$c" pkill containerd || true
  sleep 1
  "$DOCKER" commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    --change "LABEL io.cnpg-mcp.key=$k" "$c" "$NODE_IMAGE" >/dev/null
  "$DOCKER" rm -f -v "$c" >/dev/null; trap - EXIT
  record built "image: $NODE_IMAGE" $(( $(date +%s) - s ))
}

# --objectstore: only the e2e object store's image (online `make e2e` needs it too).
objectstore_only() {
  "$DOCKER" info >/dev/null 2>&1 || { echo "offline: the Docker engine is not reachable (start dockerd)" >&2; exit 1; }
  local vgw
  gobin vgw versitygw github.com/versity/versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw
  scratch_image "$OBJSTORE_IMAGE" "$(key versitygw "$vgw")" "$vgw" /usr/local/bin/versitygw entrypoint
  printf '  %s\n' "${summary[@]}"
}

main() {
  if [ -n "$OBJSTORE_ONLY" ]; then objectstore_only; return; fi
  need_tools
  "$DOCKER" info >/dev/null 2>&1 || { echo "offline: the Docker engine is not reachable (start dockerd)" >&2; exit 1; }
  # Debian trees download while Go compiles (network vs CPU).
  ( rootfs node "$NODE_PKGS" && rootfs proxy "$PROXY_PKGS" && rootfs pg "$PG_PKGS" "$PG_SETUP"
    printf '%s\n' "${summary[@]}" > "$OUT/logs/rootfs.summary" ) &
  local rootfs_pid=$!

  local crictl lpp cnpg coredns
  gobin crictl crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
  gobin lpp local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" github.com/rancher/local-path-provisioner
  local cv=github.com/cloudnative-pg/cloudnative-pg/pkg/versions
  gobin cnpg cnpg-manager github.com/cloudnative-pg/cloudnative-pg "v$CNPG_VERSION" github.com/cloudnative-pg/cloudnative-pg/cmd/manager \
    "-X $cv.buildVersion=$CNPG_VERSION -X $cv.buildCommit=module-v$CNPG_VERSION -X $cv.buildDate=2026-01-01"
  gobin coredns coredns github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns
  local vgw plugin
  gobin vgw versitygw github.com/versity/versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw
  gobin plugin plugin-barman-cloud github.com/cloudnative-pg/plugin-barman-cloud "$BARMAN_CLOUD_PLUGIN_VERSION" \
    github.com/cloudnative-pg/plugin-barman-cloud/cmd/manager
  kubebins

  # kubeadm decides the control-plane image names; they must match the pins.
  local want got
  want=$(printf '%s\n' "$K8S_REPO/kube-apiserver:$K8S_VERSION" "$K8S_REPO/kube-controller-manager:$K8S_VERSION" \
    "$K8S_REPO/kube-scheduler:$K8S_VERSION" "$K8S_REPO/kube-proxy:$K8S_VERSION" "$K8S_REPO/coredns:$COREDNS_VERSION" \
    "$K8S_REPO/pause:$PAUSE_VERSION" "$K8S_REPO/etcd:$ETCD_IMAGE_TAG" | sort)
  got=$("$KUBEBIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" --image-repository "$K8S_REPO" 2>/dev/null | sort)
  if [ "$want" != "$got" ]; then
    echo "offline: kubeadm $K8S_VERSION expects other images than hack/versions.env pins:" >&2
    diff <(echo "$want") <(echo "$got") >&2 || true; exit 1
  fi

  local c
  build_pause
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    scratch_image "$K8S_REPO/$c:$K8S_VERSION" "$(key "$c" "$KUBEBIN/$c")" "$KUBEBIN/$c" "/usr/local/bin/$c"
  done
  scratch_image "$K8S_REPO/etcd:$ETCD_IMAGE_TAG" "$(key etcd "$KUBEBIN/etcd")" "$KUBEBIN/etcd" /usr/local/bin/etcd
  scratch_image "$K8S_REPO/coredns:$COREDNS_VERSION" "$(key coredns "$coredns")" "$coredns" /coredns entrypoint
  scratch_image "$LPP_IMAGE" "$(key lpp "$lpp")" "$lpp" /usr/local/bin/local-path-provisioner
  build_lpp_helper
  build_cnpg "$cnpg"
  scratch_image "$OBJSTORE_IMAGE" "$(key versitygw "$vgw")" "$vgw" /usr/local/bin/versitygw entrypoint
  scratch_image "$PLUGIN_IMAGE" "$(key plugin "$plugin")" "$plugin" /manager entrypoint

  log "waiting for the Debian root filesystems"
  wait "$rootfs_pid" || { echo "offline: debootstrap failed (logs in $OUT/logs)" >&2; exit 1; }
  mapfile -t -O "${#summary[@]}" summary < "$OUT/logs/rootfs.summary"
  build_kube_proxy
  build_postgres
  build_plugin_sidecar "$plugin"
  manifests
  build_base
  build_node "$K8S_REPO/kube-apiserver:$K8S_VERSION" "$K8S_REPO/kube-controller-manager:$K8S_VERSION" \
    "$K8S_REPO/kube-scheduler:$K8S_VERSION" "$K8S_REPO/kube-proxy:$K8S_VERSION" "$K8S_REPO/etcd:$ETCD_IMAGE_TAG" \
    "$K8S_REPO/coredns:$COREDNS_VERSION" "$K8S_REPO/pause:$PAUSE_VERSION" "$LPP_IMAGE" "$LPP_HELPER_IMAGE"

  { list_images; echo "PG_IMAGE=$PG_IMAGE"; } > "$OUT/images.env"
  echo "offline: summary (total $(( $(date +%s) - T0 ))s; images.env: $OUT/images.env)"
  printf '  %s\n' "${summary[@]}"
  echo "offline: image sizes"
  for c in "$NODE_IMAGE" "$CNPG_IMAGE" "$PG_IMAGE" "$K8S_REPO/kube-apiserver:$K8S_VERSION" "$K8S_REPO/kube-proxy:$K8S_VERSION" \
      "$K8S_REPO/coredns:$COREDNS_VERSION" "$LPP_IMAGE" "$OBJSTORE_IMAGE" "$PLUGIN_IMAGE" "$PLUGIN_SIDECAR_IMAGE"; do
    printf '  %-52s %s\n' "$c" "$("$DOCKER" image inspect -f '{{.Size}}' "$c" | awk '{printf "%.0f MB", $1/1e6}')"
  done
}
# --rootfs NAME PACKAGES [SETUP-SCRIPT]: build (or reuse) one cached Debian $DEBIAN_SUITE tree for another
# image of this repository (the conformance suite's image with Chromium: images/mcp-auth-conformance)
# and print its directory. Progress and the summary line go to stderr.
if [ "${1:-}" = --rootfs ]; then
  [ $# -ge 3 ] || { echo "usage: $0 --rootfs NAME PACKAGES [SETUP-SCRIPT]" >&2; exit 2; }
  need_tools
  rootfs "$2" "$3" "${4:-}" >&2
  printf '%s\n' "${summary[@]}" >&2
  echo "$OUT/rootfs/$2-$DEBIAN_SUITE-$(key "rootfs-$2" "$DEBIAN_SUITE" "$3" "${4:-}")"
  exit 0
fi
main "$@"
