"""Integration-test fixtures: a real local Kubernetes control plane.

Only control-plane fixtures live here; see tests/support/controlplane.py.
"""

from tests.support.controlplane import kube_controlplane, kubeconfig  # noqa: F401
