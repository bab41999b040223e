"""The operator's Prometheus metrics, served on ``/metrics`` (``metrics_port``) by aiohttp.

* ``weather_operator_reconciles_total{kind, result}`` and
  ``weather_operator_reconcile_duration_seconds{kind}``: every reconcile the queue ran
  (``result``: success, error, requeued);
* ``weather_operator_queue_depth``, ``weather_operator_queue_busy``: requests waiting for a
  worker, and being reconciled;
* ``weather_operator_api_keys{namespace, weatherproxy}``: the ApiKeys each fleet serves;
* ``weather_operator_last_successful_reconcile_age_seconds``: time since the last reconcile
  that succeeded (``-1`` before the first one);
* ``weather_operator_api_requests_total{verb}``: requests to the API server (not the watches);
* ``weather_operator_build_info{version, kopf_version}``.

One registry per process state (not the global one), so tests can run operators side by side.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp.web
import prometheus_client
from prometheus_client import core

from weather_proxy import version

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Live(prometheus_client.registry.Collector):
    """Values read when scraped: the queue, the fleets' key counts, the API client's requests."""

    def __init__(self, owner: OperatorMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterable[core.Metric]:
        owner = self._owner
        queue = owner.queue
        depth = core.GaugeMetricFamily(
            "weather_operator_queue_depth", "Reconcile requests waiting for a worker."
        )
        busy = core.GaugeMetricFamily("weather_operator_queue_busy", "Reconciles running now.")
        age = core.GaugeMetricFamily(
            "weather_operator_last_successful_reconcile_age_seconds",
            "Seconds since the last reconcile that succeeded; -1 before the first one.",
        )
        depth.add_metric([], queue.depth if queue is not None else 0)
        busy.add_metric([], queue.busy if queue is not None else 0)
        last = queue.last_success if queue is not None else None
        age.add_metric([], -1.0 if last is None else max(0.0, time.monotonic() - last))
        keys = core.GaugeMetricFamily(
            "weather_operator_api_keys", "ApiKeys served by each fleet.", labels=["namespace", "weatherproxy"]
        )
        for (namespace, name), count in sorted(owner.key_counts().items()):
            keys.add_metric([namespace, name], count)
        requests = core.CounterMetricFamily(
            "weather_operator_api_requests", "Requests the operator sent to the API server.", labels=["verb"]
        )
        client = owner.client
        for verb, count in sorted((client.requests if client is not None else {}).items()):
            requests.add_metric([verb.upper()], count)
        return [depth, busy, age, keys, requests]


class OperatorMetrics:
    """The registry and the instruments the reconcile path updates."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.reconciles = prometheus_client.Counter(
            "weather_operator_reconciles",
            "Reconciles run, by object kind and result.",
            ["kind", "result"],
            registry=self.registry,
        )
        self.duration = prometheus_client.Histogram(
            "weather_operator_reconcile_duration_seconds",
            "Time one reconcile took, by object kind.",
            ["kind"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        build = prometheus_client.Info(
            "weather_operator_build", "The operator's version.", registry=self.registry
        )
        build.info({"version": version.VERSION, "kopf_version": _version_of("kopf")})
        self.queue: Any = None
        self.client: Any = None
        self.key_counts: Callable[[], dict[tuple[str, str], int]] = dict
        self.registry.register(_Live(self))

    def watch_queue(self, queue: Any, key_counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.queue = queue
        self.key_counts = key_counts

    def watch_client(self, client: Any) -> None:
        self.client = client

    def observe(self, kind: str, result: str, seconds: float) -> None:
        self.reconciles.labels(kind, result).inc()
        self.duration.labels(kind).observe(seconds)

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def serve(metrics: OperatorMetrics, host: str, port: int) -> aiohttp.web.AppRunner:
    """Serve ``/metrics`` on ``host:port`` in the running loop; the caller cleans the runner up."""

    async def handler(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(
            body=metrics.render(), headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        )

    app = aiohttp.web.Application()
    app.router.add_get("/metrics", handler)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, host, port).start()
    return runner
