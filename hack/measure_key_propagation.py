"""Measure ApiKey applied -> the fleet's keys Secret lists its hash, on a real API server.

    python -m hack.measure_key_propagation [--keys 20] [--kubeconfig PATH] [--no-build]

Without ``--kubeconfig`` it starts a private control plane (binaries from the build
cache) and stops it afterwards. It installs the CRDs, runs the operator as a
subprocess, creates one dev WeatherProxy, then applies ApiKeys one at a time and
times each from just before ``kubectl apply`` until the keys Secret holds the key's
entry (kubectl's own start-up is included: the figures are upper bounds). Prints
every sample and min / median / p95 / max. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from hack import kubectl as kubectl_
from hack import operator_process

PROXY = "bench"


def _key_ids(kubectl: kubectl_.Kubectl, namespace: str) -> set[str]:
    from weather_operator.render import names

    secret_name = names.keys_secret_name(PROXY)
    if not kubectl.exists("secret", secret_name, namespace=namespace):
        return set()
    secret = kubectl.get("secret", secret_name, namespace=namespace)
    data = yaml.safe_load(base64.b64decode(secret["data"][names.KEYS_KEY])) or {}
    return {entry["id"] for entry in data.get("keys") or []}


def measure(kubectl: kubectl_.Kubectl, count: int) -> list[float]:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    wp = {
        "apiVersion": "weatherproxy.dev/v1alpha1",
        "kind": "WeatherProxy",
        "metadata": {"name": PROXY, "namespace": namespace},
        "spec": {"environment": "dev"},
    }
    kubectl.apply(wp)
    kubectl_.wait_until(
        lambda: kubectl.exists("secret", f"{PROXY}-keys", namespace=namespace),
        timeout=120,
        what="keys Secret",
    )
    samples = []
    try:
        for i in range(count):
            name = f"key-{i:03d}"
            key = {
                "apiVersion": "weatherproxy.dev/v1alpha1",
                "kind": "ApiKey",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"proxyRef": {"name": PROXY}},
            }
            t0 = time.monotonic()
            kubectl.apply(key)
            kubectl_.wait_until(
                lambda n=name: f"{namespace}/{n}" in _key_ids(kubectl, namespace),  # type: ignore[misc]
                timeout=60,
                interval=0.02,
                what=f"{name} in keys.yaml",
            )
            samples.append(time.monotonic() - t0)
            print(f"  {name}: {samples[-1]:.3f} s", flush=True)
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
    return samples


def report(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"ApiKey applied -> keys Secret updated, {len(samples)} keys: "
        f"min {ordered[0]:.3f} s, median {statistics.median(ordered):.3f} s, "
        f"p95 {p95:.3f} s, max {ordered[-1]:.3f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.measure_key_propagation", description=__doc__)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--kubeconfig", type=Path, help="use this cluster instead of starting one")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.kubeconfig:
            kubeconfig = args.kubeconfig.resolve()
        else:
            from devcluster import controlplane

            bin_dir = controlplane.ensure_binaries(build=not args.no_build)
            cp = controlplane.ControlPlane(bin_dir=bin_dir, kwok=False).start()
            stack.callback(cp.stop)
            kubeconfig = cp.kubeconfig
        kubectl = kubectl_.Kubectl(kubeconfig)
        kubectl.install_crds()
        log = Path(tempfile.mkdtemp(prefix="wpf-measure-")) / "operator.log"
        operator = operator_process.OperatorProcess(kubeconfig, log).start()
        stack.callback(operator.stop)
        print(f"operator log: {log}", flush=True)
        samples = measure(kubectl, args.keys)
        print(report(samples), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
