"""Figure 8 (operator): the operator's API client, aiohttp against the official client in threads.

Both send the same requests to a real kube-apiserver (the local control plane): ``--count``
server-side applies of ConfigMaps (each a new object, then the same again: a no-op
apply), ``--count`` GETs, ``--concurrency`` at a time from one event loop, as the
operator's handlers do.

* ``threads``: ``kubernetes.dynamic.DynamicClient.request`` run with ``asyncio.to_thread``
  (what the operator used before), urllib3 pool of 10 (the client's default);
* ``aiohttp``: ``weather_operator.apply.Cluster`` (one aiohttp session, 32 connections).

Printed: requests per second each, the ratio, the process's CPU seconds per 1,000
requests, and urllib3's "Connection pool is full" warnings. ``python -m bench.operator_client``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import pathlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import kubernetes.client
import kubernetes.config
import kubernetes.dynamic

from devcluster import controlplane as cp_mod
from hack import kubectl as kubectl_
from weather_operator import apply as kube
from weather_operator.api import constants


class _NoDiscovery:
    def __init__(self, client: Any, cache_file: Any) -> None:
        self.client = client


class ThreadedClient:
    """The official client's ``DynamicClient.request`` in worker threads."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self._dynamic = kubernetes.dynamic.DynamicClient(api_client, discoverer=_NoDiscovery)  # type: ignore[no-untyped-call]

    async def _request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        call = functools.partial(self._dynamic.request, method, path, body=body, serialize=False, **params)
        return await asyncio.to_thread(call)

    async def apply(self, obj: dict[str, Any]) -> Any:
        path = kube.kind_of("v1", "ConfigMap").path(obj["metadata"]["namespace"], obj["metadata"]["name"])
        return await self._request(
            "patch",
            path,
            body=obj,
            content_type=kube.APPLY_PATCH,
            field_manager=constants.FIELD_MANAGER,
            force_conflicts=True,
        )

    async def get(self, kind: kube.Kind, namespace: str, name: str) -> Any:
        return await self._request("get", kind.path(namespace, name))


def _config_map(namespace: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:05d}", "namespace": namespace},
        "data": {"n": str(i)},
    }


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Connection pool is full" in record.getMessage():
            self.count += 1


async def _phase(concurrency: int, jobs: list[Callable[[], Awaitable[Any]]]) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> None:
        async with semaphore:
            await job()

    started = time.monotonic()
    await asyncio.gather(*(one(job) for job in jobs))
    return time.monotonic() - started


async def _measure(client: Any, namespace: str, count: int, concurrency: int) -> tuple[float, float]:
    """(requests per second, CPU seconds per 1,000 requests) over create-applies, no-op applies, GETs."""
    kind = kube.kind_of("v1", "ConfigMap")
    cpu = time.process_time()
    elapsed = 0.0
    for _ in range(2):  # create, then the same apply again (a no-op on the server)
        elapsed += await _phase(
            concurrency, [functools.partial(client.apply, _config_map(namespace, i)) for i in range(count)]
        )
    elapsed += await _phase(
        concurrency, [functools.partial(client.get, kind, namespace, f"cm-{i:05d}") for i in range(count)]
    )
    requests = 3 * count
    return requests / elapsed, (time.process_time() - cpu) / requests * 1000


async def _run(kubeconfig: pathlib.Path, count: int, concurrency: int) -> list[str]:
    kubectl = kubectl_.Kubectl(kubeconfig)
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=configuration
    )
    counter = _Counter()
    logging.getLogger("urllib3.connectionpool").addHandler(counter)
    results: dict[str, list[tuple[float, float]]] = {}
    for which in ("threads", "aiohttp", "threads", "aiohttp"):
        namespace = f"client-{which}-{len(results)}"
        kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        if which == "threads":
            api_client = kubernetes.client.ApiClient(configuration)
            rate, cpu = await _measure(ThreadedClient(api_client), namespace, count, concurrency)
            api_client.close()  # type: ignore[no-untyped-call]
        else:
            cluster = kube.Cluster(kube.Credentials.from_configuration(configuration))
            rate, cpu = await _measure(cluster, namespace, count, concurrency)
            await cluster.close()
        results.setdefault(which, []).append((rate, cpu))
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
    best = {which: max(runs) for which, runs in results.items()}
    lines = [
        f"8. operator API client, {3 * count:,} requests (applies, no-op applies, GETs), "
        f"{concurrency} in flight: "
        + "; ".join(
            f"{which} {rate:,.0f} req/s, {cpu:.2f} CPU s per 1,000" for which, (rate, cpu) in best.items()
        )
        + f"; aiohttp / threads {best['aiohttp'][0] / best['threads'][0]:.2f}x; "
        f"'Connection pool is full' warnings (threads): {counter.count}"
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_client", description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="wpf-bench-client-") as tmp,
        cp_mod.ControlPlane(state_dir=pathlib.Path(tmp) / "controlplane", kwok=False) as cp,
    ):
        for line in asyncio.run(_run(cp.kubeconfig, args.count, args.concurrency)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
