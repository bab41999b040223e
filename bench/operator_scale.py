"""Figure 7 (operator): many fleets with many ApiKeys applied at once, on a real kube-apiserver.

A local control plane (etcd + kube-apiserver + kube-controller-manager + kube-scheduler
and kwok, whose fake nodes report the pods Running and Ready) and the operator as a
subprocess (``kopf run --standalone``, as in a pod). ``--fleets`` WeatherProxies (dev
preset) and ``--keys`` ApiKeys spread evenly over them are created at once by 8 client
threads. Printed:

* the time from the first create until everything is Ready: every WeatherProxy's Ready
  condition True, every ApiKey's Ready condition True, and every fleet's keys Secrets
  holding the hash of each of its keys;
* the CPU the operator and each control-plane process used until then;
* the operator's CPU (share of one core) in 10 s windows after that, its RSS then and its
  peak RSS;
* how often Kopf logged "Creation is processed" per ApiKey (1 is once), and the count
  of urllib3 "Connection pool is full" warnings in the operator's log.

``python -m bench.operator_scale [--fleets 50 --keys 1000] [--idle-windows 4]``; the
scenario of #10 is the default; ``--fleets 200 --keys 10000`` is the large one.
"""

from __future__ import annotations

import argparse
import base64
import collections
import concurrent.futures
import math
import os
import pathlib
import re
import tempfile
import time
from typing import Any

import httpx

from bench import operator_keys as proc
from devcluster import controlplane as cp_mod
from hack import kubectl as kubectl_
from hack import operator_process
from weather_operator.api import constants
from weather_operator.render import keys_secret, names
from weather_proxy import config as proxy_config

NAMESPACE = "scale"
CLIENTS = 8
PODS_PER_NODE = 100  # kwok's fake nodes allow 110
WINDOW_SECONDS = 10.0


def _fleet(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{constants.GROUP}/{constants.VERSION}",
        "kind": "WeatherProxy",
        "metadata": {"name": f"fleet-{i:03d}", "namespace": NAMESPACE},
        "spec": {"environment": "dev"},
    }


def _api_key(i: int, fleets: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{constants.GROUP}/{constants.VERSION}",
        "kind": "ApiKey",
        "metadata": {"name": f"key-{i:06d}", "namespace": NAMESPACE},
        "spec": {"proxyRef": {"name": f"fleet-{i % fleets:03d}"}},
    }


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _hashes_per_fleet(core: Any) -> collections.Counter[str]:
    """Per fleet: the key hashes (not rotation copies) its keys Secrets hold now."""
    counts: collections.Counter[str] = collections.Counter()
    selector = f"app.kubernetes.io/managed-by={names.MANAGED_BY}"
    for secret in core.list_namespaced_secret(NAMESPACE, label_selector=selector).items:
        text_b64 = (secret.data or {}).get(names.KEYS_KEY)
        annotations = secret.metadata.annotations or {}
        if not text_b64 or keys_secret.SHARDS_ANNOTATION not in annotations:
            continue
        parsed = proxy_config.parse_keys(base64.b64decode(text_b64).decode(), secret.metadata.name)
        fleet = secret.metadata.name.split("-keys")[0]
        counts[fleet] += sum(1 for entry in parsed.keys if "#" not in entry.id)
    return counts


def _progress(custom: Any, core: Any) -> tuple[int, int, int]:
    """(fleets Ready, ApiKeys Ready, key hashes in the fleets' keys Secrets) now."""
    wps = custom.list_namespaced_custom_object(
        constants.GROUP, constants.VERSION, NAMESPACE, constants.WEATHERPROXY_PLURAL
    )["items"]
    ready_fleets = sum(1 for wp in wps if _ready(wp))
    aks = custom.list_namespaced_custom_object(
        constants.GROUP, constants.VERSION, NAMESPACE, constants.APIKEY_PLURAL
    )["items"]
    ready_keys = sum(1 for ak in aks if _ready(ak))
    return ready_fleets, ready_keys, sum(_hashes_per_fleet(core).values())


def _reconciles(port: int) -> dict[str, float]:
    """weather_operator_reconciles_total by kind, from the operator's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: dict[str, float] = collections.defaultdict(float)
    for match in re.finditer(
        r'^weather_operator_reconciles_total\{kind="(\w+)",result="(\w+)"\} (\S+)$', text, re.M
    ):
        out[f"{match.group(1)} {match.group(2)}"] += float(match.group(3))
    return dict(out)


def _log_counts(log: pathlib.Path) -> tuple[collections.Counter[str], int]:
    text = log.read_text(errors="replace")
    creations: collections.Counter[str] = collections.Counter()
    for match in re.finditer(r"\[" + NAMESPACE + r"/(key-\d+)\] Creation is processed", text):
        creations[match.group(1)] += 1
    return creations, text.count("Connection pool is full")


def run(workdir: pathlib.Path, fleets: int, keys: int, idle_windows: int) -> list[str]:
    from kubernetes import client as kube_client
    from kubernetes import config as kube_config

    nodes = max(1, math.ceil(2 * fleets / PODS_PER_NODE))
    log = workdir / "operator.log"
    with cp_mod.ControlPlane(state_dir=workdir / "controlplane", kwok=True) as cp:
        for i in range(nodes):
            cp.add_fake_node(f"fake-{i}")
        kubectl = kubectl_.Kubectl(cp.kubeconfig)
        kubectl.install_crds()
        kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        api_client = kube_config.new_client_from_config(config_file=str(cp.kubeconfig))  # type: ignore[no-untyped-call]
        api_client.configuration.connection_pool_maxsize = CLIENTS
        core = kube_client.CoreV1Api(api_client)
        custom = kube_client.CustomObjectsApi(api_client)
        operator = operator_process.OperatorProcess(cp.kubeconfig, log).start()
        metrics_port = operator.metrics_port
        pid = operator.pid
        assert pid is not None
        try:
            time.sleep(3)  # the operator logged in and started its watches

            def create(obj: dict[str, Any]) -> None:
                plural = (
                    constants.WEATHERPROXY_PLURAL
                    if obj["kind"] == "WeatherProxy"
                    else constants.APIKEY_PLURAL
                )
                custom.create_namespaced_custom_object(
                    constants.GROUP, constants.VERSION, NAMESPACE, plural, obj
                )

            objects = [_fleet(i) for i in range(fleets)] + [_api_key(i, fleets) for i in range(keys)]
            cpu_start = proc.cpu_seconds(pid)
            plane_start = {comp: proc.cpu_seconds(p) for comp, p in cp.pids.items()}
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(create, objects))
            created_in = time.monotonic() - started
            reached: dict[str, float] = {}
            targets = {"fleets Ready": fleets, "ApiKeys Ready": keys, "hashes in the keys Secrets": keys}
            while len(reached) < len(targets):
                for what, count in zip(targets, _progress(custom, core), strict=True):
                    if count >= targets[what]:
                        reached.setdefault(what, time.monotonic() - started)
                if time.monotonic() - started > 1800:
                    raise TimeoutError(f"not Ready after 30 min: {reached}")
                time.sleep(0.5)
            ready_in = max(reached.values())
            busy = proc.cpu_seconds(pid) - cpu_start
            cores = os.cpu_count() or 1
            plane = {comp: proc.cpu_seconds(p) - plane_start[comp] for comp, p in cp.pids.items()}
            windows = []
            for _ in range(idle_windows):
                before = proc.cpu_seconds(pid)
                time.sleep(WINDOW_SECONDS)
                windows.append((proc.cpu_seconds(pid) - before) / WINDOW_SECONDS)
            memory = proc.proc_status(pid)
            creations, pool_full = _log_counts(log)
            per_key = collections.Counter(creations.values())
            reconciles = _reconciles(metrics_port) if metrics_port else {}
            lines = [
                f"7. operator, {fleets} fleets x {keys:,} ApiKeys ({nodes} kwok nodes, {CLIENTS} clients): "
                f"everything Ready {ready_in:.1f} s after the first create (creates took {created_in:.1f} s; "
                f"operator CPU until then {busy:.1f} s); "
                + ", ".join(f"{what} at {seconds:.1f} s" for what, seconds in reached.items()),
                "   control plane CPU until then: "
                + ", ".join(
                    f"{comp} {seconds:.1f} s" for comp, seconds in sorted(plane.items(), key=lambda x: -x[1])
                )
                + f" ({cores} cores: {cores * ready_in:.0f} core-seconds in that time)",
                "   operator CPU in 10 s windows after Ready: "
                + ", ".join(f"{share:.1%}" for share in windows)
                + f" of a core; RSS {memory['VmRSS'] / 2**20:.0f} MiB,"
                f" peak {memory['VmHWM'] / 2**20:.0f} MiB",
                "   'Creation is processed' per ApiKey: "
                + (", ".join(f"{times}x: {count}" for times, count in sorted(per_key.items())) or "none")
                + f"; 'Connection pool is full' warnings: {pool_full}; reconciles: "
                + (", ".join(f"{what} {count:.0f}" for what, count in sorted(reconciles.items())) or "n/a"),
            ]
            for line in lines:
                print(line, flush=True)
            return lines
        finally:
            operator.stop()
            api_client.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_scale", description=__doc__)
    parser.add_argument("--fleets", type=int, default=50)
    parser.add_argument("--keys", type=int, default=1000, help="ApiKeys, spread evenly over the fleets")
    parser.add_argument("--idle-windows", type=int, default=4, help="10 s CPU windows measured after Ready")
    parser.add_argument("--keep", help="keep the control plane's and operator's files in this directory")
    args = parser.parse_args()
    if args.keep:
        path = pathlib.Path(args.keep)
        path.mkdir(parents=True, exist_ok=True)
        run(path, args.fleets, args.keys, args.idle_windows)
        return
    with tempfile.TemporaryDirectory(prefix="wpf-bench-scale-") as tmp:
        run(pathlib.Path(tmp), args.fleets, args.keys, args.idle_windows)


if __name__ == "__main__":
    main()
