"""Every kustomization the project ships is accepted by a real API server (``--dry-run=server``).

Server-side dry-run runs admission, schema and CEL validation without persisting anything.
The CRDs (ours, and the Prometheus Operator's test CRDs for the monitoring objects) are
installed first so custom resources in the overlays and samples can be validated.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hack import kubectl as kubectl_

pytestmark = [pytest.mark.controlplane, pytest.mark.integration]

MANIFESTS = kubectl_.REPO_ROOT / "manifests"
TEST_CRDS = MANIFESTS / "test-crds"


# Argo CD Applications need Argo CD's CRDs, which this cluster does not have.
NOT_HERE = (MANIFESTS / "argocd", TEST_CRDS)


def _kustomizations() -> list[Path]:
    """Every buildable kustomization (Components are parts of others, not builds of their own)."""
    found = []
    for path in sorted(MANIFESTS.rglob("kustomization.yaml")):
        if any(path.is_relative_to(skip) for skip in NOT_HERE):
            continue
        if yaml.safe_load(path.read_text()).get("kind") == "Component":
            continue
        found.append(path.parent)
    return found


@pytest.fixture(scope="module")
def cluster_with_crds(kubeconfig: Path) -> Iterator[kubectl_.Kubectl]:
    kubectl = kubectl_.Kubectl(kubeconfig)
    kubectl.install_crds()
    kubectl.install_crds(TEST_CRDS)
    # Kopf's peering CRDs come from base; install them for real so the peering object validates.
    for crd in sorted((MANIFESTS / "base").glob("kopf.dev_*kopfpeerings.yaml")):
        kubectl.install_crds(crd)
    yield kubectl
    # The control plane is shared by the session: other modules expect no Prometheus Operator CRDs.
    kubectl.uninstall_crds(TEST_CRDS)


def test_every_overlay_base_and_sample_has_a_kustomization() -> None:
    names = {p.relative_to(MANIFESTS).as_posix() for p in _kustomizations()}
    assert {"base", "overlays/dev", "overlays/staging", "overlays/production"} <= names


@pytest.mark.parametrize("path", _kustomizations(), ids=lambda p: p.relative_to(MANIFESTS).as_posix())
def test_server_side_dry_run_accepts(path: Path, cluster_with_crds: kubectl_.Kubectl) -> None:
    built = cluster_with_crds.run("kustomize", str(path))
    namespaces = [
        line.split(":", 1)[1].strip() for line in built.splitlines() if line.startswith("  namespace:")
    ]
    # A dry-run cannot create a namespace another object of the same build lives in: create them first.
    for ns in sorted(set(namespaces)):
        cluster_with_crds.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    out = cluster_with_crds.run(
        "apply", "--dry-run=server", "--server-side", "--force-conflicts", "-k", str(path), check=False
    )
    assert "error" not in out.lower(), out
