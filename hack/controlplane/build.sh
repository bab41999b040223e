#!/usr/bin/env bash
# Builds the local test control plane from the Go modules pinned in go.mod/go.sum
# (and kwok/, kube-router/, victorialogs/ go.mod/go.sum) into a version-keyed cache OUTSIDE the repo:
#
#   ${WPF_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weather-proxy-fleet/controlplane}/<k8s-version>/bin/
#     etcd kube-apiserver kube-controller-manager   (core; a failure is fatal)
#     kube-scheduler kwok kwok-stages.yaml          (extras for fake nodes; a failure only warns)
#     kubelet kube-proxy                            (the real node, devcluster/node.py; a failure is fatal)
#     kube-router                                   (the real node's NetworkPolicy firewall, own module; fatal)
#     victoria-logs vlagent                         (the real node's log store and collector, own module; fatal)
#
# Re-running is a fast no-op (no Go needed) when the binaries exist and the stamp
# (hash of go.mod, go.sum and the main packages) matches. Needs only `go` and the
# Go module proxy. Set WPF_CONTROLPLANE_KWOK=0 to skip the extras and
# WPF_CONTROLPLANE_NODE=0 to skip kubelet, kube-proxy, kube-router and the log pipeline.
#
# Usage: hack/controlplane/build.sh [--force] [--print-bin-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

force=0
print_only=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --print-bin-dir) print_only=1 ;;
    -h|--help) sed -n '2,17p' "$here/$(basename "$0")"; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

k8s_version="$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' go.mod)"
[[ -n "$k8s_version" ]] || { echo "build.sh: k8s.io/kubernetes not found in go.mod" >&2; exit 1; }
cache_root="${WPF_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weather-proxy-fleet/controlplane}"
bin_dir="${cache_root}/${k8s_version}/bin"
if [[ $print_only -eq 1 ]]; then echo "$bin_dir"; exit 0; fi

core=(etcd kube-apiserver kube-controller-manager)
# Binaries of the real node built from their own module (dir = name): kube-router's dependencies
# (client-go v0.29, ...) must not change what the Kubernetes binaries are built with.
own_module=()
# VictoriaLogs' programs are package main in the dependency itself: built by package path.
victorialogs_pkg=github.com/VictoriaMetrics/VictoriaLogs/app
victorialogs=()
case "${WPF_CONTROLPLANE_NODE:-1}" in
  0|false|no|off) ;;
  *) core+=(kubelet kube-proxy); own_module=(kube-router); victorialogs=(victoria-logs vlagent) ;;
esac
extras=()
case "${WPF_CONTROLPLANE_KWOK:-1}" in 0|false|no|off) ;; *) extras=(kube-scheduler kwok) ;; esac

minor="${k8s_version#v1.}"; minor="${minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X ${pkg}.gitVersion=${k8s_version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
done
kube_router_version="$(awk '$1=="github.com/cloudnativelabs/kube-router/v2"{print $2; exit}' kube-router/go.mod)"
kube_router_ldflags="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${kube_router_version}"
victorialogs_version="$(awk '$1=="require" && $2=="github.com/VictoriaMetrics/VictoriaLogs"{print $3; exit}' victorialogs/go.mod)"
victorialogs_ldflags="-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-${victorialogs_version}"

# What the binaries depend on: pins, main packages, build flags (not this script's prose).
stamp="$( { echo "core=${core[*]} own=${own_module[*]} vl=${victorialogs[*]} extras=${extras[*]} ldflags=${k8s_ldflags} ${kube_router_ldflags} ${victorialogs_ldflags} cgo=${CGO_ENABLED:-0}";
            cat go.mod go.sum kwok/go.mod kwok/go.sum kube-router/go.mod kube-router/go.sum victorialogs/go.mod victorialogs/go.sum;
            find cmd kwok/cmd kube-router/cmd -type f -name '*.go' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -d' ' -f1)"
up_to_date() {
  [[ -f "$bin_dir/.stamp" && "$(cat "$bin_dir/.stamp")" == "$stamp" ]] || return 1
  local b
  for b in "${core[@]}" "${own_module[@]}" "${victorialogs[@]}" "${extras[@]}"; do [[ -x "$bin_dir/$b" ]] || return 1; done
}
if [[ $force -eq 0 ]] && up_to_date; then
  echo "control plane binaries up to date in $bin_dir" >&2
  exit 0
fi

# One build at a time per version (parallel test sessions call this script).
mkdir -p "$bin_dir"
if command -v flock >/dev/null; then
  exec 9>"$bin_dir/../.build.lock"
  if ! flock -n 9; then
    echo "waiting for another build.sh building into $bin_dir..." >&2
    flock 9
    if [[ $force -eq 0 ]] && up_to_date; then
      echo "control plane binaries up to date in $bin_dir" >&2
      exit 0
    fi
  fi
fi

# The Go toolchain of this machine kind lives in /usr/local/go; a login-less shell may lack it on PATH.
command -v go >/dev/null || { [[ -x /usr/local/go/bin/go ]] && export PATH="$PATH:/usr/local/go/bin"; }
command -v go >/dev/null || { echo "build.sh: 'go' not found in PATH (need Go >= $(awk '$1=="go"{print $2}' go.mod))" >&2; exit 1; }
rm -f "$bin_dir/.stamp"
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
export CGO_ENABLED="${CGO_ENABLED:-0}"


# Measured cold (empty Go build cache) on 2 cores, see README.md.
declare -A hint=([etcd]="~1-3 min" [kube-apiserver]="~3-7 min" [kube-controller-manager]="~1-2 min more"
                 [kube-scheduler]="~20 s more" [kubelet]="~2-4 min more" [kube-proxy]="~30 s more" [kwok]="~2-5 min more"
                 [kube-router]="~2-4 min more" [victoria-logs]="~30 s-1 min more" [vlagent]="~5 s more")

build_one() { # name moduledir [package]
  local b="$1" dir="$2" pkg="${3:-./cmd/$1}" start=$SECONDS flags="-s -w"
  [[ "$b" == kube* ]] && flags="$k8s_ldflags"
  [[ "$b" == kube-router ]] && flags="$kube_router_ldflags"
  [[ "$dir" == victorialogs ]] && flags="$victorialogs_ldflags"
  echo "building ${b} (cold build takes ${hint[$b]:-a few min} on 2 cores; cached: seconds)..." >&2
  (cd "$dir" && go build -trimpath -ldflags="$flags" -o "$bin_dir/.${b}.tmp.$$" "$pkg") || return 1
  mv -f "$bin_dir/.${b}.tmp.$$" "$bin_dir/${b}"
  echo "  built ${b} in $((SECONDS - start))s" >&2
}

total_start=$SECONDS
echo "building control plane ${k8s_version} into ${bin_dir}" >&2
echo "downloading modules (cold module cache: ~1 min)..." >&2
go mod download
for b in "${core[@]}"; do
  build_one "$b" . || { echo "build.sh: building ${b} failed" >&2; exit 1; }
done
for b in "${own_module[@]}"; do
  { (cd "$b" && go mod download) && build_one "$b" "$b"; } || { echo "build.sh: building ${b} failed" >&2; exit 1; }
done
if [[ ${#victorialogs[@]} -gt 0 ]]; then
  (cd victorialogs && go mod download) || { echo "build.sh: downloading VictoriaLogs' modules failed" >&2; exit 1; }
  for b in "${victorialogs[@]}"; do
    build_one "$b" victorialogs "${victorialogs_pkg}/${b}" || { echo "build.sh: building ${b} failed" >&2; exit 1; }
  done
fi

extras_ok=1
if [[ ${#extras[@]} -gt 0 ]]; then
  build_one kube-scheduler . || extras_ok=0
  if (cd kwok && go mod download) && build_one kwok kwok; then
    # kwok needs Stage objects; use upstream's "fast" node/pod stages (what kwokctl embeds).
    kwok_dir="$(cd kwok && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
    {
      for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
               pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        echo "---"; cat "$kwok_dir/kustomize/stage/$f"
      done
    } > "$bin_dir/kwok-stages.yaml"
  else
    extras_ok=0
  fi
  if [[ $extras_ok -eq 0 ]]; then
    echo "build.sh: WARNING: kube-scheduler/kwok failed to build; the control plane works without them" \
         "(pods stay Pending). Not writing the stamp, so the next run retries." >&2
  fi
fi
[[ $extras_ok -eq 1 ]] && echo "$stamp" > "$bin_dir/.stamp"
echo "control plane binaries ready in ${bin_dir} ($((SECONDS - total_start))s)" >&2
