"""The Helm chart (charts/weather-operator): one source with the kustomize base, lint, values.

The chart's templates are written for Helm, the base for kustomize; what keeps them from
drifting is :func:`test_default_values_render_the_kustomize_base`: ``helm template`` with the
default values and ``kubectl kustomize manifests/base`` are compared object by object, after
removing only what legitimately differs (Helm's release labels; the base's Namespace, which a
chart does not own; the part-of label kustomize adds to the CRDs, which the chart ships as they
are). The chart's ``crds/`` are
byte-for-byte copies of the generated CRDs (``make chart-crds``, run by ``make crds``).
"""

from __future__ import annotations

import copy
import difflib
import re
import tomllib
from typing import Any

import pytest
import yaml

from testbed import helm
from tests.unit.delivery import support

CHART_YAML = yaml.safe_load((helm.CHART / "Chart.yaml").read_text())
PROJECT_VERSION = tomllib.loads((support.REPO / "pyproject.toml").read_text())["project"]["version"]
CRD_SOURCES = (
    support.REPO / "crds" / "weatherproxy.dev_weatherproxies.yaml",
    support.REPO / "crds" / "weatherproxy.dev_apikeys.yaml",
    support.MANIFESTS / "base" / "kopf.dev_clusterkopfpeerings.yaml",
    support.MANIFESTS / "base" / "kopf.dev_kopfpeerings.yaml",
)
Key = tuple[str, str, str, str]


def key(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def _drop(labels: dict[str, str] | None, names: frozenset[str] | set[str]) -> None:
    if labels is not None:
        for name in names:
            labels.pop(name, None)


def normalised_chart(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without Helm's release labels (in labels and in selectors alike)."""
    obj = copy.deepcopy(obj)
    _drop(obj["metadata"].get("labels"), helm.HELM_ONLY_LABELS)
    spec = obj.get("spec", {})
    if isinstance(spec.get("selector"), dict):
        _drop(spec["selector"].get("matchLabels"), helm.HELM_ONLY_LABELS)
    pod = spec.get("template", {})
    if "metadata" in pod:
        _drop(pod["metadata"].get("labels"), helm.HELM_ONLY_LABELS)
        for constraint in pod["spec"].get("topologySpreadConstraints", []):
            _drop(constraint["labelSelector"]["matchLabels"], helm.HELM_ONLY_LABELS)
    return obj


def without_crd_part_of(obj: dict[str, Any]) -> dict[str, Any]:
    """Without the part-of label kustomize adds to every object (the chart ships the CRD files as is)."""
    if obj["kind"] != "CustomResourceDefinition":
        return obj
    obj = copy.deepcopy(obj)
    _drop(obj["metadata"].get("labels"), {"app.kubernetes.io/part-of"})
    if not obj["metadata"].get("labels"):
        obj["metadata"].pop("labels", None)
    return obj


def test_the_charts_crds_are_the_generated_ones() -> None:
    shipped = sorted(p.name for p in (helm.CHART / "crds").glob("*.yaml"))
    assert shipped == sorted(p.name for p in CRD_SOURCES)
    for source in CRD_SOURCES:
        copy_ = helm.CHART / "crds" / source.name
        assert copy_.read_bytes() == source.read_bytes(), (
            f"{copy_} differs from {source}: run `make chart-crds`"
        )


def test_chart_version_and_app_version_are_the_projects() -> None:
    assert CHART_YAML["version"] == PROJECT_VERSION
    assert CHART_YAML["appVersion"] == PROJECT_VERSION


def test_the_charts_minimum_kubernetes_is_the_tested_control_plane() -> None:
    """kubeVersion names the minor the control plane here runs (hack/controlplane/go.mod)."""
    go_mod = (support.REPO / "hack" / "controlplane" / "go.mod").read_text()
    found = re.search(r"^\s*k8s\.io/kubernetes v1\.(\d+)\.", go_mod, re.MULTILINE)
    assert found
    assert CHART_YAML["kubeVersion"] == f">=1.{found.group(1)}.0-0"
    assert f"Kubernetes 1.{found.group(1)}" in (support.REPO / "README.md").read_text()


@pytest.mark.parametrize(
    "values",
    [{}, {"metrics.enabled": True, "metrics.serviceMonitor.enabled": True, "watchNamespace": "weather"}],
    ids=["defaults", "every-option"],
)
def test_helm_lint_strict_passes(values: dict[str, Any]) -> None:
    done = helm.run(
        "lint", "--strict", str(helm.CHART), *helm.kube_version(), *helm.set_args(values), check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_default_values_render_the_kustomize_base() -> None:
    chart = {key(o): without_crd_part_of(normalised_chart(o)) for o in helm.template(include_crds=True)}
    base = {key(o): without_crd_part_of(o) for o in support.kustomize_build(support.MANIFESTS / "base")}
    namespaces = [k for k in base if k[1] == "Namespace"]
    assert namespaces == [("v1", "Namespace", "", helm.BASE_NAMESPACE)]  # `--create-namespace` instead
    del base[namespaces[0]]
    assert sorted(chart) == sorted(base)
    for k, expected in base.items():
        got = chart[k]
        if got != expected:
            diff = difflib.unified_diff(
                yaml.safe_dump(expected, sort_keys=True).splitlines(),
                yaml.safe_dump(got, sort_keys=True).splitlines(),
                "manifests/base",
                "helm template",
                lineterm="",
            )
            pytest.fail(f"{'/'.join(k)} differs:\n" + "\n".join(diff))


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_values_reach_the_deployment() -> None:
    objects = helm.template(
        {
            "image.tag": "9.9.9",
            "proxyImage.repository": "registry.example/proxy",
            "replicaCount": 3,
            "resources": {"requests": {"cpu": "50m"}},
            "logFormat": "plain",
            "postingLevel": "WARNING",
            "peering.lifetimeSeconds": 30,
            "extraEnv": [{"name": "WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS", "value": "120"}],
        },
        release="ops",
        namespace="platform",
    )
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert (deployment["metadata"]["name"], deployment["metadata"]["namespace"]) == (
        "ops-weather-operator",
        "platform",
    )
    assert deployment["spec"]["replicas"] == 3
    container = _container(objects)
    assert container["image"] == "ghcr.io/weather-proxy/operator:9.9.9"
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "192Mi"},
        "limits": {"memory": "512Mi"},
    }
    env = _env(container)
    assert env["WEATHER_OPERATOR_DEFAULT_IMAGE"] == "registry.example/proxy:9.9.9"  # image.tag: both images
    assert env["WEATHER_OPERATOR_LOG_FORMAT"] == "plain"
    assert env["WEATHER_OPERATOR_POSTING_LEVEL"] == "WARNING"
    assert env["WEATHER_OPERATOR_PEERING_LIFETIME_SECONDS"] == "30"
    assert env["WEATHER_OPERATOR_PEERING_NAME"] == "ops-weather-operator"
    assert env["WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS"] == "120"
    (binding,) = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "ops-weather-operator", "namespace": "platform"}
    ]
    assert binding["roleRef"]["name"] == "ops-weather-operator"


def test_one_value_points_both_images_at_a_registry() -> None:
    """image.registry (and image.tag) set the operator's image and the proxy pods' default alike."""
    env = _env(container := _container(helm.template({"image.registry": "registry.example.com/wpf/"})))
    assert container["image"] == f"registry.example.com/wpf/operator:{PROJECT_VERSION}"
    assert env["WEATHER_OPERATOR_DEFAULT_IMAGE"] == f"registry.example.com/wpf/proxy:{PROJECT_VERSION}"
    env = _env(
        container := _container(helm.template({"image.registry": "localhost:5000/wpf", "image.tag": "dev"}))
    )
    assert (container["image"], env["WEATHER_OPERATOR_DEFAULT_IMAGE"]) == (
        "localhost:5000/wpf/operator:dev",
        "localhost:5000/wpf/proxy:dev",
    )
    # Either image apart, when it does not follow the pattern.
    objects = helm.template(
        {"image.registry": "r.example/wpf", "proxyImage.repository": "other.example/proxy"}
    )
    assert _container(objects)["image"] == f"r.example/wpf/operator:{PROJECT_VERSION}"
    assert (
        _env(_container(objects))["WEATHER_OPERATOR_DEFAULT_IMAGE"]
        == f"other.example/proxy:{PROJECT_VERSION}"
    )


@pytest.mark.parametrize(("value", "rule"), [("image.registry", "@sha256"), ("image.tag", "a/b")])
def test_a_registry_or_tag_that_cannot_name_an_image_is_refused(value: str, rule: str) -> None:
    done = helm.run(
        "template", "x", str(helm.CHART), *helm.kube_version(), "--set", f"{value}={rule}", check=False
    )
    assert done.returncode != 0
    assert value.split(".")[1] in done.stderr


def test_watching_one_namespace_peers_through_a_kopfpeering_there() -> None:
    objects = helm.template({"watchNamespace": "weather"})
    env = _env(_container(objects))
    assert env["WEATHER_OPERATOR_WATCH_NAMESPACE"] == "weather"
    peerings = [
        (o["kind"], o["metadata"].get("namespace")) for o in objects if o["apiVersion"] == "kopf.dev/v1"
    ]
    assert peerings == [("KopfPeering", "weather")]
    (role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    assert {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    } in (role["rules"])


def test_peering_off_runs_standalone_without_a_peering_object() -> None:
    objects = helm.template({"peering.enabled": False, "replicaCount": 1})
    container = _container(objects)
    assert (container["command"], container["args"]) == (["weather-operator"], ["--standalone"])
    assert "WEATHER_OPERATOR_PEERING_NAME" not in _env(container)
    assert not [o for o in objects if o["apiVersion"] == "kopf.dev/v1"]


def test_metrics_and_the_service_monitor_are_off_by_default_and_target_the_metrics_port() -> None:
    default = helm.template()
    assert {o["kind"] for o in default} == {
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering", "Deployment",
        "PodDisruptionBudget",
    }  # fmt: skip
    assert [p["name"] for p in _container(default)["ports"]] == ["health"]
    objects = helm.template(
        {"metrics.enabled": True, "metrics.serviceMonitor.enabled": True, "metrics.port": 9100}
    )
    ports = {p["name"]: p["containerPort"] for p in _container(objects)["ports"]}
    assert ports == {"health": 8080, "metrics": 9100}
    assert _env(_container(objects))["WEATHER_OPERATOR_METRICS_PORT"] == "9100"
    (service,) = [o for o in objects if o["kind"] == "Service"]
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_a_service_monitor_without_metrics_is_refused() -> None:
    done = helm.run(
        "template",
        "x",
        str(helm.CHART),
        *helm.kube_version(),
        "--set",
        "metrics.serviceMonitor.enabled=true",
        check=False,
    )
    assert done.returncode != 0
    assert "metrics.serviceMonitor.enabled needs metrics.enabled" in done.stderr


def test_notes_say_how_to_upgrade_the_crds_and_what_deleting_them_deletes() -> None:
    notes = (helm.CHART / "templates" / "NOTES.txt").read_text()
    assert "helm show crds" in notes
    assert "Deleting the CRDs deletes every WeatherProxy and ApiKey" in notes
