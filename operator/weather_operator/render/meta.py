"""``metadata`` and other small blocks shared by the renderers."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from weather_operator.render import names

# The proxy image's user: the proxy pods and the history erasure Jobs (same image) run as it.
PROXY_USER = 10001


def metadata(
    name: str,
    namespace: str,
    proxy: str,
    component: str,
    *,
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Object metadata with the standard labels (extra labels never override them)."""
    out: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {**(extra_labels or {}), **names.labels(proxy, component)},
    }
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def secret(
    name: str,
    namespace: str,
    proxy: str,
    component: str,
    data: dict[str, str],
    kind: str = "Opaque",
) -> dict[str, Any]:
    """A Secret of the fleet holding ``data`` (text values, base64-encoded here)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": metadata(name, namespace, proxy, component),
        "data": {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()},
    }


def restricted_container_security_context(user: int) -> dict[str, Any]:
    """The container securityContext of the Pod Security "restricted" profile."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_pod_security_context(user: int) -> dict[str, Any]:
    """The pod securityContext of the Pod Security "restricted" profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    """A child named without its body: one that must not exist for the spec."""

    api_version: str
    kind: str
    name: str
