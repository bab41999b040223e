"""The verdict on a blue/green candidate, from metric samples as its pods expose them.

The samples are the proxy's own exposition: each one rendered by ``weather_proxy``'s metrics
(the registry, names, labels and buckets a pod serves on ``/metrics``) after recording the
requests a scenario says, then parsed as the operator parses a scrape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pytest

from weather_operator import analysis
from weather_operator.api import effective
from weather_proxy.observability import metrics as proxy_metrics

SPEC = effective.AnalysisSpec(
    duration_seconds=60,
    min_requests=50,
    max_error_ratio=0.01,
    max_p95_seconds=0.5,
    smoke_requests_per_second=2,
)
POD_A = "http://10.244.0.17:8080"
POD_B = "http://10.244.0.18:8080"


@dataclasses.dataclass
class Pod:
    """One candidate pod's metrics: requests recorded as the proxy's middleware records them."""

    url: str
    metrics: proxy_metrics.Metrics = dataclasses.field(default_factory=proxy_metrics.Metrics)

    def serve(self, count: int, status: int = 200, seconds: float = 0.02, route: str = "/v1/weather") -> Pod:
        for _ in range(count):
            self.metrics.http_requests.labels(route, "GET", str(status)).inc()
            self.metrics.http_duration.labels(route).observe(seconds)
        return self

    def scrape(self) -> analysis.Sample:
        return analysis.parse_sample(self.url, self.metrics.render().decode())


def samples(pods: Iterable[Pod]) -> list[analysis.Sample]:
    return [pod.scrape() for pod in pods]


def judge(
    before: list[analysis.Sample], after: list[analysis.Sample], elapsed: float = 60
) -> analysis.Verdict:
    return analysis.decide(SPEC, before, after, elapsed)


def test_a_scrape_counts_the_api_routes_and_their_5xx_only() -> None:
    pod = Pod(POD_A).serve(7).serve(2, status=503).serve(3, status=404)
    pod.serve(40, route="/health/ready").serve(5, route="/metrics").serve(4, status=500, route="other")
    pod.serve(2, route="/weather").serve(1, route="/v1/usage")
    sample = pod.scrape()
    assert (sample.requests, sample.errors) == (15, 2)
    assert dict(sample.buckets)[float("inf")] == 15
    assert sample.reachable


def test_a_page_that_is_no_exposition_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^not a Prometheus exposition: "):
        analysis.parse_sample(POD_A, "<html>502 Bad Gateway</html> here")


def test_a_healthy_candidate_passes_on_enough_requests() -> None:
    a, b = Pod(POD_A).serve(10), Pod(POD_B).serve(3)
    before = samples([a, b])
    a.serve(40, seconds=0.02)
    b.serve(30, seconds=0.03).serve(5, status=404)  # a consumer's mistake is no error of the candidate
    verdict = judge(before, samples([a, b]))
    assert verdict.passed is True, verdict.message
    assert verdict.requests == 75
    assert verdict.error_ratio == 0
    assert verdict.p95_seconds is not None
    assert 0.025 < verdict.p95_seconds <= 0.05  # in the bucket (0.025, 0.05]: the 30 at 0.03 s
    assert verdict.message.startswith("passed: 75 requests")


def test_nothing_is_decided_before_the_duration() -> None:
    a = Pod(POD_A)
    before = samples([a])
    a.serve(100, status=500)
    verdict = judge(before, samples([a]), elapsed=59.5)
    assert verdict.passed is None
    assert verdict.requests == 100
    assert verdict.error_ratio == 1.0
    assert verdict.message.startswith("analysing: 59 s of 60 s, 100 requests, error ratio 1.0000")


def test_an_error_ratio_above_the_bound_fails() -> None:
    a = Pod(POD_A)
    before = samples([a])
    a.serve(97).serve(2, status=502).serve(1, status=503)
    verdict = judge(before, samples([a]))
    assert verdict.passed is False
    assert verdict.error_ratio == pytest.approx(0.03)
    assert "error ratio 0.0300 above maxErrorRatio 0.01 (3 of 100 requests answered 5xx)" in verdict.message


def test_an_error_ratio_at_the_bound_passes() -> None:
    a = Pod(POD_A)
    before = samples([a])
    a.serve(99).serve(1, status=500)
    assert judge(before, samples([a])).passed is True


def test_a_p95_above_the_bound_fails() -> None:
    a = Pod(POD_A)
    before = samples([a])
    a.serve(90, seconds=0.02).serve(10, seconds=0.8)  # the slowest tenth: p95 in (0.5, 1.0]
    verdict = judge(before, samples([a]))
    assert verdict.passed is False
    assert verdict.p95_seconds == pytest.approx(0.75)  # 0.5 + 0.5 x (95 - 90) / 10, as histogram_quantile
    assert "p95 latency 0.750 s above maxP95Seconds 0.5" in verdict.message


def test_too_few_requests_fail_however_good_they_are() -> None:
    a = Pod(POD_A).serve(500)
    before = samples([a])
    a.serve(49)
    verdict = judge(before, samples([a]))
    assert verdict.passed is False
    assert verdict.message == "too few requests: 49 in 60 s, minRequests is 50"


def test_no_data_never_passes() -> None:
    idle = Pod(POD_A)
    verdict = judge(samples([idle]), samples([idle]))
    assert (verdict.passed, verdict.requests, verdict.error_ratio, verdict.p95_seconds) == (
        False,
        0,
        None,
        None,
    )
    assert analysis.decide(SPEC, [], [], 60).passed is False  # no pod at all
    lenient = SPEC.model_copy(update={"min_requests": 1})
    counted_only = analysis.Sample(POD_A, requests=5)  # a counter without its histogram: no latency figures
    verdict = analysis.decide(lenient, [analysis.Sample(POD_A)], [counted_only], 60)
    assert verdict.passed is False
    assert verdict.message == "no latency figures for 5 requests"


def test_metrics_unreachable_at_the_end_fail_and_before_it_wait() -> None:
    a, b = Pod(POD_A), Pod(POD_B)
    before = samples([a, b])
    a.serve(100)
    gone = analysis.unreachable(POD_B, "ConnectError: [Errno 111] Connection refused")
    during = judge(before, [a.scrape(), gone], elapsed=30)
    assert during.passed is None
    assert "metrics unreachable: http://10.244.0.18:8080: ConnectError" in during.message
    verdict = judge(before, [a.scrape(), gone])
    assert verdict.passed is False
    assert verdict.message.startswith("metrics of 1 of 2 candidate pods unreachable: http://10.244.0.18:8080")


def test_a_restarted_pod_counts_from_zero_again() -> None:
    """Its counters went down between the scrapes: its latest values are all it answered since."""
    a, b = Pod(POD_A).serve(1000, status=500), Pod(POD_B).serve(200)
    before = samples([a, b])
    restarted = Pod(POD_A).serve(30)  # the process started again: 30 requests since, all fine
    b.serve(30)
    verdict = judge(before, [restarted.scrape(), b.scrape()])
    assert verdict.requests == 60
    assert verdict.error_ratio == 0  # the 1,000 errors before the restart are not the window's
    assert verdict.passed is True


def test_a_restart_seen_in_the_latency_buckets_alone_counts_too() -> None:
    before = analysis.Sample(POD_A, 100, 0, ((0.1, 100.0), (float("inf"), 100.0)))
    after = analysis.Sample(POD_A, 160, 0, ((0.1, 40.0), (float("inf"), 160.0)))  # fewer fast ones: a restart
    verdict = analysis.decide(SPEC, [before], [after], 60)
    assert verdict.requests == 160


def test_a_pod_whose_baseline_was_unreadable_counts_from_zero() -> None:
    a = Pod(POD_A).serve(60)
    verdict = judge([analysis.unreachable(POD_A, "ReadTimeout: ")], samples([a]))
    assert (verdict.passed, verdict.requests) == (True, 60)


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        (((0.1, 50.0), (0.5, 100.0), (float("inf"), 100.0)), 0.1 + 0.4 * 45 / 50),
        (((0.1, 100.0), (float("inf"), 100.0)), 0.095),  # within the first bucket, from 0
        (((0.1, 10.0), (10.0, 20.0), (float("inf"), 100.0)), 10.0),  # in +Inf: the highest finite bound
        (((0.1, 0.0), (float("inf"), 0.0)), None),
        ((), None),
    ],
)
def test_the_quantile_is_prometheus_histogram_quantile(
    buckets: tuple[tuple[float, float], ...], expected: float | None
) -> None:
    found = analysis.quantile(0.95, buckets)
    assert found == (pytest.approx(expected) if expected is not None else None)


def test_smoke_requests_alternate_a_city_and_coordinates_no_cache_holds() -> None:
    queries = [analysis.smoke_query(n) for n in range(6)]
    assert [q.get("city") for q in queries[::2]] == ["Paris", "London", "Berlin"]
    coordinates = queries[1::2]
    assert all(set(q) == {"lat", "lon"} for q in coordinates)
    assert all(-60 <= float(q["lat"]) <= 70 and -180 <= float(q["lon"]) <= 180 for q in coordinates)
    assert len({(q["lat"], q["lon"]) for q in coordinates}) == 3


def test_https_targets_need_the_name_their_certificate_has() -> None:
    with pytest.raises(ValueError, match="server_name: needed for https targets"):
        analysis.Analysis(SPEC, [analysis.Target("https://10.0.0.2:8443")], smoke_key="k", tls_ca=None)
    assert analysis.tls_server_name("weather", "prod") == "weather.prod.svc"
