"""The local control plane behaves like a real cluster (apiserver + controller-manager)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

from devcluster.controlplane import fake_node_manifest  # noqa: E402
from devcluster.fixtures import KubeControlPlane  # noqa: E402

pytestmark = pytest.mark.controlplane

T = TypeVar("T")


def eventually(
    fn: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.5, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = fn()
            if result:
                return result
            last = result
        except ApiException as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or fn} (last: {last!r})")


@pytest.fixture(scope="module")
def api(kube_controlplane: KubeControlPlane) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(kube_controlplane.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"cp-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_server_is_reachable(kube_controlplane: KubeControlPlane, api: client.ApiClient) -> None:
    assert kube_controlplane.server.startswith("https://127.0.0.1:")
    assert kube_controlplane.kubeconfig.is_file()
    version = client.VersionApi(api).get_code()
    assert version.major == "1"


def test_default_service_account_appears_in_new_namespace(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    sa = eventually(
        lambda: core.read_namespaced_service_account("default", namespace),
        what="default ServiceAccount",
    )
    assert sa.metadata.name == "default"
    # kube-root-ca.crt is published by the controller-manager too.
    cm = eventually(lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace), what="root CA")
    assert "BEGIN CERTIFICATE" in cm.data["ca.crt"]


def test_service_account_token_request(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    eventually(lambda: core.read_namespaced_service_account("default", namespace), what="default SA")
    tr = core.create_namespaced_service_account_token(
        "default",
        namespace,
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[])),
    )
    assert tr.status.token.count(".") == 2  # a signed JWT


def _deployment(name: str, node_selector: dict[str, str] | None = None) -> client.V1Deployment:
    """Two replicas of a web server, labelled ``app=<name>``."""
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    node_selector=node_selector,
                    containers=[client.V1Container(name="web", image="nginx:1.27")],
                ),
            ),
        ),
    )


def test_deployment_creates_replicaset_and_pods(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, _deployment("web"))
    rs = eventually(
        lambda: apps.list_namespaced_replica_set(namespace, label_selector="app=web").items,
        what="ReplicaSet",
    )
    assert rs[0].metadata.owner_references[0].kind == "Deployment"

    def two_pods() -> list[Any] | None:
        items = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return items if len(items) == 2 else None

    pods = eventually(
        two_pods,
        what="2 pods",
    )
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods)


def test_server_side_apply_configmap(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied", "namespace": namespace},
        "data": {"a": "1"},
    }

    def apply(obj: dict[str, Any], manager: str) -> Any:
        return core.patch_namespaced_config_map(
            "applied",
            namespace,
            obj,
            field_manager=manager,
            force=True,
            _content_type="application/apply-patch+yaml",  # server-side apply
        )

    apply(body, "test-a")
    apply({**body, "data": {"b": "2"}}, "test-b")
    cm = core.read_namespaced_config_map("applied", namespace)
    assert cm.data == {"a": "1", "b": "2"}  # two managers, merged
    managers = {m.manager for m in cm.metadata.managed_fields}
    assert {"test-a", "test-b"} <= managers
    apply({**body, "data": {}}, "test-a")  # test-a gives up "a"
    assert core.read_namespaced_config_map("applied", namespace).data == {"b": "2"}


def test_owner_reference_garbage_collection(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"x": "y"})
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="child",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            ),
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    eventually(child_gone, what="garbage collection of the child ConfigMap")


def test_crd_cel_validation_rejects_bad_object(api: client.ApiClient, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(api)
    custom = client.CustomObjectsApi(api)
    group = f"g{uuid.uuid4().hex[:6]}.test.weatherproxy.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "minReplicas": {"type": "integer"},
                                        "maxReplicas": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.minReplicas <= self.maxReplicas",
                                            "message": "minReplicas must not exceed maxReplicas",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)
    try:

        def established() -> bool:
            got = ext.read_custom_resource_definition(f"widgets.{group}")
            return any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or []))

        eventually(established, what="CRD Established")

        def obj(name: str, lo: int, hi: int) -> dict[str, Any]:
            return {
                "apiVersion": f"{group}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"minReplicas": lo, "maxReplicas": hi},
            }

        # Discovery can lag a moment behind Established.
        eventually(
            lambda: custom.create_namespaced_custom_object(
                group, "v1", namespace, "widgets", obj("good", 1, 3)
            ),
            what="create valid Widget",
        )
        with pytest.raises(ApiException) as err:
            custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", obj("bad", 5, 2))
        assert err.value.status == 422
        assert "minReplicas must not exceed maxReplicas" in err.value.body
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


def test_kwok_runs_pods_on_fake_node(
    kube_controlplane: KubeControlPlane, api: client.ApiClient, namespace: str
) -> None:
    if not kube_controlplane.kwok:
        pytest.skip("kwok not running (not built, WPF_CONTROLPLANE_KWOK=0, or a reused cluster without it)")
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    node_name = f"kwok-{uuid.uuid4().hex[:6]}"
    core.create_node(fake_node_manifest(node_name))
    try:
        eventually(
            lambda: any(
                c.type == "Ready" and c.status == "True"
                for c in (core.read_node(node_name).status.conditions or [])
            ),
            what="fake node Ready",
        )
        apps.create_namespaced_deployment(namespace, _deployment("kwok-web", node_selector={"type": "kwok"}))

        def available() -> bool:
            d = apps.read_namespaced_deployment("kwok-web", namespace)
            return (d.status.ready_replicas or 0) == 2 and (d.status.available_replicas or 0) == 2

        eventually(available, timeout=90, what="Deployment ready on the kwok node")
        pods = core.list_namespaced_pod(namespace, label_selector="app=kwok-web").items
        assert all(p.status.phase == "Running" and p.spec.node_name.startswith("kwok-") for p in pods)
    finally:
        core.delete_node(node_name)
