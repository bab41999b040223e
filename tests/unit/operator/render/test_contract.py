"""The operator-proxy contract: what the operator renders is what the proxy reads, serves and exports.

Both sides take these values from ``weather_proxy.contract``; these tests hold the rendered
objects against the proxy's own code (its routes, its settings, its metrics, its key hash),
so a value changed on one side only fails here.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import prometheus_client.metrics
import pytest

from tests.unit.operator.render import cases
from weather_operator import keys
from weather_operator.api import resolve, weatherproxy
from weather_operator.render import configmap, deployment, names, prometheusrule, servicemonitor
from weather_proxy import config, contract, cpus, settings
from weather_proxy.auth import keys as proxy_keys
from weather_proxy.observability import metrics
from weather_proxy.routes import health

SPEC = resolve.effective(
    weatherproxy.WeatherProxySpec.model_validate({"environment": "production"}), cases.DEFAULT_IMAGE
)


def _pod(spec: Any = SPEC) -> dict[str, Any]:
    rendered = deployment.render(cases.NAME, cases.NAMESPACE, spec, config_hash="0" * 16)
    return rendered["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _served_paths() -> set[str]:
    return {route.path for route in health.router.routes}  # type: ignore[attr-defined]


@pytest.mark.parametrize("environment", ["dev", "production"])
def test_the_kubelet_probes_paths_the_proxy_serves_on_the_port_it_listens_on(environment: str) -> None:
    spec = resolve.effective(
        weatherproxy.WeatherProxySpec.model_validate({"environment": environment}), cases.DEFAULT_IMAGE
    )
    [container] = _pod(spec)["containers"]
    probes = [container[p]["httpGet"] for p in ("startupProbe", "livenessProbe", "readinessProbe")]
    probed = {probe["path"] for probe in probes}
    assert probed == {contract.LIVENESS_PATH, contract.READINESS_PATH}
    assert probed <= _served_paths()
    [port] = container["ports"]
    assert {probe["port"] for probe in probes} == {port["name"]}
    listen = configmap.proxy_config(cases.NAME, spec).listen
    assert port["containerPort"] == listen.port
    if environment == "dev":  # TLS Off: plain HTTP on the proxy's default port
        assert listen.port == config.Listen().port == contract.HTTP_PORT
        assert listen.tls is None
    else:  # TLS Managed: HTTPS from the mounted Secret
        assert {probe.get("scheme") for probe in probes} == {"HTTPS"}
        assert listen.tls is not None
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert str(pathlib.PurePosixPath(listen.tls.cert_file).parent) in mounts


def test_prometheus_scrapes_the_path_the_proxy_serves() -> None:
    monitor = servicemonitor.render(cases.NAME, cases.NAMESPACE, SPEC.monitoring.service_monitor)
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == contract.METRICS_PATH
    assert contract.METRICS_PATH in _served_paths()


def test_config_and_keys_are_mounted_where_the_proxy_reads_them() -> None:
    pod = _pod()
    [container] = pod["containers"]
    assert container["command"][-2:] == ["--config", contract.CONFIG_PATH]
    assert str(config.DEFAULT_CONFIG_PATH) == contract.CONFIG_PATH
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert (mounts["config"], mounts["keys"]) == (contract.CONFIG_DIR, contract.KEYS_DIR)
    assert names.CONFIG_KEY == contract.CONFIG_FILE
    auth = configmap.proxy_config(cases.NAME, SPEC).auth
    assert auth.keys_file == contract.KEYS_PATH == str(config.DEFAULT_KEYS_PATH)
    assert auth.kubernetes is not None
    assert auth.kubernetes.key == contract.KEYS_FILE == config.KubernetesKeys(secret_names=["x"]).key
    assert mounts["kube-api-access"] == contract.SERVICE_ACCOUNT_DIR
    assert config.KubernetesKeys(secret_names=["x"]).token_file.startswith(contract.SERVICE_ACCOUNT_DIR)


@pytest.mark.parametrize(
    "redis", [None, {"mode": "External", "external": {"urlSecretRef": {"name": "r", "key": "u"}}}]
)
def test_the_rendered_env_is_what_the_proxy_settings_read(redis: dict[str, Any] | None) -> None:
    spec = resolve.effective(
        weatherproxy.WeatherProxySpec.model_validate({"environment": "production", "redis": redis})
    )
    [container] = _pod(spec)["containers"]
    rendered = {e["name"] for e in container["env"]}
    read = {
        settings.ENV_REDIS_URL,
        settings.ENV_REDIS_PASSWORD,
        settings.ENV_ANALYTICS_URL,
        settings.ENV_ANALYTICS_PASSWORD,
        cpus.ENV_CPU_REQUEST,
    }
    assert rendered <= read
    redis_env = {contract.ENV_REDIS_PASSWORD} if redis is None else {contract.ENV_REDIS_URL}
    # Production keeps a usage history in a managed database: its password comes from env too.
    assert rendered == redis_env | {contract.ENV_ANALYTICS_PASSWORD, contract.ENV_CPU_REQUEST_MILLICORES}
    # The workers' default: the container's CPU request in millicores, as the proxy parses it.
    [cpu] = [e for e in container["env"] if e["name"] == cpus.ENV_CPU_REQUEST]
    assert cpu["valueFrom"]["resourceFieldRef"] == {
        "containerName": deployment.CONTAINER_NAME,
        "resource": "requests.cpu",
        "divisor": "1m",
    }
    environ = {e["name"]: "redis://from-env:6379/0" for e in container["env"] if "REDIS" in e["name"]}
    cfg = settings.with_env(configmap.proxy_config(cases.NAME, spec), environ)
    if redis is not None:
        assert cfg.redis is not None
        assert cfg.redis.url == "redis://from-env:6379/0"
    else:
        assert settings.redis_password(environ) == "redis://from-env:6379/0"


def test_keys_yaml_holds_the_hash_the_proxy_compares() -> None:
    plaintext = keys.generate_key()
    assert keys.sha256_hex(plaintext) == proxy_keys.hash_key(plaintext) == contract.key_sha256(plaintext)
    assert keys.SECRET_KEY == names.APIKEY_SECRET_KEY == contract.APIKEY_SECRET_KEY


def _exported() -> set[str]:
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    found: set[str] = set()
    exported = metrics.Metrics()
    exported.set_tls_certificate_expiry(0.0)  # the certificate's expiry: exported by pods serving TLS
    for collector in vars(exported).values():
        if isinstance(collector, prometheus_client.metrics.MetricWrapperBase):
            found |= {collector._name + s for s in suffixes[str(collector._type)]}
    return found


def test_every_series_the_alerts_query_is_exported_by_the_proxy() -> None:
    rule = prometheusrule.render(cases.NAME, cases.NAMESPACE, SPEC.monitoring.alerts)
    exprs = " ".join(r["expr"] for group in rule["spec"]["groups"] for r in group["rules"])
    queried = set(re.findall(r"\bweather_proxy_\w+", exprs))
    assert queried
    assert queried <= _exported()
    breaker = next(r for g in rule["spec"]["groups"] for r in g["rules"] if "Breaker" in r.get("alert", ""))
    assert breaker["expr"].endswith(f">= {metrics.BREAKER_STATE_VALUES['open']}")
