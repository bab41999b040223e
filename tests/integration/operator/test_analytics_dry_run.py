"""The history database's rendered objects are accepted by a real API server (``--dry-run=server``).

Every form (StatefulSet, CloudNativePG Cluster with the preset and customised, External), with the
password Secret and the erasure Job: admission, schema and defaulting run, nothing is stored.
The Cluster is checked against a minimal CloudNativePG CRD (manifests/test-crds), removed after.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hack import kubectl as kubectl_
from tests.integration.operator import fleet
from weather_operator.api import analytics as analytics_api
from weather_operator.controller import fleets
from weather_operator.render import postgres
from weather_proxy import config

pytestmark = [pytest.mark.controlplane, pytest.mark.integration]

CNPG_CRD = kubectl_.REPO_ROOT / "manifests" / "test-crds" / "postgresql.cnpg.io_clusters.yaml"
PROXY = "paris"
IMAGE = "ghcr.io/weather-proxy/proxy:0.1.0"

SPECS: dict[str, tuple[dict[str, Any] | None, bool]] = {
    "statefulset": (None, False),
    "cnpg": (None, True),
    "cnpg-customised": (
        {
            "database": {
                "managed": {
                    "image": "registry.example.com/postgres:16",
                    "instances": 3,
                    "storage": {"size": "50Gi", "storageClassName": "fast"},
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                }
            }
        },
        True,
    ),
    "external": (
        {"database": {"mode": "External", "external": {"urlSecretRef": {"name": "db", "key": "url"}}}},
        False,
    ),
}


@pytest.fixture(scope="module")
def with_cnpg_crd(kubectl: kubectl_.Kubectl) -> Iterator[kubectl_.Kubectl]:
    kubectl.install_crds(CNPG_CRD)
    yield kubectl
    # The control plane is shared by the session: other modules expect no CloudNativePG.
    kubectl.uninstall_crds(CNPG_CRD)


@pytest.mark.parametrize("case", sorted(SPECS))
def test_server_side_dry_run_accepts_the_database_objects(
    case: str, with_cnpg_crd: kubectl_.Kubectl, cluster: fleet.Cluster
) -> None:
    spec, cnpg = SPECS[case]
    parsed = analytics_api.AnalyticsSpec.model_validate(spec) if spec is not None else None
    analytics = analytics_api.resolve(parsed, config.Environment.PRODUCTION)
    namespace = cluster.namespace
    objects = postgres.render_database(PROXY, namespace, analytics, cnpg).objects
    job = postgres.render_erase_job(PROXY, namespace, "weather/team-a", "uid-of-team-a", IMAGE, analytics)
    assert job is not None
    objects += [postgres.render_password_secret(PROXY, namespace, fleets.new_password()), job]
    out = with_cnpg_crd.run(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--field-manager=weather-operator",
        "-o",
        "name",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(objects, sort_keys=False),
    )
    accepted = out.split()
    assert len(accepted) == len(objects), out
    if cnpg:
        assert "cluster.postgresql.cnpg.io/paris-analytics" in accepted
    # Nothing was stored.
    assert not cluster.kubectl.exists("secret", "paris-postgres-auth", namespace=namespace)


def test_an_invalid_statefulset_is_refused_so_the_dry_run_can_fail(
    with_cnpg_crd: kubectl_.Kubectl, cluster: fleet.Cluster
) -> None:
    analytics = analytics_api.resolve(None, config.Environment.PRODUCTION)
    sts = postgres.render_statefulset(PROXY, cluster.namespace, analytics)
    sts["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    with pytest.raises(kubectl_.KubectlError, match="containerPort"):
        with_cnpg_crd.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(sts))
