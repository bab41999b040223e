"""Integration-test fixtures: a real local Kubernetes control plane.

Only control-plane fixtures live here; see tests/support/controlplane.py.
``pytest_collection_finish`` builds the binaries (when a collected test needs
them) before the first test starts, outside any per-test timeout.
"""

from tests.support.controlplane import (  # noqa: F401
    kube_controlplane,
    kubeconfig,
    pytest_collection_finish,
)
