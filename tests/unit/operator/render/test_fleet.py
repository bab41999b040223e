"""What a rendered fleet must always be: complete, labelled, deterministic, safe for server-side apply."""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.unit.operator.render import cases
from weather_operator.api import constants
from weather_operator.render import configmap, fleet, meta, names, redis
from weather_proxy import config

ALL = cases.all_cases()


def _by_kind(result: fleet.Fleet, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in result.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, (kind, name, [o["kind"] for o in result.objects])
    return found[0]


def _redis_env(result: fleet.Fleet) -> dict[str, Any]:
    """The proxy container's one Redis variable (the password, or the external URL)."""
    env = _by_kind(result, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    [redis] = [e for e in env if "REDIS" in e["name"]]
    return dict(redis)


def _kinds(result: fleet.Fleet) -> set[str]:
    return {o["kind"] for o in result.objects}


def _unwanted_kinds(result: fleet.Fleet) -> set[str]:
    return {r.kind for r in result.unwanted}


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("case", sorted(ALL))
def test_every_child_is_labelled_namespaced_and_not_owned(case: str) -> None:
    result = fleet.render_fleet(ALL[case])
    for obj in result.objects:
        meta = obj["metadata"]
        assert meta["namespace"] == cases.NAMESPACE
        assert "ownerReferences" not in meta
        labels = meta["labels"]
        assert labels["app.kubernetes.io/instance"] == cases.NAME
        assert labels["app.kubernetes.io/part-of"] == "weather-proxy-fleet"
        assert labels["app.kubernetes.io/managed-by"] == "weather-operator"
        assert labels["app.kubernetes.io/name"] == "weather-proxy"
        assert labels["app.kubernetes.io/component"] in {
            names.PROXY,
            names.REDIS,
            names.MONITORING,
            names.POSTGRES,
        }


@pytest.mark.parametrize("case", sorted(ALL))
def test_no_child_is_both_wanted_and_unwanted(case: str) -> None:
    result = fleet.render_fleet(ALL[case])
    wanted = {(o["kind"], o["metadata"]["name"]) for o in result.objects}
    assert not wanted & {(r.kind, r.name) for r in result.unwanted}


@pytest.mark.parametrize("case", sorted(ALL))
def test_rendering_is_deterministic_and_shares_no_mutable_state(case: str) -> None:
    first = fleet.render_fleet(ALL[case])
    assert fleet.render_fleet(ALL[case]) == first
    seen: dict[int, Any] = {}
    for node in _walk(first.objects):
        if isinstance(node, (dict, list)):
            assert id(node) not in seen, "a dict or list appears twice: a caller mutating one changes both"
            seen[id(node)] = node
    # A caller (kopf.adopt) mutating the result must not change the next render.
    mutated = copy.deepcopy(first.objects)
    first.objects[0]["metadata"]["labels"]["x"] = "y"
    assert fleet.render_fleet(ALL[case]).objects == mutated


def test_autoscaled_deployment_leaves_replicas_to_the_hpa() -> None:
    result = fleet.render_fleet(cases.inputs("production"))
    assert "replicas" not in _by_kind(result, "Deployment")["spec"]
    hpa = _by_kind(result, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "paris"}


def test_fixed_replicas_without_autoscaling() -> None:
    result = fleet.render_fleet(cases.inputs("production", autoscaling={"enabled": False}, replicas=4))
    assert _by_kind(result, "Deployment")["spec"]["replicas"] == 4
    assert "HorizontalPodAutoscaler" in _unwanted_kinds(result)
    assert "HorizontalPodAutoscaler" not in _kinds(result)


def test_dev_fleet_has_no_hpa_pdb_alerts_or_redis_volume() -> None:
    result = fleet.render_fleet(cases.inputs("dev"))
    assert _by_kind(result, "Deployment")["spec"]["replicas"] == 1
    # The usage history is off in dev: its database, Service, NetworkPolicy and password are unwanted.
    assert {
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Ingress",
        "StatefulSet",
        "Service",
        "NetworkPolicy",
        "Secret",
    } == _unwanted_kinds(result)
    assert {ref.name for ref in result.unwanted if ref.kind == "StatefulSet"} == {
        names.postgres_name(cases.NAME)
    }
    assert "ServiceMonitor" in _kinds(result)
    statefulset = _by_kind(result, "StatefulSet")
    assert "volumeClaimTemplates" not in statefulset["spec"]
    assert statefulset["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert "--appendonly" in (args := statefulset["spec"]["template"]["spec"]["containers"][0]["args"])
    assert args[args.index("--appendonly") + 1] == "no"


def test_persistent_redis_has_a_claim_template_and_append_only_file() -> None:
    result = fleet.render_fleet(cases.inputs("production-customised"))
    statefulset = _by_kind(result, "StatefulSet", "paris-redis")
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][container["args"].index("--appendonly") + 1] == "yes"
    assert "$(REDIS_PASSWORD)" in container["args"]
    assert container["securityContext"]["runAsUser"] == 999
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_pdb_follows_the_spec() -> None:
    prod = _by_kind(fleet.render_fleet(cases.inputs("production")), "PodDisruptionBudget")
    assert prod["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in prod["spec"]
    custom = _by_kind(fleet.render_fleet(cases.inputs("production-customised")), "PodDisruptionBudget")
    assert custom["spec"]["maxUnavailable"] == "25%"
    assert "minAvailable" not in custom["spec"]
    assert custom["spec"]["selector"]["matchLabels"] == names.selector_labels("paris", names.PROXY)


def test_pod_template_carries_the_config_hash() -> None:
    result = fleet.render_fleet(cases.inputs("staging"))
    annotations = _by_kind(result, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations[constants.CONFIG_HASH_ANNOTATION] == result.config_hash
    text = _by_kind(result, "ConfigMap")["data"]["config.yaml"]
    assert result.config_hash == configmap.config_hash(text)


def test_config_changes_change_the_hash_but_key_changes_do_not() -> None:
    base = fleet.render_fleet(cases.inputs("staging"))
    other_keys = fleet.render_fleet(cases.inputs("staging", keys=config.KeysFile()))
    assert other_keys.config_hash == base.config_hash
    assert other_keys.objects[1] != base.objects[1]  # the keys Secret did change
    other_config = fleet.render_fleet(cases.inputs("staging", cache={"ttlSeconds": 42}))
    assert other_config.config_hash != base.config_hash


def test_config_map_is_a_valid_proxy_config(tmp_path: pathlib.Path) -> None:
    result = fleet.render_fleet(cases.inputs("production-customised"))
    path = tmp_path / "config.yaml"
    path.write_text(_by_kind(result, "ConfigMap")["data"]["config.yaml"], encoding="utf-8")
    loaded = config.load_config(path)
    assert loaded.environment is config.Environment.PRODUCTION
    # TLS Managed (the production preset): Redis over TLS, verified against the fleet's CA.
    assert loaded.redis == config.Redis.model_validate(
        {"url": "rediss://paris-redis:6379/0", "tls": {"caFile": "/etc/weather-proxy/internal-ca/ca.crt"}}
    )
    assert loaded.auth == config.Auth(
        required=False,
        keys_file="/etc/weather-proxy/keys/keys.yaml",
        kubernetes=config.KubernetesKeys(secret_names=["paris-keys"]),
    )
    # In-cluster defaults: the pod's own namespace, its projected token and the cluster CA.
    assert loaded.auth.kubernetes is not None
    assert loaded.auth.kubernetes.namespace is None
    assert loaded.auth.kubernetes.api_server is None
    assert loaded.auth.kubernetes.token_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert loaded.auth.kubernetes.ca_file == "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    assert loaded.listen.port == 8443
    assert loaded.listen.tls is not None
    assert loaded.listen.tls.cert_file == "/etc/weather-proxy/tls/tls.crt"
    assert loaded.cache.warm_cities == ["Paris", "London"]
    assert loaded.observability.log_level == "warning"
    assert loaded.observability.tracing.enabled is True


def test_the_server_is_uvicorn_unless_the_spec_asks_for_granian() -> None:
    base = fleet.render_fleet(cases.inputs("staging"))
    text = _by_kind(base, "ConfigMap")["data"]["config.yaml"]
    assert "server" not in yaml.safe_load(text)  # unset: the proxy's default, files as before
    chosen = fleet.render_fleet(cases.inputs("staging", server="granian"))
    loaded = yaml.safe_load(_by_kind(chosen, "ConfigMap")["data"]["config.yaml"])
    assert config.ProxyConfig.model_validate(loaded).server is config.Server.GRANIAN
    assert chosen.config_hash != base.config_hash  # the pods restart onto the other server


def test_keys_secret_holds_the_hashes_only(tmp_path: pathlib.Path) -> None:
    result = fleet.render_fleet(cases.inputs("production"))
    secret = _by_kind(result, "Secret", "paris-keys")
    assert secret["type"] == "Opaque"
    assert "stringData" not in secret
    path = tmp_path / "keys.yaml"
    path.write_bytes(base64.b64decode(secret["data"]["keys.yaml"]))
    assert config.load_keys(path) == cases.KEYS


def test_volumes_are_mounted_as_directories_never_sub_paths() -> None:
    result = fleet.render_fleet(cases.inputs("production"))
    pod = _by_kind(result, "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all("subPath" not in m for m in mounts.values())
    assert mounts["config"]["mountPath"] == "/etc/weather-proxy"
    assert mounts["keys"]["mountPath"] == "/etc/weather-proxy/keys"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "paris-config"
    assert volumes["keys"]["secret"]["secretName"] == "paris-keys"
    assert "emptyDir" in volumes["tmp"]
    assert container["command"] == ["weather-proxy", "--config", "/etc/weather-proxy/config.yaml"]


@pytest.mark.parametrize("case", sorted(ALL))
def test_the_proxy_pods_may_only_read_their_keys_secrets(case: str) -> None:
    result = fleet.render_fleet(ALL[case])
    account = _by_kind(result, "ServiceAccount", "paris-proxy")
    assert account["automountServiceAccountToken"] is False
    role = _by_kind(result, "Role", "paris-keys-reader")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["paris-keys"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    binding = _by_kind(result, "RoleBinding", "paris-keys-reader")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "paris-keys-reader",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "paris-proxy", "namespace": "weather"}]
    order = [o["kind"] for o in result.objects]
    assert order.index("ServiceAccount") < order.index("Role") < order.index("RoleBinding")
    assert order.index("RoleBinding") < order.index("Deployment")
    # The keys Secrets the Role names are the ones the proxy is told to watch.
    cfg = yaml.safe_load(_by_kind(result, "ConfigMap")["data"]["config.yaml"])
    assert cfg["auth"]["kubernetes"]["secretNames"] == role["rules"][0]["resourceNames"]


def test_the_token_is_mounted_explicitly_and_nothing_else_gets_one() -> None:
    pod = _by_kind(fleet.render_fleet(cases.inputs("production")), "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "paris-proxy"
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["kube-api-access"] == {
        "name": "kube-api-access",
        "mountPath": config.SERVICE_ACCOUNT_DIR,
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    sources = volumes["kube-api-access"]["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"


def test_proxy_pods_are_restricted() -> None:
    pod = _by_kind(fleet.render_fleet(cases.inputs("production")), "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == meta.PROXY_USER == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["terminationGracePeriodSeconds"] == 30
    # TLS Managed (the production preset): the probes speak HTTPS.
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/health/live",
        "port": "https",
        "scheme": "HTTPS",
    }
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/health/ready",
        "port": "https",
        "scheme": "HTTPS",
    }
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_managed_redis_password_comes_from_the_redis_secret() -> None:
    result = fleet.render_fleet(cases.inputs("production"))
    env = _redis_env(result)
    assert env == {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "paris-redis-auth", "key": "password"}},
    }


def test_redis_password_secret_holds_the_given_password_and_is_never_in_the_fleet() -> None:
    password = "not-a-real-password-used-only-in-tests"
    secret = redis.render_password_secret("paris", "weather", password)
    assert secret["metadata"]["name"] == names.redis_secret_name("paris")
    assert secret["metadata"]["labels"] == names.labels("paris", names.REDIS)
    assert base64.b64decode(secret["data"][names.REDIS_PASSWORD_KEY]).decode() == password
    rendered = fleet.render_fleet(cases.inputs("production"))
    assert names.redis_secret_name("paris") not in {obj["metadata"]["name"] for obj in rendered.objects}


def test_external_redis_url_comes_from_the_users_secret_and_no_redis_is_run() -> None:
    result = fleet.render_fleet(cases.inputs("production-external-redis"))
    env = _redis_env(result)
    assert env == {
        "name": "WEATHER_PROXY_REDIS_URL",
        "valueFrom": {"secretKeyRef": {"name": "shared-redis", "key": "url"}},
    }
    assert not {("StatefulSet", "paris-redis"), ("NetworkPolicy", "paris-redis")} & {
        (o["kind"], o["metadata"]["name"]) for o in result.objects
    }
    assert {
        fleet.ObjectRef("apps/v1", "StatefulSet", "paris-redis"),
        fleet.ObjectRef("v1", "Service", "paris-redis"),
        fleet.ObjectRef("networking.k8s.io/v1", "NetworkPolicy", "paris-redis"),
        fleet.ObjectRef("v1", "Secret", "paris-redis-auth"),
    } <= set(result.unwanted)
    text = _by_kind(result, "ConfigMap")["data"]["config.yaml"]
    assert "shared-redis" not in text
    assert yaml.safe_load(text)["redis"]["url"] == configmap.EXTERNAL_REDIS_PLACEHOLDER_URL


def test_network_policy_admits_only_the_fleets_proxy_pods_to_redis() -> None:
    policy = _by_kind(fleet.render_fleet(cases.inputs("production")), "NetworkPolicy", "paris-redis")
    assert policy["spec"]["podSelector"]["matchLabels"] == names.selector_labels("paris", names.REDIS)
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": names.selector_labels("paris", names.PROXY)}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_services_select_their_pods() -> None:
    result = fleet.render_fleet(cases.inputs("production"))
    proxy = _by_kind(result, "Service", "paris")
    assert proxy["spec"]["selector"] == _by_kind(result, "Deployment")["spec"]["selector"]["matchLabels"]
    assert proxy["spec"]["ports"] == [
        {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}
    ]
    redis_service = _by_kind(result, "Service", "paris-redis")
    assert (
        redis_service["spec"]["selector"]
        == _by_kind(result, "StatefulSet", "paris-redis")["spec"]["selector"]["matchLabels"]
    )


def test_ingress_with_tls_class_and_annotations() -> None:
    ingress = _by_kind(fleet.render_fleet(cases.inputs("production-customised")), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["weather.example.com"], "secretName": "weather-example-com-tls"}
    ]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "weather.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "paris", "port": {"name": "http"}}
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}


def test_ingress_without_tls_or_class() -> None:
    result = fleet.render_fleet(cases.inputs("dev", ingress={"enabled": True, "host": "w.example.com"}))
    ingress = _by_kind(result, "Ingress")
    assert "tls" not in ingress["spec"]
    assert "ingressClassName" not in ingress["spec"]
    assert "annotations" not in ingress["metadata"]


def test_monitoring_is_skipped_when_the_crds_are_missing() -> None:
    result = fleet.render_fleet(cases.inputs("staging", monitoring_available=False))
    assert not {"ServiceMonitor", "PrometheusRule"} & _kinds(result)
    assert {"ServiceMonitor", "PrometheusRule"} <= _unwanted_kinds(result)


def test_service_monitor_scrapes_the_https_port_with_extra_labels() -> None:
    monitor = _by_kind(fleet.render_fleet(cases.inputs("production-customised")), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "https",
            "path": "/metrics",
            "interval": "15s",
            "scheme": "https",
            "tlsConfig": {
                "ca": {"secret": {"name": "paris-tls", "key": "ca.crt"}},
                "serverName": "paris.weather.svc",
            },
        }
    ]
    assert monitor["spec"]["selector"]["matchLabels"] == names.selector_labels("paris", names.PROXY)
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["weather"]}


def test_extra_labels_never_override_the_standard_ones() -> None:
    result = fleet.render_fleet(
        cases.inputs(
            "production", monitoring={"serviceMonitor": {"labels": {"app.kubernetes.io/instance": "x"}}}
        )
    )
    assert _by_kind(result, "ServiceMonitor")["metadata"]["labels"]["app.kubernetes.io/instance"] == "paris"


def test_keys_secrets_keep_their_revision_until_their_content_changes() -> None:
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    first = fleet.render_fleet(dataclasses.replace(cases.inputs("dev"), now=now))
    [written] = first.keys_secrets
    assert written.revision == int(now.timestamp() * 1000)
    later = now + datetime.timedelta(minutes=5)
    remembered = {written.name: (written.digest, written.revision)}
    same = fleet.render_fleet(dataclasses.replace(cases.inputs("dev"), now=later, key_revisions=remembered))
    assert same.keys_secrets[0].revision == written.revision
    assert same.objects == first.objects
    other = fleet.render_fleet(
        dataclasses.replace(cases.inputs("dev", keys=config.KeysFile()), now=now, key_revisions=remembered)
    )
    assert other.keys_secrets[0].revision == written.revision + 1  # never lower, even with a slow clock


def test_a_cloudnativepg_cluster_left_from_before_is_unwanted_when_analytics_is_off() -> None:
    result = fleet.render_fleet(dataclasses.replace(cases.inputs("dev"), cnpg_available=True))
    assert fleet.ObjectRef("postgresql.cnpg.io/v1", "Cluster", names.cnpg_cluster_name(cases.NAME)) in set(
        result.unwanted
    )
    on = fleet.render_fleet(dataclasses.replace(cases.inputs("staging"), cnpg_available=True))
    assert "Cluster" in _kinds(on)
    assert names.postgres_name(cases.NAME) in {ref.name for ref in on.unwanted if ref.kind == "StatefulSet"}
