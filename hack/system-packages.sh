#!/usr/bin/env bash
# Installs the Debian packages the tests and the dev stack need, when missing.
#   redis-server: L2 cache / limits for integration tests and `make dev`
#   lua5.4:       runs the Argo CD health-check scripts in tests
#   wrk:          load generator for bench/ (only needed by `make bench`)
set -euo pipefail

declare -A package_of=([redis-server]=redis-server [lua5.4]=lua5.4 [wrk]=wrk)
missing=()
for cmd in "$@"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]:-$cmd}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo ">> installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo ">> installed: ${missing[*]}"
