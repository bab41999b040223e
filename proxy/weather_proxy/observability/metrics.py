"""Prometheus metrics of one proxy process (names agreed with the operator's alerts).

Every app gets its own registry so that several apps (tests, benchmarks) can live
in one process. Labels are bounded: route templates, never paths; never a key.

With several server processes in a pod (``workers``), a scrape reaches whichever one
accepts the connection, so each must answer for all: prometheus-client's multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``weather_proxy.server``) keeps every
process's samples in files there and ``render`` sums them. Counters and histograms add
up across processes; each gauge says how its processes' values combine (``livemax``:
the breaker's worst state, ``livemin``: Redis up only if every process reaches it, ...).
Per-worker labels were the other choice: they need one scrape per worker, which one
Service port cannot give. A gauge read at scrape time (``on_render``) is set by the
process that answers the scrape.
"""

from __future__ import annotations

import bisect
import os
import platform
from collections.abc import Callable

import prometheus_client as prom
from prometheus_client import multiprocess

from weather_proxy import contract, version

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BREAKER_STATE_VALUES = contract.BREAKER_STATE_VALUES


class BatchedCounter:
    """A counter child counted in a plain int on the hot path, added to it in bulk by ``Metrics.flush``.

    prometheus-client takes a lock per increment and, with several workers, writes a
    memory-mapped file (here 0.6 us an increment in one process, 1.3 us with workers;
    5 us a histogram observation): a cache hit pays an int addition instead.
    """

    __slots__ = ("child", "pending")

    def __init__(self, child: prom.Counter) -> None:
        self.child = child
        self.pending = 0

    def inc(self, amount: int = 1) -> None:
        self.pending += amount

    def flush(self) -> None:
        if self.pending:
            amount, self.pending = self.pending, 0
            self.child.inc(amount)


class BatchedHistogram:
    """A histogram child whose observations are counted per bucket here and added in bulk."""

    __slots__ = ("child", "counts", "total")

    def __init__(self, child: prom.Histogram) -> None:
        self.child = child
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le: the first bound >= seconds
        self.total += seconds

    def flush(self) -> None:
        if not any(self.counts):
            return
        counts, total = self.counts, self.total
        self.counts, self.total = [0] * len(counts), 0.0
        # prometheus-client keeps a histogram's buckets non-cumulative (an observation adds 1 to
        # the first bucket that holds it): adding n there is n observations. No public bulk call
        # exists; tests/unit/proxy/test_metrics_batching.py checks the rendering is the same.
        for bucket, count in zip(self.child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self.child._sum.inc(total)


class Metrics:
    """The proxy's metric families, registered in a private registry."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        # The workers' shared directory (``settings.ProxySettings.metrics_dir``); None: one process.
        self.multiprocess_dir = multiprocess_dir
        self._before_render: list[Callable[[], None]] = []
        self._batched: list[BatchedCounter | BatchedHistogram] = []
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        # A Gauge, not an Info: prometheus-client's multiprocess mode has no Info.
        self.build_info = prom.Gauge(
            "weather_proxy_build_info",
            "The proxy's version and Python (always 1).",
            ["version", "python_version"],
            multiprocess_mode="max",
            registry=r,
        )
        self.build_info.labels(version.VERSION, platform.python_version()).set(1)
        self.http_requests = prom.Counter(
            contract.METRIC_HTTP_REQUESTS_TOTAL,
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = prom.Histogram(
            contract.METRIC_HTTP_REQUEST_DURATION,
            "HTTP request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_requests = prom.Counter(
            "weather_proxy_cache_requests_total",
            "Cache lookups by tier (l1|l2) and result (hit|miss|stale).",
            ["tier", "result"],
            registry=r,
        )
        self.upstream_requests = prom.Counter(
            "weather_proxy_upstream_requests_total",
            "Upstream calls by endpoint (geocoding|forecast) and outcome (success|error|timeout|rejected).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.upstream_duration = prom.Histogram(
            "weather_proxy_upstream_request_duration_seconds",
            "Upstream call latency by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.breaker_state = prom.Gauge(
            contract.METRIC_UPSTREAM_BREAKER_STATE,
            "Upstream circuit breaker: 0 closed, 1 half-open, 2 open.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.rate_limited = prom.Counter(
            "weather_proxy_rate_limited_total", "Requests refused with 429 (rate limit or quota).", registry=r
        )
        self.lease_unspent = prom.Counter(
            "weather_proxy_ratelimit_lease_unspent_tokens_total",
            "Tokens a lease took from a fleet bucket and let expire unserved (the leases' under-admission).",
            registry=r,
        )
        self.quota_exceeded = prom.Counter(
            "weather_proxy_quota_exceeded_total",
            "Requests refused with 429 because a quota was used up.",
            registry=r,
        )
        self.redis_up = prom.Gauge(
            contract.METRIC_REDIS_UP,
            "1 when Redis answers, 0 otherwise.",
            multiprocess_mode="livemin",
            registry=r,
        )
        self.redis_busy = prom.Counter(
            "weather_proxy_redis_busy_total",
            "Redis operations that timed out or found no free pooled connection (Redis stays up).",
            registry=r,
        )
        self.config_reloads = prom.Counter(
            "weather_proxy_config_reload_total",
            "Reloads of config/keys files by result.",
            ["file", "result"],
            registry=r,
        )
        self.config_reload_ok = prom.Gauge(
            contract.METRIC_CONFIG_RELOAD_SUCCESS,
            "1 when the last load of the file succeeded.",
            ["file"],
            multiprocess_mode="livemin",
            registry=r,
        )
        self.keys_watch_connected = prom.Gauge(
            contract.METRIC_KEYS_WATCH_CONNECTED,
            "1 while every keys Secret is watched through the API server (0: falling back to the file).",
            multiprocess_mode="livemin",
            registry=r,
        )
        self.keys_watch_events = prom.Counter(
            "weather_proxy_keys_watch_events_total",
            "Keys Secret states received from the API server, by type (listed|added|modified|deleted).",
            ["type"],
            registry=r,
        )
        self.keys_watch_errors = prom.Counter(
            "weather_proxy_keys_watch_errors_total",
            "Failed lists or watches of the keys Secrets, retried after a backoff, by reason "
            "(expired|unauthorized|forbidden|http|network|protocol).",
            ["reason"],
            registry=r,
        )
        self.keys_watch_last_event = prom.Gauge(
            "weather_proxy_keys_watch_last_event_timestamp_seconds",
            "Unix time of the last keys Secret state received from the API server (list or event).",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.coalesced = prom.Counter(
            "weather_proxy_coalesced_requests_total",
            "Cache misses that waited for another caller's upstream call (process|fleet).",
            ["scope"],
            registry=r,
        )
        self.background_refreshes = prom.Counter(
            "weather_proxy_background_refreshes_total",
            "Stale-while-revalidate and warming refreshes by result (success|failure).",
            ["result"],
            registry=r,
        )
        self.upstream_budget_used = prom.Gauge(
            contract.METRIC_UPSTREAM_BUDGET_USED,
            "Share of the fleet's upstream budget used in the current UTC window (minute|hour|day), as "
            "this process last saw it (0 for a window without a limit).",
            ["window"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.upstream_budget_exhausted = prom.Counter(
            "weather_proxy_upstream_budget_exhausted_total",
            "Upstream calls refused because a budget window was spent, by window and origin "
            "(request|background).",
            ["window", "origin"],
            registry=r,
        )
        self.analytics_rows_written = prom.Counter(
            "weather_proxy_analytics_rows_written_total",
            "Request rows written to the analytics database.",
            registry=r,
        )
        self.analytics_rows_dropped = prom.Counter(
            "weather_proxy_analytics_rows_dropped_total",
            "Request rows dropped before reaching the analytics database (queue full while it was slow "
            "or down, oldest first; or still queued at shutdown when they could not be written).",
            registry=r,
        )
        self.analytics_rows_rejected = prom.Counter(
            "weather_proxy_analytics_rows_rejected_total",
            "Request rows the analytics database refused for their content (SQLSTATE classes 22 and "
            "23, or a value the driver cannot send), dropped one by one; the rest of their batch is written.",
            registry=r,
        )
        self.analytics_queue_rows = prom.Gauge(
            "weather_proxy_analytics_queue_rows",
            "Request rows waiting in memory for the analytics database.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.analytics_database_up = prom.Gauge(
            "weather_proxy_analytics_database_up",
            "1 when the analytics database took the last write or query, 0 otherwise.",
            multiprocess_mode="livemin",
            registry=r,
        )
        self.analytics_flush_failures = prom.Counter(
            "weather_proxy_analytics_flush_failures_total",
            "Batched writes to the analytics database that failed or timed out.",
            registry=r,
        )
        # Children resolved once: .labels() is a dict lookup plus a lock, too dear per request.
        self.l1_hit = self.batched_counter(self.cache_requests.labels("l1", "hit"))
        self.l1_miss = self.cache_requests.labels("l1", "miss")
        self.l1_stale = self.cache_requests.labels("l1", "stale")
        self.l2_hit = self.cache_requests.labels("l2", "hit")
        self.l2_miss = self.cache_requests.labels("l2", "miss")
        self.l2_stale = self.cache_requests.labels("l2", "stale")
        self.breaker_state.set(0)
        self.redis_up.set(0)
        self.tls_certificate_expiry: prom.Gauge | None = None

    def set_tls_certificate_expiry(self, not_after: float) -> None:
        """The served leaf's notAfter. Made on first use: a pod without TLS has no such series
        (an unset gauge would read 0, a certificate long expired)."""
        if self.tls_certificate_expiry is None:
            self.tls_certificate_expiry = prom.Gauge(
                contract.METRIC_TLS_CERTIFICATE_EXPIRY,
                "notAfter (unix seconds) of the TLS certificate served (listen.tls); the earliest of "
                "the pod's processes.",
                multiprocess_mode="livemin",
                registry=self.registry,
            )
        self.tls_certificate_expiry.set(not_after)

    def set_breaker_state(self, state: str) -> None:
        self.breaker_state.set(BREAKER_STATE_VALUES.get(state, 0))

    def batched_counter(self, child: prom.Counter) -> BatchedCounter:
        """``child`` counted on the hot path, added to the metric at each ``flush``."""
        batched = BatchedCounter(child)
        self._batched.append(batched)
        return batched

    def batched_histogram(self, child: prom.Histogram) -> BatchedHistogram:
        """``child`` (buckets ``LATENCY_BUCKETS``) observed on the hot path, added at each ``flush``."""
        batched = BatchedHistogram(child)
        self._batched.append(batched)
        return batched

    def flush(self) -> None:
        """Add the batched counts to their metrics (each rendering does; the app every second)."""
        for batched in self._batched:
            batched.flush()

    def on_render(self, refresh: Callable[[], None]) -> None:
        """Call ``refresh`` before each rendering (a gauge computed at scrape time)."""
        self._before_render.append(refresh)

    def render(self) -> bytes:
        self.flush()
        for refresh in self._before_render:
            refresh()
        if self.multiprocess_dir is None:
            return prom.generate_latest(self.registry)
        every_process = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(every_process, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return prom.generate_latest(every_process)

    def close(self) -> None:
        """This process is stopping: its live gauges leave the pod's figures (its counters stay)."""
        self.flush()
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]
