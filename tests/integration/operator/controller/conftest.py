"""Fixtures of the controller tests on the real local control plane (tests marked ``controlplane``).

``namespace`` (fresh per test, the CRDs installed) + ``api`` (the operator's API client) +
``controller`` (the operator's controller connected to the API server, its indexes plain
dicts, its workers started only by the tests that want them). kmock is not used: the
reconcilers rely on server-side apply, field ownership, generations and garbage collection,
none of which it emulates.
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator

import kubernetes.client
import kubernetes.config
import pytest

from hack import kubectl as kubectl_
from weather_operator import apply, settings
from weather_operator.controller import indexes, runtime


@pytest.fixture
def namespace(kubectl: kubectl_.Kubectl, crds: list[str]) -> Iterator[str]:
    """A fresh namespace on the real API server, deleted (without waiting) afterwards."""
    name = f"h-{uuid.uuid4().hex[:10]}"
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def configuration(kubeconfig: pathlib.Path) -> kubernetes.client.Configuration:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return configuration


@pytest.fixture
async def api(configuration: kubernetes.client.Configuration) -> AsyncIterator[apply.Cluster]:
    """The operator's API client, on the real API server."""
    client = apply.Cluster(apply.Credentials.from_configuration(configuration))
    yield client
    await client.close()


@pytest.fixture
async def controller(
    configuration: kubernetes.client.Configuration, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[runtime.Controller]:
    """The operator's controller connected to the real API server (indexes are plain dicts)."""
    own = settings.OperatorSettings(monitoring_recheck_seconds=0.01)
    controller = runtime.Controller(own, indexes.Indexes({}, {}))
    # The tests run the reconciles themselves: a Kopf adapter they call must not start the queue's
    # workers (which would race them) or the periodic loop; a test that wants workers starts them.
    monkeypatch.setattr(controller, "start", lambda: None)
    controller.connection.connect(configuration)
    yield controller
    await controller.close()
