"""spec.tls in the rendered fleet: each mode's listeners, the internal hops, the proxies' NetworkPolicy."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest
import yaml

from tests.unit.operator.render import cases
from weather_operator import status
from weather_operator.api import constants, effective, resolve, weatherproxy
from weather_operator.render import fleet, names, postgres, tls
from weather_proxy import config

PRINTS = tls.Fingerprints(proxy="a" * 64, redis="b" * 64, postgres="c" * 64)


def _render(
    case: str = "staging", *, cert_manager: bool = False, cnpg: bool = False, **overrides: Any
) -> fleet.Fleet:
    inputs = dataclasses.replace(
        cases.inputs(case, **overrides),
        tls_fingerprints=PRINTS,
        cert_manager_available=cert_manager,
        cnpg_available=cnpg,
    )
    return fleet.render_fleet(inputs)


def _one(result: fleet.Fleet, kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in result.objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _pod(result: fleet.Fleet, kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = _one(result, kind, name)["spec"]["template"]
    return spec


def _config(result: fleet.Fleet) -> config.ProxyConfig:
    text = _one(result, "ConfigMap", names.config_map_name(cases.NAME))["data"]["config.yaml"]
    return config.ProxyConfig.model_validate(yaml.safe_load(text))


def test_off_in_dev_serves_plain_http_and_no_certificate_secret_is_wanted() -> None:
    result = _render("dev")
    cfg = _config(result)
    assert cfg.listen.port == names.HTTP_PORT
    assert cfg.listen.tls is None
    assert cfg.redis.url.startswith("redis://")
    template = _pod(result, "Deployment", cases.NAME)
    assert constants.TLS_FINGERPRINT_ANNOTATION not in template["metadata"]["annotations"]
    secrets = {r.name for r in result.unwanted if r.kind == "Secret"}
    assert {"paris-tls-ca", "paris-tls", "paris-redis-tls", "paris-postgres-tls"} <= secrets


@pytest.mark.parametrize(("server", "rolled"), [("uvicorn", False), ("granian", True)])
def test_only_a_server_that_cannot_reload_is_rolled_by_the_certificates_fingerprint(
    server: str, rolled: bool
) -> None:
    annotations = _pod(_render(server=server), "Deployment", cases.NAME)["metadata"]["annotations"]
    assert (annotations.get(constants.TLS_FINGERPRINT_ANNOTATION) == PRINTS.proxy) is rolled
    assert (constants.TLS_FINGERPRINT_ANNOTATION in annotations) is rolled


def test_managed_redis_serves_tls_only_from_its_leaf_and_restarts_on_a_new_one() -> None:
    result = _render()
    template = _pod(result, "StatefulSet", names.redis_name(cases.NAME))
    assert template["metadata"]["annotations"] == {constants.TLS_FINGERPRINT_ANNOTATION: PRINTS.redis}
    [container] = template["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--port") + 1] == "0"
    assert args[args.index("--tls-port") + 1] == "6379"
    assert args[args.index("--tls-auth-clients") + 1] == "no"
    probe = container["readinessProbe"]["exec"]["command"][-1]
    assert probe == "redis-cli --tls --cacert /tls/ca.crt ping | grep -q PONG"
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == names.redis_tls_secret_name(cases.NAME)
    cfg = _config(result)
    assert cfg.redis.url == "rediss://paris-redis:6379/0"
    assert cfg.redis.tls is not None
    assert cfg.redis.tls.ca_file == "/etc/weather-proxy/internal-ca/ca.crt"


def test_postgres_ssl_in_both_forms_and_the_erasure_job_verifies_it() -> None:
    statefulset = _pod(_render(), "StatefulSet", names.postgres_name(cases.NAME))
    [container] = statefulset["spec"]["containers"]
    assert "-c ssl=on" in container["command"][-1]
    assert statefulset["metadata"]["annotations"] == {constants.TLS_FINGERPRINT_ANNOTATION: PRINTS.postgres}
    cluster = _one(_render(cnpg=True), postgres.CNPG_KIND, names.cnpg_cluster_name(cases.NAME))
    assert cluster["spec"]["certificates"] == {
        "serverTLSSecret": "paris-postgres-tls",
        "serverCASecret": "paris-tls-ca",
    }
    database = _config(_render()).analytics
    assert database is not None
    assert database.database.tls is not None
    spec = cases.inputs("staging").spec
    job = postgres.render_erase_job(
        cases.NAME, cases.NAMESPACE, "weather/a", "uid", "proxy:1", spec.analytics, internal_tls=True
    )
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert names.INTERNAL_CA_DIR in mounts
    assert {"key": "ca.crt", "path": "ca.crt"} in pod["volumes"][-1]["secret"]["items"]


def test_the_ca_key_is_never_mounted() -> None:
    result = _render()
    for kind, name in (
        ("Deployment", cases.NAME),
        ("StatefulSet", names.redis_name(cases.NAME)),
        ("StatefulSet", names.postgres_name(cases.NAME)),
    ):
        for volume in _pod(result, kind, name)["spec"].get("volumes", []):
            secret = volume.get("secret") or {}
            if secret.get("secretName") == names.tls_ca_secret_name(cases.NAME):
                assert secret["items"] == [{"key": "ca.crt", "path": "ca.crt"}], (kind, name)


def test_secret_mode_serves_the_users_secret_and_scrapes_against_its_ca() -> None:
    result = _render(tls={"mode": "Secret", "secretName": "mine"})
    volumes = {v["name"]: v for v in _pod(result, "Deployment", cases.NAME)["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "mine"
    [endpoint] = _one(result, "ServiceMonitor", cases.NAME)["spec"]["endpoints"]
    assert endpoint["tlsConfig"]["ca"] == {"secret": {"name": "mine", "key": "ca.crt"}}
    # The internal hops keep the fleet's CA; the proxies' Managed leaf is not wanted.
    unwanted = {r.name for r in result.unwanted if r.kind == "Secret"}
    assert "paris-tls" in unwanted
    assert not {"paris-tls-ca", "paris-redis-tls"} & unwanted


def test_cert_manager_gets_a_certificate_only_where_its_crds_are_served() -> None:
    spec = {
        "mode": "CertManager",
        "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
        "dnsNames": ["w.example.com"],
    }
    without = _render(tls=spec)
    assert "Certificate" not in {o["kind"] for o in without.objects}
    assert "Certificate" not in {r.kind for r in without.unwanted}
    certificate = _one(_render(tls=spec, cert_manager=True), "Certificate", "paris-tls")
    assert certificate["spec"]["secretName"] == "paris-tls"
    assert certificate["spec"]["issuerRef"] == {
        "name": "letsencrypt",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert certificate["spec"]["dnsNames"] == [
        "paris",
        "paris.weather",
        "paris.weather.svc",
        "paris.weather.svc.cluster.local",
        "w.example.com",
    ]
    # Another mode, cert-manager installed: a Certificate left from before is unwanted.
    assert "Certificate" in {r.kind for r in _render(cert_manager=True).unwanted}


def test_the_proxy_pods_take_any_client_on_their_one_port_only() -> None:
    for case, port in (("dev", names.HTTP_PORT), ("staging", names.HTTPS_PORT)):
        policy = _one(_render(case), "NetworkPolicy", names.network_policy_name(cases.NAME))
        assert policy["spec"]["podSelector"]["matchLabels"] == names.selector_labels(cases.NAME, names.PROXY)
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": port}]}]


def _spec_tls(**tls_spec: Any) -> effective.EffectiveTls:
    spec = weatherproxy.WeatherProxySpec.model_validate({"environment": "staging", "tls": tls_spec})
    return resolve.effective(spec).tls


def test_tls_ready_names_the_notafter_or_the_field_and_the_fix() -> None:
    until = datetime.datetime(2027, 3, 7, 12, 0, tzinfo=datetime.UTC)
    ready = status.tls_ready(_spec_tls(), until, None)
    assert (ready.status, ready.reason) == ("True", "CertificateReady")
    assert "2027-03-07T12:00:00Z" in ready.message
    missing = status.tls_ready(
        _spec_tls(mode="CertManager", issuerRef={"name": "ca"}), None, "CertManagerMissing"
    )
    assert "cert-manager" in missing.message
    issuer = status.tls_ready(
        _spec_tls(mode="CertManager", issuerRef={"name": "ca"}), None, "IssuerNotFound", namespace="weather"
    )
    assert "spec.tls.issuerRef names Issuer 'ca'" in issuer.message
    assert "in namespace 'weather'" in issuer.message
    secret = status.tls_ready(
        _spec_tls(mode="Secret", secretName="mine"), None, "SecretNotFound", secret="mine"
    )
    assert secret.reason == "SecretNotFound"
    assert "spec.tls.secretName names Secret 'mine'" in secret.message
    off = status.tls_ready(
        resolve.effective(weatherproxy.WeatherProxySpec(environment=config.Environment.DEV)).tls, None, None
    )
    assert (off.status, off.reason) == ("False", "Disabled")
