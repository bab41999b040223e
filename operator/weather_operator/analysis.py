"""The analysis of a blue/green candidate: its pods' own metrics, with smoke requests of its own.

A candidate slot is judged from what its pods say about themselves: each pod's ``/metrics``
(the one port that serves the API, the probes and the metrics) is scraped once when the
analysis starts (the baseline) and again at each step; the difference is what the candidate
answered meanwhile. Counted are the API routes (``/v1/...`` and ``/weather``), not probes,
metrics or docs: the number of requests, the errors among them (5xx; a 4xx is the client's)
and the p95 latency from the request-duration histogram's buckets, interpolated within a
bucket as Prometheus's ``histogram_quantile`` does.

So that there is something to judge when no consumer calls the preview, the analysis sends
requests of its own at ``smokeRequestsPerSecond``, spread over the pods, with the fleet's smoke
key (a probe key: never limited, never counted as usage; its requests count in these metrics).
They alternate ``GET /v1/weather?city=...`` (well-known cities in turn: what consumers ask, often
answered from the cache) and ``GET /v1/weather?lat=...&lon=...`` at coordinates drawn at random,
which no cache holds: the slots share Redis, and a candidate whose upstream fails would
otherwise pass on answers the active slot cached (served stale on error for
``cache.staleTtlSeconds``). Those cost one upstream call each: ``smokeRequestsPerSecond`` / 2.

``decide`` is pure: the verdict from two sets of samples and the time elapsed. It passes only
on data: at least ``minRequests`` requests over ``durationSeconds``, an error ratio within
``maxErrorRatio``, a p95 within ``maxP95Seconds``, and every pod's metrics read at the end.
A pod whose counters went down between the two scrapes restarted: its counts start again
from zero, so its latest values are its requests since (as Prometheus's ``increase`` reads a
counter reset). A pod whose baseline could not be read counts from zero too: it is a new pod.

Docs: docs/rollouts.md.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import math
import secrets
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import httpx
from prometheus_client import parser

from weather_operator.render import names
from weather_proxy import contract

log = logging.getLogger(__name__)

QUANTILE = 0.95
SMOKE_PATH = "/v1/weather"
# Cities every geocoder knows (the Open-Meteo emulator's table has them too), asked in turn.
SMOKE_CITIES = (
    "Paris",
    "London",
    "Berlin",
    "Tokyo",
    "New York",
    "Madrid",
    "Rome",
    "Amsterdam",
    "Vienna",
    "Zurich",
    "Stockholm",
    "Lisbon",
)
SCRAPE_TIMEOUT_SECONDS = 5.0
SMOKE_TIMEOUT_SECONDS = 10.0
# Smoke requests in flight at once: a candidate that hangs does not pile up the operator's tasks.
MAX_SMOKE_IN_FLIGHT = 20
USER_AGENT = "weather-operator-analysis"
# httpx logs every request at INFO, its URL included: the scrapes and smoke requests of an analysis
# would fill the operator's log with a few lines a second.
QUIET_LOGGERS = ("httpx", "httpcore")

_REQUESTS_SAMPLE = contract.METRIC_HTTP_REQUESTS_TOTAL
_BUCKET_SAMPLE = contract.METRIC_HTTP_REQUEST_DURATION + "_bucket"


class AnalysisSettings(Protocol):
    """What the analysis reads of ``spec.strategy.blueGreen.analysis`` (the API's ``AnalysisSpec``)."""

    @property
    def duration_seconds(self) -> float: ...
    @property
    def min_requests(self) -> int: ...
    @property
    def max_error_ratio(self) -> float: ...
    @property
    def max_p95_seconds(self) -> float: ...
    @property
    def smoke_requests_per_second(self) -> float: ...


@dataclasses.dataclass(frozen=True)
class Target:
    """One candidate pod: the base URL of its serving port, e.g. ``http://10.244.0.17:8080``."""

    url: str


@dataclasses.dataclass(frozen=True)
class Sample:
    """One scrape of one pod: its API requests so far, the 5xx among them, the latency buckets."""

    target: str
    requests: float = 0.0
    errors: float = 0.0
    # (upper bound ``le``, cumulative count), ascending, summed over the API routes; +Inf last.
    buckets: tuple[tuple[float, float], ...] = ()
    # The scrape failed, and why (its numbers are then meaningless); None when it was read.
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None


@dataclasses.dataclass(frozen=True)
class Verdict:
    """passed: True (promote), False (abort), None (not decided yet: keep analysing)."""

    passed: bool | None
    requests: int
    error_ratio: float | None
    p95_seconds: float | None
    message: str


def counted_route(route: str) -> bool:
    """The routes an analysis judges: the API's (``/v1/...`` and the ``/weather`` alias)."""
    return route.startswith("/v1/") or route == "/weather"


def parse_sample(target: str, text: str) -> Sample:
    """A ``Sample`` of a pod's ``/metrics`` text (Prometheus exposition format); ValueError if unreadable."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    try:
        # The parser's own words for a bad line differ from one prometheus-client version to the next.
        families = list(parser.text_string_to_metric_families(text))
    except ValueError as exc:
        raise ValueError(f"not a Prometheus exposition: {exc}") from exc
    for family in families:
        for sample in family.samples:
            route = sample.labels.get("route", "")
            if not counted_route(route):
                continue
            if sample.name == _REQUESTS_SAMPLE:
                requests += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    errors += sample.value
            elif sample.name == _BUCKET_SAMPLE:
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return Sample(target, requests, errors, tuple(sorted(buckets.items())))


def unreachable(target: str, why: str) -> Sample:
    return Sample(target, error=why)


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """``histogram_quantile(q, ...)`` of cumulative buckets (ascending ``le``, +Inf last); None: no data.

    Linear within the bucket holding the rank; in the +Inf bucket, the highest finite bound.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    counts = [count for _, count in buckets]
    index = bisect.bisect_left(counts, rank)
    bound, count = buckets[index]
    if math.isinf(bound):
        return buckets[index - 1][0] if index > 0 else None
    lower, below = buckets[index - 1] if index > 0 else (0.0, 0.0)
    if count == below:
        return bound
    return lower + (bound - lower) * (rank - below) / (count - below)


def _restarted(before: Sample, after: Sample) -> bool:
    """A counter of the pod went down: the process started again (its counts restarted at zero)."""
    if after.requests < before.requests or after.errors < before.errors:
        return True
    earlier = dict(before.buckets)
    return any(count < earlier.get(bound, 0.0) for bound, count in after.buckets)


def _increase(before: Sample | None, after: Sample) -> tuple[float, float, dict[float, float]]:
    """(requests, errors, cumulative buckets) the pod answered between two scrapes."""
    if before is None or not before.reachable or _restarted(before, after):
        return after.requests, after.errors, dict(after.buckets)
    earlier = dict(before.buckets)
    buckets = {bound: count - earlier.get(bound, 0.0) for bound, count in after.buckets}
    return after.requests - before.requests, after.errors - before.errors, buckets


def decide(
    spec: AnalysisSettings, baseline: Iterable[Sample], latest: Iterable[Sample], elapsed: float
) -> Verdict:
    """The verdict on the candidate from each pod's scrape at the start and now, ``elapsed`` s apart.

    Undecided (None) until ``durationSeconds`` have passed; then passed only when every pod's
    metrics were read, at least ``minRequests`` requests came, and the error ratio and p95 are
    within their bounds.
    """
    before = {sample.target: sample for sample in baseline}
    now = list(latest)
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    missing = [sample for sample in now if not sample.reachable]
    for sample in now:
        if not sample.reachable:
            continue
        more, failed, counts = _increase(before.get(sample.target), sample)
        requests += more
        errors += failed
        for bound, count in counts.items():
            buckets[bound] = buckets.get(bound, 0.0) + count
    count = round(requests)
    ratio = errors / requests if requests > 0 else None
    p95 = quantile(QUANTILE, sorted(buckets.items()))
    figures = _figures(count, ratio, p95)

    def verdict(passed: bool | None, message: str) -> Verdict:
        return Verdict(passed, count, ratio, p95, message)

    duration = spec.duration_seconds
    unread = "; ".join(f"{sample.target}: {sample.error}" for sample in missing)
    if elapsed < duration:
        note = f"; metrics unreachable: {unread}" if missing else ""
        return verdict(None, f"analysing: {int(elapsed)} s of {duration:g} s, {figures}{note}")
    if not now:
        return verdict(False, "no candidate pod to analyse")
    if missing:
        return verdict(False, f"metrics of {len(missing)} of {len(now)} candidate pods unreachable: {unread}")
    if count < spec.min_requests:
        return verdict(
            False, f"too few requests: {count} in {elapsed:.0f} s, minRequests is {spec.min_requests}"
        )
    if ratio is not None and ratio > spec.max_error_ratio:
        return verdict(
            False,
            f"error ratio {ratio:.4f} above maxErrorRatio {spec.max_error_ratio:g} "
            f"({round(errors)} of {count} requests answered 5xx)",
        )
    if p95 is None:
        return verdict(False, f"no latency figures for {count} requests")
    if p95 > spec.max_p95_seconds:
        return verdict(False, f"p95 latency {p95:.3f} s above maxP95Seconds {spec.max_p95_seconds:g}")
    return verdict(True, f"passed: {figures}")


def _figures(count: int, ratio: float | None, p95: float | None) -> str:
    parts = [f"{count} requests"]
    if ratio is not None:
        parts.append(f"error ratio {ratio:.4f}")
    if p95 is not None:
        parts.append(f"p95 {p95:.3f} s")
    return ", ".join(parts)


def tls_server_name(fleet: str, namespace: str) -> str:
    """The name to check on a candidate pod's certificate: ``<fleet>.<ns>.svc``.

    The proxies' leaf names the fleet's Service (``render.tls.proxy_dns_names``), never a pod or
    its IP, and every pod of either slot serves the same leaf.
    """
    return names.service_dns_names(names.service_name(fleet), namespace)[2]


class Analysis:
    """One rollout's analysis: a baseline scrape, the smoke requests, a scrape and a verdict per step.

    The reconciler keeps it (in the fleet's memory) from the candidate's readiness to its verdict,
    calls ``step`` every few seconds, and ``aclose`` when the rollout ends, whatever the verdict.
    Once decided, ``step`` returns the same verdict and the smoke requests stop.
    """

    def __init__(
        self,
        spec: AnalysisSettings,
        targets: Sequence[Target],
        *,
        smoke_key: str,
        tls_ca: bytes | None,
        server_name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        client: httpx.AsyncClient | None = None,
        cities: Sequence[str] = SMOKE_CITIES,
    ) -> None:
        if server_name is None and any(target.url.startswith("https:") for target in targets):
            raise ValueError(
                "server_name: needed for https targets (the pods' certificate names the Service, "
                "not a pod: analysis.tls_server_name)"
            )
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))
        self.spec = spec
        self.targets = list(targets)
        self.clock = clock
        self.cities = list(cities) or list(SMOKE_CITIES)
        self._smoke_key = smoke_key
        self._extensions: dict[str, object] = {"sni_hostname": server_name} if server_name else {}
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            verify=_trust(tls_ca), trust_env=False, headers={"User-Agent": USER_AGENT}
        )
        self._started: float | None = None
        self._baseline: list[Sample] = []
        self._smoke: asyncio.Task[None] | None = None
        self._verdict: Verdict | None = None
        # The smoke requests sent, and those that failed (no answer, or a 5xx): for messages and tests.
        self.smoke_sent = 0
        self.smoke_failed = 0

    async def start(self) -> None:
        """Scrape every pod for the baseline and start the smoke requests."""
        self._baseline = await self.scrape()
        self._started = self.clock()
        if self.spec.smoke_requests_per_second > 0 and self.targets:
            self._smoke = asyncio.create_task(self._send_smoke(), name="analysis smoke requests")

    async def step(self) -> Verdict:
        """Scrape every pod again and judge the candidate (None until ``durationSeconds`` have passed)."""
        if self._verdict is not None:
            return self._verdict
        if self._started is None:
            raise RuntimeError("Analysis.step before start")
        latest = await self.scrape()
        verdict = decide(self.spec, self._baseline, latest, self.clock() - self._started)
        if verdict.passed is not None:
            self._verdict = verdict
            await self._stop_smoke()
        return verdict

    async def aclose(self) -> None:
        """Stop the smoke requests (and close the HTTP client when it is the analysis's own)."""
        await self._stop_smoke()
        if self._own_client:
            await self._client.aclose()

    async def scrape(self) -> list[Sample]:
        """Every pod's ``/metrics``, read at once."""
        return list(await asyncio.gather(*(self._scrape(target) for target in self.targets)))

    async def _scrape(self, target: Target) -> Sample:
        try:
            response = await self._client.get(
                f"{target.url}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS, extensions=self._extensions
            )
        except httpx.HTTPError as exc:
            return unreachable(target.url, f"{type(exc).__name__}: {exc}"[:200])
        if response.status_code != 200:
            return unreachable(target.url, f"/metrics answered {response.status_code}")
        try:
            return parse_sample(target.url, response.text)
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # what the text parser raises
            return unreachable(target.url, f"unreadable metrics: {exc}"[:200])

    async def _send_smoke(self) -> None:
        """``smokeRequestsPerSecond`` requests, the pods in turn, each one a city or random coordinates."""
        interval = 1.0 / self.spec.smoke_requests_per_second
        in_flight: set[asyncio.Task[None]] = set()
        sent = 0
        try:
            while True:
                if len(in_flight) < MAX_SMOKE_IN_FLIGHT:
                    rounds, index = divmod(sent, len(self.targets))  # each pod gets cities and coordinates
                    query = smoke_query(rounds, self.cities)
                    task = asyncio.create_task(self._smoke_request(self.targets[index], query))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    sent += 1
                await asyncio.sleep(interval)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _smoke_request(self, target: Target, query: dict[str, str]) -> None:
        self.smoke_sent += 1
        try:
            response = await self._client.get(
                f"{target.url}{SMOKE_PATH}",
                params=query,
                headers={"X-API-Key": self._smoke_key},
                timeout=SMOKE_TIMEOUT_SECONDS,
                extensions=self._extensions,
            )
        except httpx.HTTPError as exc:
            self.smoke_failed += 1
            log.debug("smoke request to %s failed: %s", target.url, type(exc).__name__)
            return
        if response.status_code >= 500:
            self.smoke_failed += 1

    async def _stop_smoke(self) -> None:
        task, self._smoke = self._smoke, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def smoke_query(n: int, cities: Sequence[str] = SMOKE_CITIES) -> dict[str, str]:
    """The query of the ``n``-th smoke request: a city (even ``n``), else coordinates no cache holds."""
    if n % 2 == 0:
        return {"city": cities[(n // 2) % len(cities)]}
    # Anywhere between 60 S and 70 N, to the 0.01 degree the cache keys by: 13,000 x 36,000 places.
    latitude = (secrets.randbelow(13_001) - 6_000) / 100
    longitude = (secrets.randbelow(36_001) - 18_000) / 100
    return {"lat": f"{latitude:.2f}", "lon": f"{longitude:.2f}"}


def _trust(ca_pem: bytes | None) -> ssl.SSLContext | bool:
    """Verify the pods' certificates against the fleet's CA; the system's trust store without one."""
    if ca_pem is None:
        return True
    return ssl.create_default_context(cadata=ca_pem.decode("ascii"))
