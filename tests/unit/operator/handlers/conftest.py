"""Fixtures of the handler tests: the real local control plane (tests marked ``controlplane``).

``kubeconfig`` (session) + ``kubectl`` (CRDs installed) + ``namespace`` (fresh per test) +
``state`` (the operator's runtime state connected to the API server). kmock is not used:
the handlers rely on server-side apply, field ownership, generations and garbage
collection, none of which it emulates.
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
from weather_operator.handlers import runtime


@pytest.fixture(scope="session")
def kubectl(kubeconfig: pathlib.Path) -> kubectl_.Kubectl:
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
def configuration(kubeconfig: pathlib.Path) -> kubernetes.client.Configuration:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return configuration


@pytest.fixture
async def cluster(configuration: kubernetes.client.Configuration) -> AsyncIterator[apply.Cluster]:
    """The operator's API client, on the real API server."""
    client = apply.Cluster(apply.Credentials.from_configuration(configuration))
    yield client
    await client.close()


@pytest.fixture
async def state(configuration: kubernetes.client.Configuration) -> AsyncIterator[runtime.State]:
    """The operator's runtime state connected to the real API server (indexes are plain dicts)."""
    own = settings.OperatorSettings(monitoring_recheck_seconds=0.01)
    state = runtime.State(settings=own, fleets={}, apikeys={})
    state.connect(configuration)
    yield state
    await state.close()
