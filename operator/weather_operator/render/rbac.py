"""The proxy pods' identity: a ServiceAccount that may only read the fleet's keys Secrets.

The proxy watches its keys Secrets through the API server, so a key change reaches every
pod with the watch event rather than with the kubelet's re-projection of the volume (up
to a minute or more). Its Role grants ``get``, ``list`` and ``watch`` on those Secrets
by name and nothing else: no other Secret, no other kind, no write. The operator may
create it because it holds these rights itself (RBAC forbids granting more than one has).
"""

from __future__ import annotations

from typing import Any

from weather_operator.render import meta, names

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"


def render_service_account(proxy: str, namespace: str) -> dict[str, Any]:
    """The ServiceAccount; its token reaches the pods only through the Deployment's own projected volume."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta.metadata(names.service_account_name(proxy), namespace, proxy, names.PROXY),
        "automountServiceAccountToken": False,
    }


def render_role(proxy: str, namespace: str, shards: int = 1) -> dict[str, Any]:
    """Read access to the keys Secrets by name (a list or watch needs a ``metadata.name`` field selector)."""
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "Role",
        "metadata": meta.metadata(names.keys_reader_name(proxy), namespace, proxy, names.PROXY),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": names.keys_secret_names(proxy, shards),
                "verbs": ["get", "list", "watch"],
            }
        ],
    }


def render_role_binding(proxy: str, namespace: str) -> dict[str, Any]:
    """The Role bound to the proxy pods' ServiceAccount."""
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "RoleBinding",
        "metadata": meta.metadata(names.keys_reader_name(proxy), namespace, proxy, names.PROXY),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": names.keys_reader_name(proxy),
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": names.service_account_name(proxy), "namespace": namespace}
        ],
    }
