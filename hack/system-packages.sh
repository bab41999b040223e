#!/usr/bin/env bash
# Installs the Debian packages the tests, the dev stack and the real node need, when missing.
#   redis-server: L2 cache / limits for integration tests and `make dev`
#   postgresql:   the usage history's database in tests and benchmarks (server binaries in
#                 /usr/lib/postgresql/<version>/bin; the tests run their own server, not the package's)
#   lua5.4:       runs the Argo CD health-check scripts in tests
#   prometheus:   promtool, which evaluates the PrometheusRule's alerts on synthetic series in tests
#   wrk:          load generator for bench/ (only needed by `make bench`)
#   nginx:        nginx-light, bench figure 1's proxy_cache baseline (only needed by `make bench`)
#   containerd runc containernetworking-plugins iptables conntrack socat:  the real node (make cluster, make e2e)
#   ipset:        kube-router's NetworkPolicy firewall on the real node (the pods a policy selects)
#   buildah mmdebstrap gcc libc6-dev:  the local image builds (make images)
# Arguments are package names (or commands named like their package); installed ones are skipped.
set -euo pipefail

declare -A package_of=([redis-server]=redis-server [postgresql]=postgresql [lua5.4]=lua5.4 [wrk]=wrk [nginx]=nginx-light)
missing=()
for name in "$@"; do
  pkg="${package_of[$name]:-$name}"
  command -v "$name" >/dev/null 2>&1 && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" && continue
  missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo ">> installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
echo ">> installed: ${missing[*]}"
