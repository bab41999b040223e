"""The operator's /metrics on a real control plane: each ApiKey reconciled once, keys per fleet, build info.

This module starts its own operator process, so the counters start at zero here.
"""

from __future__ import annotations

import re

import httpx
import pytest

from hack import operator_process
from tests.integration.operator import fleet

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]


def _metrics(operator: operator_process.OperatorProcess) -> str:
    return httpx.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10).text


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_each_api_key_is_reconciled_once_and_the_fleet_reports_its_keys(
    cluster: fleet.Cluster, operator: operator_process.OperatorProcess
) -> None:
    cluster.apply(fleet.weather_proxy("paris", cluster.namespace))
    cluster.wait(lambda: cluster.key_ids("paris") == set(), "the fleet's empty keys.yaml")
    names = [f"key-{i}" for i in range(5)]
    cluster.apply(*(fleet.api_key(name, cluster.namespace, "paris") for name in names))
    expected = {f"{cluster.namespace}/{name}" for name in names}
    cluster.wait(lambda: cluster.key_ids("paris") == expected, "the five keys in keys.yaml")
    for name in names:
        cluster.wait(
            lambda name=name: (cluster.condition("apikey", name, "Ready") or {}).get("status") == "True",
            f"ApiKey {name} Ready",
        )

    def settled() -> str | None:
        text = _metrics(operator)
        keys = f'weather_operator_api_keys{{namespace="{cluster.namespace}",weatherproxy="paris"}}'
        idle = (
            _value(text, "weather_operator_queue_depth") == 0
            and _value(text, "weather_operator_queue_busy") == 0
        )
        return text if idle and _value(text, keys) == 5 else None

    text = cluster.wait(settled, "the operator's queue to drain with 5 keys counted")
    # Five creates, five reconciles: the operator's own annotation and status writes are no new requests.
    assert _value(text, 'weather_operator_reconciles_total{kind="ApiKey",result="success"}') == 5
    assert _value(text, 'weather_operator_reconciles_total{kind="ApiKey",result="error"}') == 0
    assert _value(text, 'weather_operator_reconciles_total{kind="WeatherProxy",result="success"}') >= 1
    assert 'weather_operator_reconcile_duration_seconds_bucket{kind="ApiKey",le="+Inf"} 5.0' in text
    assert 0 <= _value(text, "weather_operator_last_successful_reconcile_age_seconds") < 60
    assert re.search(
        r'^weather_operator_build_info\{kopf_version="[^"]+",version="[^"]+"\} 1\.0$', text, re.M
    )
    assert _value(text, 'weather_operator_api_requests_total{verb="PATCH"}') > 0
    assert "wpk_" not in text  # never a key
