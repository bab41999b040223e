"""Every kustomization under manifests/ builds, and what it builds has the expected shape."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

from tests.unit.delivery import dockerfile, support
from weather_proxy import version

OVERLAYS = support.overlay_dirs()
BASE = support.MANIFESTS / "base"
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterKopfPeering",
}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return result


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def test_the_kustomization_list_covers_base_overlays_samples_argocd_and_monitoring() -> None:
    found = {d.relative_to(support.MANIFESTS).as_posix() for d in support.kustomization_dirs()}
    expected = {"base", "samples", "argocd", "monitoring"}
    expected |= {f"overlays/{env}" for env in support.ENVIRONMENTS}
    expected |= {f"samples/{env}" for env in support.ENVIRONMENTS}
    assert expected <= found


@pytest.mark.parametrize(
    "directory", support.kustomization_dirs(), ids=lambda d: d.relative_to(support.MANIFESTS).as_posix()
)
def test_kustomization_builds(directory: pathlib.Path) -> None:
    objects = support.kustomize_build(directory)
    assert objects
    for obj in objects:
        assert obj.get("apiVersion"), obj
        assert obj.get("kind"), obj
        assert obj["metadata"].get("name"), obj
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace"), (
                f"{obj['kind']}/{obj['metadata']['name']} has no namespace"
            )


@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda d: d.name)
def test_namespaced_objects_land_in_namespaces_the_build_creates(directory: pathlib.Path) -> None:
    objects = support.kustomize_build(directory)
    namespaces = {ns["metadata"]["name"] for ns in support.of_kind(objects, "Namespace")}
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] in namespaces


def test_base_installs_crds_peering_and_the_operator() -> None:
    objects = support.kustomize_build(BASE)
    crds = {crd["metadata"]["name"] for crd in support.of_kind(objects, "CustomResourceDefinition")}
    assert {
        "weatherproxies.weatherproxy.dev",
        "apikeys.weatherproxy.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    } <= crds
    deployment = support.one(objects, "Deployment", "weather-operator")
    (container,) = containers(deployment)
    assert container["image"] == f"ghcr.io/weather-proxy/operator:{version.VERSION}"
    env = env_of(container)
    assert env["WEATHER_OPERATOR_DEFAULT_IMAGE"] == f"ghcr.io/weather-proxy/proxy:{version.VERSION}"
    # The peering object the operator joins is the one the base creates.
    (peering,) = support.of_kind(objects, "ClusterKopfPeering")
    assert env["WEATHER_OPERATOR_PEERING_NAME"] == peering["metadata"]["name"]
    assert support.one(objects, "Namespace", "weather-system")


@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda d: d.name)
def test_operator_deployment_meets_restricted_pod_security(directory: pathlib.Path) -> None:
    objects = support.kustomize_build(directory)
    deployment = support.one(objects, "Deployment", "weather-operator")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = containers(deployment)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # /tmp is the one writable path, and it is an emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == "weather-operator"


@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda d: d.name)
def test_operator_probes_hit_kopf_liveness_on_the_port_the_image_exposes(directory: pathlib.Path) -> None:
    deployment = support.one(support.kustomize_build(directory), "Deployment", "weather-operator")
    (container,) = containers(deployment)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    final = dockerfile.parse_stages((support.REPO / "Dockerfile.operator").read_text())[-1]
    exposed = {int(ins.arguments) for ins in final.all("EXPOSE")}
    for probe in ("livenessProbe", "readinessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/healthz"
        assert ports[http["port"]] in exposed
    # The operator's own default liveness endpoint listens on that port too.
    settings = pytest.importorskip("weather_operator.settings")
    assert settings.OperatorSettings().liveness_endpoint.endswith(f":{ports['health']}/healthz")


def test_operator_settings_in_the_manifests_are_ones_the_operator_reads() -> None:
    settings = pytest.importorskip("weather_operator.settings")
    known = set(settings.variables().values())
    for directory in [BASE, *OVERLAYS]:
        deployment = support.one(support.kustomize_build(directory), "Deployment", "weather-operator")
        (container,) = containers(deployment)
        env = env_of(container)
        assert set(env) <= known, f"{directory.name}: unknown settings {set(env) - known}"
        plain = {k: v for k, v in env.items() if isinstance(v, str)}
        settings.OperatorSettings.from_env(plain)  # raises SettingsError on a bad value


def test_pdb_selects_the_operator_pods() -> None:
    objects = support.kustomize_build(BASE)
    deployment = support.one(objects, "Deployment", "weather-operator")
    pdb = support.one(objects, "PodDisruptionBudget", "weather-operator")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == pdb["spec"]["selector"]["matchLabels"]
    # One replica: a minAvailable budget would block node drains forever.
    assert "minAvailable" not in pdb["spec"] or deployment["spec"]["replicas"] > 1


@pytest.mark.parametrize("env", support.ENVIRONMENTS)
def test_overlay_declares_its_environment_fleet_and_keys(env: str) -> None:
    objects = support.kustomize_build(support.MANIFESTS / "overlays" / env)
    proxies = support.of_kind(objects, "WeatherProxy")
    assert [p["spec"]["environment"] for p in proxies] == [env]
    keys = support.of_kind(objects, "ApiKey")
    assert keys
    fleets = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in proxies}
    for key in keys:
        assert (key["metadata"]["namespace"], key["spec"]["proxyRef"]["name"]) in fleets


@pytest.mark.parametrize("env", support.ENVIRONMENTS)
def test_overlay_orders_crds_before_custom_resources_for_argocd(env: str) -> None:
    objects = support.kustomize_build(support.MANIFESTS / "overlays" / env)
    for obj in objects:
        annotations = obj["metadata"].get("annotations", {})
        wave = annotations.get("argocd.argoproj.io/sync-wave")
        if obj["kind"] == "CustomResourceDefinition":
            assert wave == "-1"
        elif obj["apiVersion"].startswith("weatherproxy.dev/"):
            assert wave == "1"
            assert "SkipDryRunOnMissingResource=true" in annotations["argocd.argoproj.io/sync-options"]
        else:
            assert wave is None, f"{obj['kind']} should stay in the default wave 0"


@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda d: d.name)
def test_images_are_pinned(directory: pathlib.Path) -> None:
    objects = support.kustomize_build(directory)
    images = [c["image"] for d in support.of_kind(objects, "Deployment") for c in containers(d)]
    images += [p["spec"]["image"] for p in support.of_kind(objects, "WeatherProxy") if "image" in p["spec"]]
    images += [
        item["value"]
        for d in support.of_kind(objects, "Deployment")
        for c in containers(d)
        for item in c.get("env", [])
        if item["name"].endswith("_IMAGE")
    ]
    assert images
    for image in images:
        assert re.search(r":[0-9][\w.-]*$|@sha256:[0-9a-f]{64}$", image), (
            f"{image} is not pinned to a version"
        )
