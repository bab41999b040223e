"""Figure 6 (operator side): one fleet with 10,000 and 50,000 ApiKeys on a real kube-apiserver.

A local control plane (etcd + kube-apiserver + kube-controller-manager from
``devcluster``) and the operator as a subprocess (``kopf run``, as in a pod). For each
size, that many ApiKeys are created for one WeatherProxy (8 clients in parallel, generated
keys: the operator creates each key's Secret, hashes it and records the hash), and the
figure is the time from the first create until the fleet's keys Secrets hold every hash,
the operator's RSS then (and its peak), the shard count and the largest shard. Then the
operator is left idle for ``--idle`` seconds and its CPU time over that span is printed.

``python -m bench.operator_keys [--sizes 10000,50000] [--idle 30]`` (minutes per size: the
control plane and the operator share the machine's cores with the clients).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import os
import pathlib
import tempfile
import time
from typing import Any

from devcluster import controlplane as cp_mod
from hack import kubectl as kubectl_
from hack import operator_process
from weather_operator.api import constants
from weather_operator.render import keys_secret, names
from weather_proxy import config as proxy_config

NAMESPACE = "bench"
PROXY = "paris"
CLIENTS = 8
TICKS = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _api_key(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{constants.GROUP}/{constants.VERSION}",
        "kind": "ApiKey",
        "metadata": {"name": f"key-{i:06d}", "namespace": NAMESPACE},
        "spec": {"proxyRef": {"name": PROXY}},
    }


def _hashes_in_secrets(api: Any) -> tuple[int, int, int]:
    """(hashes in the fleet's keys Secrets, shards, bytes of the largest) as stored now."""
    first = api.read_namespaced_secret(names.keys_secret_name(PROXY), NAMESPACE)
    shards = int((first.metadata.annotations or {}).get(keys_secret.SHARDS_ANNOTATION, "1"))
    total = largest = 0
    for name in names.keys_secret_names(PROXY, shards):
        secret = first if name == first.metadata.name else api.read_namespaced_secret(name, NAMESPACE)
        text = base64.b64decode((secret.data or {}).get(names.KEYS_KEY, "")).decode()
        largest = max(largest, len(text))
        keys = proxy_config.parse_keys(text, name)
        total += sum(1 for entry in keys.keys if "#" not in entry.id)
    return total, shards, largest


def run(workdir: pathlib.Path, sizes: list[int], idle: float) -> list[str]:
    from kubernetes import client as kube_client
    from kubernetes import config as kube_config

    lines = []
    with cp_mod.ControlPlane(state_dir=workdir / "controlplane", kwok=False) as cp:
        kubectl = kubectl_.Kubectl(cp.kubeconfig)
        kubectl.install_crds()
        api_client = kube_config.new_client_from_config(config_file=str(cp.kubeconfig))  # type: ignore[no-untyped-call]
        api_client.configuration.connection_pool_maxsize = CLIENTS
        core = kube_client.CoreV1Api(api_client)
        custom = kube_client.CustomObjectsApi(api_client)
        operator = operator_process.OperatorProcess(cp.kubeconfig, workdir / "operator.log").start()
        try:
            kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
            kubectl.apply(
                {
                    "apiVersion": f"{constants.GROUP}/{constants.VERSION}",
                    "kind": "WeatherProxy",
                    "metadata": {"name": PROXY, "namespace": NAMESPACE},
                    "spec": {"environment": "dev"},
                }
            )
            kubectl_.wait_until(
                lambda: kubectl.exists("secret", names.keys_secret_name(PROXY), namespace=NAMESPACE),
                timeout=120,
                what="the fleet's keys Secret",
            )
            created = 0
            for size in sizes:

                def create(i: int) -> None:
                    custom.create_namespaced_custom_object(
                        constants.GROUP, constants.VERSION, NAMESPACE, constants.APIKEY_PLURAL, _api_key(i)
                    )

                started = time.monotonic()
                with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                    list(pool.map(create, range(created, size)))
                created_in = time.monotonic() - started
                created = size
                while True:
                    hashes, shards, largest = _hashes_in_secrets(core)
                    if hashes >= size:
                        break
                    time.sleep(1)
                converged = time.monotonic() - started
                pid = operator.pid
                assert pid is not None
                memory = proc_status(pid)
                cpu_before = cpu_seconds(pid)
                time.sleep(idle)
                idle_cpu = cpu_seconds(pid) - cpu_before
                lines.append(
                    f"6. operator with {size:,} ApiKeys on one fleet: all hashes in the keys Secrets "
                    f"{converged:.0f} s after the first create (creates took {created_in:.0f} s), "
                    f"{shards} shard(s), largest {largest / 1024:.0f} KiB; "
                    f"RSS {memory['VmRSS'] / 2**20:.0f} MiB "
                    f"(peak {memory['VmHWM'] / 2**20:.0f} MiB); idle {idle:.0f} s: {idle_cpu:.2f} s CPU "
                    f"({idle_cpu / idle:.1%} of a core)"
                )
                print(lines[-1], flush=True)
        finally:
            operator.stop()
            api_client.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_keys", description=__doc__)
    parser.add_argument("--sizes", default="10000,50000", help="cumulative ApiKey counts, ascending")
    parser.add_argument(
        "--idle", type=float, default=30.0, help="seconds of idle CPU measured after each size"
    )
    args = parser.parse_args()
    sizes = sorted(int(part) for part in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="wpf-bench-operator-") as tmp:
        run(pathlib.Path(tmp), sizes, args.idle)


if __name__ == "__main__":
    main()
