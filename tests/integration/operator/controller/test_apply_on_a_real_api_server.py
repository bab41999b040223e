"""The apply layer against a real kube-apiserver: SSA semantics, create-once, 404s, status patches.

kmock has no server-side apply semantics (field ownership, no-op applies), so these run
against the local control plane.
"""

from __future__ import annotations

from typing import Any

import pytest

from weather_operator import apply
from weather_operator.api import constants

pytestmark = pytest.mark.controlplane


def _config_map(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": namespace, "labels": {"a": "b"}},
        "data": data,
    }


def _deployment(namespace: str, replicas: int | None) -> dict[str, Any]:
    labels = {"app": "x"}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": "example.invalid/x:1"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": namespace},
        "spec": spec,
    }


def _owns(obj: dict[str, Any], field: str) -> bool:
    for entry in obj["metadata"].get("managedFields") or []:
        if entry["manager"] == constants.FIELD_MANAGER and field in (entry.get("fieldsV1") or {}).get(
            "f:spec", {}
        ):
            return True
    return False


async def test_server_side_apply_creates_then_is_a_no_op_then_updates(
    api: apply.Cluster, namespace: str
) -> None:
    created = await api.apply(_config_map(namespace, {"k": "1"}))
    assert created["data"] == {"k": "1"}
    again = await api.apply(_config_map(namespace, {"k": "1"}))
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    changed = await api.apply(_config_map(namespace, {"k": "2"}))
    assert changed["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    assert changed["data"] == {"k": "2"}


async def test_a_field_left_out_of_the_apply_is_released_to_other_managers(
    api: apply.Cluster, namespace: str
) -> None:
    with_replicas = await api.apply(_deployment(namespace, 3))
    assert _owns(with_replicas, "f:replicas")
    without = await api.apply(_deployment(namespace, None))
    assert not _owns(without, "f:replicas")


async def test_create_keeps_what_exists_and_get_delete_report_absence(
    api: apply.Cluster, namespace: str
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": namespace},
        "stringData": {"password": "first"},
    }
    assert await api.create(secret) is not None
    assert await api.create({**secret, "stringData": {"password": "second"}}) is None
    stored = await api.get(apply.SECRET, namespace, "s")
    assert stored is not None
    assert stored["data"]["password"] == "Zmlyc3Q="
    assert await api.delete(apply.SECRET, namespace, "s") is True
    assert await api.delete(apply.SECRET, namespace, "s") is False
    assert await api.get(apply.SECRET, namespace, "s") is None


async def test_merge_patch_and_status_patch_of_a_custom_resource(api: apply.Cluster, namespace: str) -> None:
    body = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.WEATHERPROXY_KIND,
        "metadata": {"name": "wp", "namespace": namespace},
        "spec": {"environment": "dev"},
    }
    await api.apply(body)
    await api.patch(apply.WEATHERPROXY, namespace, "wp", {"metadata": {"annotations": {"x": "y"}}})
    patched = await api.patch_status(apply.WEATHERPROXY, namespace, "wp", {"apiKeys": 3})
    assert patched["status"]["apiKeys"] == 3
    stored = await api.get(apply.WEATHERPROXY, namespace, "wp")
    assert stored is not None
    assert stored["metadata"]["annotations"]["x"] == "y"
    assert stored["status"]["apiKeys"] == 3


async def test_api_errors_carry_status_and_message(api: apply.Cluster, namespace: str) -> None:
    bad = _config_map(namespace, {"k": "1"})
    bad["metadata"]["name"] = "Not_A_Valid_Name"
    with pytest.raises(apply.ApiError) as caught:
        await api.apply(bad)
    assert caught.value.status == 422
    assert "Not_A_Valid_Name" in str(caught.value)


async def test_served_kinds_of_installed_and_missing_api_groups(
    api: apply.Cluster,
) -> None:
    assert {"WeatherProxy", "ApiKey"} <= await api.served_kinds(constants.API_VERSION)
    assert "ConfigMap" in await api.served_kinds("v1")
    assert await api.served_kinds("nothing.example.com/v1") == set()


def test_paths_owner_references_and_unknown_kinds() -> None:
    assert apply.SECRET.path("ns", "s") == "/api/v1/namespaces/ns/secrets/s"
    assert apply.WEATHERPROXY.path("ns", "wp", "status") == (
        "/apis/weatherproxy.dev/v1alpha1/namespaces/ns/weatherproxies/wp/status"
    )
    owner = {"apiVersion": "v1", "kind": "K", "metadata": {"name": "o", "namespace": "ns", "uid": "u"}}
    adopted = apply.adopt({"kind": "ConfigMap", "metadata": {"name": "c"}}, owner)
    assert adopted["metadata"]["namespace"] == "ns"
    assert adopted["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "K",
            "name": "o",
            "uid": "u",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    with pytest.raises(apply.UnknownKindError):
        apply.kind_of("v9", "Nothing")
