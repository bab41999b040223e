"""A kmock Kubernetes emulator the operator can run against, and a kubeconfig pointing at it.

kmock merges patches as plain dicts and 404s a PATCH of a missing object; a real API
server creates the object on server-side apply. ``ApplyingEmulator`` adds just that.
"""

from __future__ import annotations

import gzip
import importlib.resources
import pathlib
from typing import Any

import kmock
import pytest
import yaml
from weather_operator.api import constants

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
def kubeconfig(
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
