
# cnpg-mcp offline node: on a cgroup v1 host without --privileged (see kind/offline/docker-shim), docker mounts
# the v1 controllers read-only; kubelet and containerd need them writable. A bind remount works where a plain
# "remount,rw" says "busy".
cnpg_mcp_cgroupv1_rw() {
  if [[ ! -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qE ' /sys/fs/cgroup/[^ ]+ cgroup ro,' /proc/mounts; then
    log_info 'cnpg-mcp: remounting cgroup v1 controllers read-write'
    for d in /sys/fs/cgroup/*; do mount -o remount,bind,rw "$d" || true; done
  fi
}
