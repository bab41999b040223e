"""The CRDs install, and the real API server rejects every invalid spec of the models' bad-spec table.

The table (tests/unit/operator/api/bad_specs.py) is shared with the unit tests, which
check pydantic and the CEL rules offline; here the API server's OpenAPI schema and CEL
evaluation are the judges. No operator is needed: validation happens on write.
"""

from __future__ import annotations

import pytest
import yaml

from hack import kubectl as kubectl_
from tests.integration.operator import fleet
from tests.unit.operator.api import bad_specs
from weather_operator.api import constants

pytestmark = [pytest.mark.controlplane, pytest.mark.integration]


def _manifest(kind: str, name: str, namespace: str, spec: dict) -> dict:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_crds_are_established_with_their_subresources(kubectl: kubectl_.Kubectl, crds: list[str]) -> None:
    assert set(crds) == {
        f"{constants.WEATHERPROXY_PLURAL}.{constants.GROUP}",
        f"{constants.APIKEY_PLURAL}.{constants.GROUP}",
    }
    wp = kubectl.get("crd", f"{constants.WEATHERPROXY_PLURAL}.{constants.GROUP}")
    version = next(v for v in wp["spec"]["versions"] if v["name"] == constants.VERSION)
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert "status" in version["subresources"]
    resources = kubectl.run("api-resources", f"--api-group={constants.GROUP}", "-o", "name")
    assert {"weatherproxies.weatherproxy.dev", "apikeys.weatherproxy.dev"} <= set(resources.split())


@pytest.mark.parametrize("kind", [bad_specs.WEATHERPROXY, bad_specs.APIKEY])
def test_the_valid_base_spec_is_accepted(cluster: fleet.Cluster, kind: str) -> None:
    base = (
        bad_specs.VALID_WEATHERPROXY_SPEC if kind == bad_specs.WEATHERPROXY else bad_specs.VALID_APIKEY_SPEC
    )
    out = cluster.kubectl.run(
        "create", "--dry-run=server", "-o", "name", "-f", "-",
        stdin=yaml.safe_dump(_manifest(kind, "valid", cluster.namespace, base)),
    )  # fmt: skip
    assert out.strip()


@pytest.mark.parametrize("bad", bad_specs.BAD_SPECS, ids=lambda b: f"{b.kind}-{b.name}")
def test_the_api_server_rejects_an_invalid_spec_naming_the_field(
    cluster: fleet.Cluster, bad: bad_specs.BadSpec
) -> None:
    manifest = _manifest(bad.kind, "bad", cluster.namespace, bad.spec())
    with pytest.raises(kubectl_.KubectlError) as excinfo:
        cluster.kubectl.run("create", "-f", "-", stdin=yaml.safe_dump(manifest))
    message = excinfo.value.stderr
    assert "is invalid" in message or "Invalid value" in message or "Unsupported value" in message, message
    assert bad.error in message
    kind_plural = "wp" if bad.kind == bad_specs.WEATHERPROXY else "wpk"
    assert not cluster.exists(kind_plural, "bad")
