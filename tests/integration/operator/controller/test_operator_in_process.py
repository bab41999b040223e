"""The whole operator in-process (``kopf.testing.KopfRunner``) against the real kube-apiserver.

The integration suite runs the operator as a subprocess; this runs the same handlers in a
thread of the test process, end to end: login from $KUBECONFIG, startup settings, indexes,
the periodic loop, events. Bounded polls, no timing assertions.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import pathlib
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner

from hack import kubectl as kubectl_
from weather_operator.api import constants
from weather_operator.render import names

pytestmark = pytest.mark.controlplane

BOUND = 30.0


def _keys(kubectl: kubectl_.Kubectl, namespace: str) -> set[str] | None:
    if not kubectl.exists("secret", names.keys_secret_name("paris"), namespace=namespace):
        return None
    secret = kubectl.get("secret", names.keys_secret_name("paris"), namespace=namespace)
    parsed: dict[str, Any] = yaml.safe_load(base64.b64decode(secret["data"][names.KEYS_KEY])) or {}
    return {f"{entry['id']}:{entry['sha256']}" for entry in parsed.get("keys") or []}


def test_fleet_and_keys_end_to_end(
    kubeconfig: pathlib.Path,
    kubectl: kubectl_.Kubectl,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS", "1")
    monkeypatch.setenv("WEATHER_OPERATOR_KEY_RECHECK_SECONDS", "1")
    monkeypatch.setenv("WEATHER_OPERATOR_MONITORING_RECHECK_SECONDS", "1")
    wp = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {"name": "paris", "namespace": namespace},
        "spec": {"environment": "dev"},
    }
    key = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.APIKEY_KIND,
        "metadata": {"name": "team-a", "namespace": namespace},
        "spec": {"proxyRef": {"name": "paris"}, "secretName": "team-a-key"},
    }
    args = ["run", "--standalone", f"--namespace={namespace}", "-m", "weather_operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        kubectl.apply(key)  # before its WeatherProxy: ProxyNotFound, then recovers
        kubectl.apply(wp)

        def key_served() -> str | None:
            if not kubectl.exists("secret", "team-a-key", namespace=namespace):
                return None
            secret = kubectl.get("secret", "team-a-key", namespace=namespace)
            plaintext = base64.b64decode(secret["data"][names.APIKEY_SECRET_KEY]).decode()
            digest = hashlib.sha256(plaintext.encode()).hexdigest()
            return (
                plaintext if f"{namespace}/team-a:{digest}" in (_keys(kubectl, namespace) or set()) else None
            )

        plaintext = kubectl_.wait_until(key_served, timeout=BOUND, interval=0.2, what="the key in keys.yaml")

        def key_ready() -> bool:
            status = kubectl.get("apikey", "team-a", namespace=namespace).get("status") or {}
            return any(c["reason"] == "KeyIssued" for c in status.get("conditions") or [])

        kubectl_.wait_until(key_ready, timeout=BOUND, interval=0.2, what="ApiKey Ready=KeyIssued")

        cm_name = names.config_map_name("paris")
        before = kubectl.get("configmap", cm_name, namespace=namespace)["metadata"]["uid"]
        kubectl.run("delete", "configmap", cm_name, "-n", namespace)
        kubectl_.wait_until(
            lambda: (
                kubectl.exists("configmap", cm_name, namespace=namespace)
                and kubectl.get("configmap", cm_name, namespace=namespace)["metadata"]["uid"] != before
            ),
            timeout=BOUND,
            interval=0.2,
            what="the deleted ConfigMap to be restored",
        )

        kubectl.run("delete", "apikey", "team-a", "-n", namespace)
        kubectl_.wait_until(
            lambda: _keys(kubectl, namespace) == set(), timeout=BOUND, interval=0.2, what="keys.yaml emptied"
        )
        proxy = kubectl.get("wp", "paris", namespace=namespace)
        assert not proxy["metadata"].get("finalizers"), "a WeatherProxy must never get a finalizer"
        assert proxy["status"]["observedGeneration"] == proxy["metadata"]["generation"]
        events = kubectl.get("events", namespace=namespace)["items"]
        reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == "paris"}
        assert {"Applied", "MonitoringSkipped"} <= reasons
        assert plaintext not in str(events)

    assert runner.exception is None
    assert runner.exit_code == 0
    assert "Traceback" not in runner.output, runner.output
    # Whatever the operator's thread left unclosed is reported here, not in a later test.
    gc.collect()
