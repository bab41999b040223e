"""The benchmark's own arithmetic: wrk report parsing, the Zipf workload, the ideal call count."""

from __future__ import annotations

import collections

import pytest

from bench import wrk, zipf

WRK_REPORT = """\
Running 5s test @ http://127.0.0.1:1/v1/weather?city=Paris
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    17.20ms   10.01ms 120.00ms   90.00%
  Latency Distribution
     50%   17.20ms
     75%   20.00ms
     90%   30.00ms
     99%  990.00us
  10965 requests in 5.00s, 6.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   2193.00
Transfer/sec:      1.20MB
"""


def test_wrk_report_is_parsed() -> None:
    result = wrk.parse(WRK_REPORT)
    assert result.requests_per_second == 2193.0
    assert result.p50_ms == pytest.approx(17.2)
    assert result.p99_ms == pytest.approx(0.99)
    assert (result.requests, result.non_2xx, result.errors) == (10965, 7, 3)


def test_zipf_workload_is_deterministic_and_skewed() -> None:
    first = zipf.workload(5000)
    assert first == zipf.workload(5000)
    counts = collections.Counter(first).most_common()
    assert counts[0][0] == "benchcity-0000"
    assert counts[0][1] > 10 * counts[-1][1]


def test_ideal_windows_count_one_call_per_city_per_ttl() -> None:
    log = [(0.0, "a"), (1.0, "a"), (2.0, "b"), (10.0, "a"), (10.5, "a"), (12.0, "b"), (19.9, "a")]
    assert zipf.ideal_windows(log, ttl=10) == 4  # a@0, b@2, a@10, b@12
    assert zipf.ideal_windows(log, ttl=100) == 2
