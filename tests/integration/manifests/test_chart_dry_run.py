"""The chart and the release bundle are accepted by a real API server (``--dry-run=server``).

``helm template`` (default values, and every optional part on) and ``dist/install.yaml``
(``make release``: the kustomize build of manifests/base) are applied with server-side
dry-run: admission, schema and RBAC validation, nothing persisted. The CRDs are installed
first so the custom resources (the peering object, the ServiceMonitor) can be validated.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hack import kubectl as kubectl_
from testbed import helm

pytestmark = [pytest.mark.controlplane, pytest.mark.integration]

REPO = kubectl_.REPO_ROOT
TEST_CRDS = REPO / "manifests" / "test-crds"
NAMESPACE = "weather-chart"


@pytest.fixture(scope="module")
def cluster(kubeconfig: Path) -> Iterator[kubectl_.Kubectl]:
    kubectl = kubectl_.Kubectl(kubeconfig)
    kubectl.install_crds(helm.CHART / "crds")
    kubectl.install_crds(TEST_CRDS)
    for ns in (NAMESPACE, "weather"):
        kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield kubectl
    # The control plane is shared by the session: other modules expect no Prometheus Operator CRDs.
    kubectl.uninstall_crds(TEST_CRDS)


def dry_run(kubectl: kubectl_.Kubectl, manifest: str) -> str:
    out = kubectl.run(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        stdin=manifest,
        check=False,
    )
    assert "error" not in out.lower(), out
    return out


@pytest.mark.parametrize(
    "values",
    [
        {},
        {
            "metrics.enabled": True,
            "metrics.serviceMonitor.enabled": True,
            "watchNamespace": "weather",
            "peering.lifetimeSeconds": 30,
        },
        {"peering.enabled": False, "replicaCount": 1},
    ],
    ids=["defaults", "every-option", "standalone"],
)
def test_helm_template_is_accepted(cluster: kubectl_.Kubectl, values: dict[str, object]) -> None:
    manifest = helm.template_text(values, release="weather-operator", namespace=NAMESPACE, include_crds=True)
    kinds = {doc["kind"] for doc in yaml.safe_load_all(manifest) if doc}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "PodDisruptionBudget"} <= kinds
    out = dry_run(cluster, manifest)
    assert "deployment.apps/weather-operator serverside-applied (server dry run)" in out


def test_the_release_bundle_is_accepted(cluster: kubectl_.Kubectl, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    done = subprocess.run(  # a fixed command: make and its variables
        ["make", "--no-print-directory", "release", f"DIST={dist}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    install = (dist / "install.yaml").read_text()
    objects = [doc for doc in yaml.safe_load_all(install) if doc]
    kinds = [o["kind"] for o in objects]
    assert kinds.count("CustomResourceDefinition") == 4
    assert {"Namespace", "Deployment", "ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"} <= set(
        kinds
    )
    # The bundle's own Namespace: a dry-run cannot create it and place objects in it at once.
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "weather-system"}})
    out = dry_run(cluster, install)
    assert "customresourcedefinition.apiextensions.k8s.io/weatherproxies.weatherproxy.dev" in out
    packaged = sorted(p.name for p in dist.glob("*.tgz"))
    assert packaged == [f"weather-operator-{helm.project_version()}.tgz"]
    shown = helm.run("show", "chart", str(dist / packaged[0])).stdout
    chart = yaml.safe_load(shown)
    assert (chart["version"], chart["appVersion"]) == (helm.project_version(), helm.project_version())
