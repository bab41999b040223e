"""The real node's log pipeline: every container's lines reach the log store, the proxy's and the operator's.

vlagent tails the kubelet's log files and ships each line, with its pod's name, namespace and
labels, to VictoriaLogs (devcluster/node.py); a JSON line arrives as its fields. A traced
request's lines carry its ``trace_id`` (the overlay's fleet traces what a sampled
``traceparent`` asks for), so an operator goes from a request id to its trace and back.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
import urllib.request
from typing import Any

import pytest

from e2e import cluster as k
from e2e import conftest as fx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KEY_PROPAGATION_BOUND = 120.0  # the overlay's key, projected by the kubelet then reloaded
# A line is in the store this long after it was written, at most (a bound, not a speed).
ARRIVAL_BOUND = 10.0


def logsql(store: str, query: str, limit: int = 100) -> list[dict[str, Any]]:
    """The rows a LogsQL query finds (VictoriaLogs' /select/logsql/query: one JSON object per line)."""
    body = urllib.parse.urlencode({"query": query, "limit": str(limit)}).encode()
    with urllib.request.urlopen(f"{store}/select/logsql/query", data=body, timeout=10) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


@pytest.fixture
def log_store(installed: k.Kube) -> str:
    if installed.log_store is None:
        pytest.skip(f"{installed.name}: no log store in this cluster (the real node runs one)")
    return installed.log_store


def test_a_request_is_found_by_its_id_with_its_trace(
    installed: k.Kube, fleet: str, proxy_url: str, log_store: str
) -> None:
    key = fx.key_of(installed, "developers")  # the overlay's sample key
    headers = {"X-API-Key": key}
    k.eventually(
        lambda: k.http_get(f"{proxy_url}/v1/weather?city=Lyon", headers)[0] == 200,
        KEY_PROPAGATION_BOUND,
        "the key accepted",
    )
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"  # sampled
    status, answer, body = k.http_get(
        f"{proxy_url}/v1/weather?city=pARis", {**headers, "traceparent": traceparent}
    )
    assert status == 200, body
    request_id = answer["X-Request-Id"]
    assert request_id

    rows = k.eventually(
        lambda: logsql(log_store, f'requestId:="{request_id}"'),
        ARRIVAL_BOUND,
        f"the lines of request {request_id} in the log store",
        interval=0.5,
    )
    audit = [row for row in rows if row.get("logger") == "weather_proxy.audit"]
    assert audit, rows
    line = audit[0]
    assert line["trace_id"] == trace_id
    assert len(line["span_id"]) == 16
    assert line["status"] == "200"
    assert line["keyId"] == f"{fx.NAMESPACE}/developers"
    assert line["city"] == "Paris"  # the place found, never the city as typed
    assert "pARis" not in json.dumps(rows)
    assert line["kubernetes.pod_namespace"] == fx.NAMESPACE
    assert line["kubernetes.pod_labels.app.kubernetes.io/instance"] == fleet
    assert key not in json.dumps(rows)
    # The other way: from the trace id to the request's lines.
    by_trace = logsql(log_store, f'trace_id:="{trace_id}"')
    assert {row["requestId"] for row in by_trace} == {request_id}


def test_the_operators_lines_are_in_the_store(installed: k.Kube, fleet: str, log_store: str) -> None:
    rows = k.eventually(
        lambda: logsql(log_store, f'kubernetes.pod_namespace:="{fx.OPERATOR_NAMESPACE}"'),
        ARRIVAL_BOUND,
        "the operator's lines in the log store",
        interval=0.5,
    )
    name = "kubernetes.pod_labels.app.kubernetes.io/name"
    operator = [row for row in rows if row.get(name) == "weather-operator"]
    assert operator, rows[:5]
    assert all(row["kubernetes.container_name"] for row in operator)
    # Its lines about the fleet (the overlay's operator logs plain text: "[weather/paris] ...").
    about = f"{fx.NAMESPACE}/{fleet}"
    found = logsql(log_store, f'kubernetes.pod_namespace:="{fx.OPERATOR_NAMESPACE}" "{about}"')
    assert [row for row in found if f"[{about}]" in row["_msg"]], operator[:5]
