"""Fixtures of the handler tests: a kmock emulator, and the real local control plane.

* ``cluster_api`` / ``kmock_kubeconfig``: kmock's Kubernetes emulator. kmock merges patches
  as plain dicts and 404s a PATCH of a missing object; a real API server creates the
  object on server-side apply. ``ApplyingEmulator`` adds just that.
* ``kubeconfig`` (session) + ``namespace`` + ``state``: the real kube-apiserver of
  tests/support/controlplane.py, with the CRDs installed, a fresh namespace per test and
  the operator's runtime state connected to it (tests marked ``controlplane``).
"""

from __future__ import annotations

import gzip
import importlib.resources
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import kmock
import kubernetes.client
import kubernetes.config
import pytest
import yaml
from weather_operator import settings
from weather_operator.api import constants
from weather_operator.handlers import runtime

from hack import kubectl as kubectl_
from tests.support.controlplane import kube_controlplane, kubeconfig  # noqa: F401

CUSTOM = {
    f"{constants.GROUP}/{constants.VERSION}/{constants.WEATHERPROXY_PLURAL}": constants.WEATHERPROXY_KIND,
    f"{constants.GROUP}/{constants.VERSION}/{constants.APIKEY_PLURAL}": constants.APIKEY_KIND,
}


class ApplyingEmulator(kmock.KubernetesEmulator):
    """KubernetesEmulator + "server-side apply creates a missing object"."""

    async def _handle(self, request: kmock.Request) -> Any:
        content_type = request.headers.get("Content-Type", "")
        if (
            request.action == kmock.action.UPDATE
            and content_type.startswith("application/apply-patch")
            and request.resource is not None
            and request.name is not None
            and not request.subresource
        ):
            key = (request.resource, request.namespace, request.name)
            if key not in self.objects or self.objects[key].deleted:
                body = dict(request.data)
                body.setdefault("metadata", {}).update(uid=f"uid-{request.name}", resourceVersion="1")
                async with self._lock:
                    if key not in self.objects:
                        self.objects[key] = body
                    else:
                        self.objects[key].create(body)
        return await super()._handle(request)


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    return {"cls": ApplyingEmulator}


@pytest.fixture
def cluster_api(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    """The emulator with the built-in resources and the two custom resources declared."""
    # kmock's own load_bundled() uses a deprecated importlib API (warnings are errors here).
    bundled = importlib.resources.files("kmock._internal").joinpath("resources.json.gz").read_bytes()
    kmock.resources.load_data(gzip.decompress(bundled))
    for resource, kind in CUSTOM.items():
        kmock.resources[resource] = kmock.ResourceInfo(
            kind=kind, namespaced=True, subresources={"status"}, verbs={"get", "list", "watch", "patch"}
        )
    return kmock


@pytest.fixture
def kmock_kubeconfig(
    cluster_api: kmock.KubernetesEmulator, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> pathlib.Path:
    """A kubeconfig for the emulator, exported as $KUBECONFIG (the operator's real login path)."""
    path = tmp_path / "kubeconfig"
    server = str(cluster_api.url).rstrip("/")
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": server}}],
                "users": [{"name": "kmock", "user": {"token": "test-token"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
                "current-context": "kmock",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


@pytest.fixture(scope="session")
def kubectl(kubeconfig: pathlib.Path) -> kubectl_.Kubectl:  # noqa: F811
    kubectl = kubectl_.Kubectl(kubeconfig)
    kubectl.install_crds()
    return kubectl


@pytest.fixture
def namespace(kubectl: kubectl_.Kubectl) -> Iterator[str]:
    """A fresh namespace on the real API server, deleted (without waiting) afterwards."""
    name = f"h-{uuid.uuid4().hex[:10]}"
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def api_client(kubeconfig: pathlib.Path) -> Iterator[kubernetes.client.ApiClient]:  # noqa: F811
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    client = kubernetes.client.ApiClient(configuration)
    yield client
    client.close()


@pytest.fixture
async def state(api_client: kubernetes.client.ApiClient) -> AsyncIterator[runtime.State]:
    """The operator's runtime state connected to the real API server (indexes are plain dicts)."""
    own = settings.OperatorSettings(monitoring_recheck_seconds=0.01)
    state = runtime.State(settings=own, fleets={}, apikeys={})
    state.connect(api_client)
    state._api_client = None  # the fixture closes the client
    yield state
    await state.close()
