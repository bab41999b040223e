"""The hot path's batched counters and latency histogram render exactly as prometheus-client's own."""

from __future__ import annotations

import prometheus_client as prom

from weather_proxy.observability import metrics as metrics_mod

# On bucket bounds, between them, above the last: where an off-by-one in the bucket index would show.
LATENCIES = [0.0, 0.0004, 0.001, 0.0011, 0.0025, 0.004, 0.05, 0.3, 1.0, 9.9, 10.0, 12.0, 600.0]


def _family(text: str, prefix: str) -> list[str]:
    """The family's samples, without its creation time (the two registries differ there)."""
    return [line for line in text.splitlines() if line.startswith(prefix) and "_created" not in line]


def test_batched_latencies_render_as_observed_ones() -> None:
    direct, batched = metrics_mod.Metrics(), metrics_mod.Metrics()
    histogram = batched.batched_histogram(batched.http_duration.labels("/v1/weather"))
    for seconds in LATENCIES:
        direct.http_duration.labels("/v1/weather").observe(seconds)
        histogram.observe(seconds)
    assert histogram.total > 0  # not added yet
    name = "weather_proxy_http_request_duration_seconds"
    assert _family(batched.render().decode(), name) == _family(direct.render().decode(), name)
    assert histogram.total == 0
    assert not any(histogram.counts)
    histogram.observe(0.002)  # a second flush adds to the first
    direct.http_duration.labels("/v1/weather").observe(0.002)
    assert _family(batched.render().decode(), name) == _family(direct.render().decode(), name)


def test_batched_counters_are_added_at_flush_and_at_every_rendering() -> None:
    metrics = metrics_mod.Metrics()
    child = metrics.http_requests.labels("/v1/weather", "GET", "200")
    counter = metrics.batched_counter(child)
    for _ in range(5):
        counter.inc()
    metrics.l1_hit.inc(3)
    sample = 'weather_proxy_http_requests_total{method="GET",route="/v1/weather",status="200"}'
    assert f"{sample} 0.0" in prom.generate_latest(metrics.registry).decode()  # pending
    metrics.flush()
    assert f"{sample} 5.0" in prom.generate_latest(metrics.registry).decode()
    counter.inc()
    text = metrics.render().decode()
    assert f"{sample} 6.0" in text
    assert 'weather_proxy_cache_requests_total{result="hit",tier="l1"} 3.0' in text
