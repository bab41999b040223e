"""The operator's Kubernetes client: server-side apply, create-once, read, delete, status patches.

Kopf is not a client library; this module talks to the API server with the official
``kubernetes`` client (``DynamicClient.request``), run in worker threads so the event
loop never blocks. URLs come from a fixed table of the kinds the operator manages
(no discovery round-trips, no discovery cache file on a read-only root filesystem).

Every write uses one field manager (``weather-operator``). Server-side apply with
``force=true`` makes the operator the owner of exactly the fields it renders: a field
it leaves out (e.g. a Deployment's ``replicas`` under an HPA) stays with whoever set it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client
import kubernetes.dynamic
import kubernetes.dynamic.exceptions

from weather_operator.api import constants

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"


@dataclasses.dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API: ``api_version`` + ``plural`` (all managed kinds are namespaced)."""

    api_version: str
    kind: str
    plural: str

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        path = f"{prefix}/namespaces/{namespace}/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


KINDS: Mapping[tuple[str, str], Kind] = {
    (kind.api_version, kind.kind): kind
    for kind in (
        Kind("v1", "ConfigMap", "configmaps"),
        Kind("v1", "Secret", "secrets"),
        Kind("v1", "Service", "services"),
        Kind("v1", "ServiceAccount", "serviceaccounts"),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("apps/v1", "StatefulSet", "statefulsets"),
        Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Kind("networking.k8s.io/v1", "Ingress", "ingresses"),
        Kind("rbac.authorization.k8s.io/v1", "Role", "roles"),
        Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        Kind("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
        Kind("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules"),
        Kind(constants.API_VERSION, constants.WEATHERPROXY_KIND, constants.WEATHERPROXY_PLURAL),
        Kind(constants.API_VERSION, constants.APIKEY_KIND, constants.APIKEY_PLURAL),
    )
}

SECRET = KINDS["v1", "Secret"]
DEPLOYMENT = KINDS["apps/v1", "Deployment"]
STATEFULSET = KINDS["apps/v1", "StatefulSet"]
WEATHERPROXY = KINDS[constants.API_VERSION, constants.WEATHERPROXY_KIND]
APIKEY = KINDS[constants.API_VERSION, constants.APIKEY_KIND]


class UnknownKindError(LookupError):
    """The renderer produced a kind this client has no URL for (a bug, not a runtime condition)."""


class ApiError(Exception):
    """The API server refused a request; ``status`` is its HTTP status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


def kind_of(api_version: str, kind: str) -> Kind:
    try:
        return KINDS[api_version, kind]
    except KeyError:
        raise UnknownKindError(f"no API path known for {api_version} {kind}") from None


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The controller owner reference to ``owner`` (garbage collection deletes the child with it)."""
    metadata = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def adopt(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` in the owner's namespace, with the owner as its controller."""
    metadata = dict(obj.get("metadata") or {})
    metadata["namespace"] = owner["metadata"]["namespace"]
    metadata["ownerReferences"] = [owner_reference(owner)]
    return {**obj, "metadata": metadata}


class _NoDiscovery:
    """A DynamicClient discoverer that discovers nothing: this client uses the KINDS table."""

    def __init__(self, client: Any, cache_file: Any) -> None:
        self.client = client


class Cluster:
    """Async facade over the official client; one per operator process."""

    def __init__(self, api_client: kubernetes.client.ApiClient, request_timeout: float = 60.0) -> None:
        self._dynamic = kubernetes.dynamic.DynamicClient(  # type: ignore[no-untyped-call]
            api_client, discoverer=_NoDiscovery
        )
        self._timeout = request_timeout

    async def _request(self, method: str, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        call = functools.partial(
            self._dynamic.request,
            method,
            path,
            body=body,
            serialize=False,
            _request_timeout=self._timeout,
            **params,
        )
        try:
            response = await asyncio.to_thread(call)
        except kubernetes.dynamic.exceptions.DynamicApiError as exc:
            raise _api_error(exc) from None
        data = response.data
        if not data:
            return {}
        decoded = json.loads(data)
        return decoded if isinstance(decoded, dict) else {}

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of ``obj`` under the operator's field manager, taking over conflicts."""
        kind = kind_of(obj["apiVersion"], obj["kind"])
        metadata = obj["metadata"]
        return await self._request(
            "patch",
            kind.path(metadata["namespace"], metadata["name"]),
            body=dict(obj),
            content_type=APPLY_PATCH,
            field_manager=constants.FIELD_MANAGER,
            force_conflicts=True,
        )

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create ``obj``; None when it already exists (409): whatever exists is kept."""
        kind = kind_of(obj["apiVersion"], obj["kind"])
        try:
            return await self._request(
                "post",
                kind.path(obj["metadata"]["namespace"]),
                body=dict(obj),
                field_manager=constants.FIELD_MANAGER,
            )
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it (or its kind) does not exist."""
        try:
            return await self._request("get", kind.path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete (foreground GC of its dependents is the API server's job); False when absent."""
        try:
            await self._request("delete", kind.path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch (``None`` values delete fields), optionally of a subresource."""
        return await self._request(
            "patch",
            kind.path(namespace, name, subresource),
            body=dict(patch),
            content_type=MERGE_PATCH,
            field_manager=constants.FIELD_MANAGER,
        )

    async def patch_status(
        self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self.patch(kind, namespace, name, {"status": dict(status)}, subresource="status")

    async def served_kinds(self, api_version: str) -> set[str]:
        """Kinds served in ``api_version`` (e.g. ``monitoring.coreos.com/v1``); empty when unknown."""
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            listing = await self._request("get", prefix)
        except ApiError as exc:
            if exc.status in {404, 503}:  # not installed, or its aggregated server is down
                return set()
            raise
        return {
            str(r.get("kind")) for r in listing.get("resources") or [] if "/" not in str(r.get("name", ""))
        }


def _api_error(exc: kubernetes.dynamic.exceptions.DynamicApiError) -> ApiError:
    status = int(getattr(exc, "status", 0) or 0)
    reason = str(getattr(exc, "reason", "") or "")
    message = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            message = str(json.loads(body).get("message", ""))
        except (ValueError, AttributeError):
            message = str(body)[:500]
    return ApiError(status, reason, message)
