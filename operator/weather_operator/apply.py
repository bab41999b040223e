"""The operator's Kubernetes client: server-side apply, create-once, read, delete, status patches.

Kopf is not a client library (its API access is private); this module talks to the API
server over aiohttp, the async HTTP stack Kopf itself runs on, so the operator has one
event loop and no worker threads (bench/operator_client.py compares it with the official
client run in threads). Credentials come from the official ``kubernetes`` client's
kubeconfig and in-cluster loading. URLs come from a fixed table of the kinds the operator
manages (no discovery round-trips, no discovery cache file on a read-only root filesystem).

Every write uses one field manager (``weather-operator``). Server-side apply with
``force=true`` makes the operator the owner of exactly the fields it renders: a field
it leaves out (e.g. a Deployment's ``replicas`` under an HPA) stays with whoever set it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import kubernetes.client

from weather_operator.api import constants

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"


@dataclasses.dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API: ``api_version`` + ``plural`` (all managed kinds are namespaced)."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True  # a cluster-scoped kind ignores the namespace of a path

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        path = f"{prefix}{scope}/{self.plural}"
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
        Kind("v1", "Pod", "pods"),
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
        Kind("monitoring.grafana.com/v1alpha2", "PodLogs", "podlogs"),
        Kind("postgresql.cnpg.io/v1", "Cluster", "clusters"),
        Kind("batch/v1", "Job", "jobs"),
        Kind("cert-manager.io/v1", "Certificate", "certificates"),
        Kind("cert-manager.io/v1", "Issuer", "issuers"),
        Kind("cert-manager.io/v1", "ClusterIssuer", "clusterissuers", namespaced=False),
        Kind(constants.API_VERSION, constants.WEATHERPROXY_KIND, constants.WEATHERPROXY_PLURAL),
        Kind(constants.API_VERSION, constants.APIKEY_KIND, constants.APIKEY_PLURAL),
    )
}

SECRET = KINDS["v1", "Secret"]
POD = KINDS["v1", "Pod"]
JOB = KINDS["batch/v1", "Job"]
CNPG_CLUSTER = KINDS["postgresql.cnpg.io/v1", "Cluster"]
CERTIFICATE = KINDS["cert-manager.io/v1", "Certificate"]
ISSUER = KINDS["cert-manager.io/v1", "Issuer"]
CLUSTER_ISSUER = KINDS["cert-manager.io/v1", "ClusterIssuer"]
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


@dataclasses.dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to the API server, read from a ``kubernetes`` client configuration.

    The kubeconfig and in-cluster parsing stay with the official client (``handlers.login``);
    only the transport is aiohttp, the HTTP stack Kopf itself runs on.
    """

    server: str
    ca_path: str | None = None
    verify: bool = True
    certificate_path: str | None = None
    private_key_path: str | None = None
    configuration: Any = None  # for the bearer token, which an in-cluster client refreshes

    @classmethod
    def from_configuration(cls, configuration: kubernetes.client.Configuration) -> Credentials:
        return cls(
            server=str(configuration.host).rstrip("/"),
            ca_path=configuration.ssl_ca_cert,
            verify=bool(configuration.verify_ssl),
            certificate_path=configuration.cert_file,
            private_key_path=configuration.key_file,
            configuration=configuration,
        )

    def authorization(self) -> str | None:
        """The ``Authorization`` header: the current token (a projected one is re-read as it rotates)."""
        configuration = self.configuration
        if configuration is None:
            return None
        hook = getattr(configuration, "refresh_api_key_hook", None)
        if hook is not None:
            hook(configuration)
        header = configuration.get_api_key_with_prefix(
            "authorization"
        ) or configuration.get_api_key_with_prefix("BearerToken")
        if header and " " not in header:
            header = f"Bearer {header}"
        return header or None

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https:"):
            return False
        context = ssl.create_default_context(cafile=self.ca_path)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.certificate_path:
            context.load_cert_chain(self.certificate_path, self.private_key_path)
        return context


class Cluster:
    """The operator's async client: one aiohttp session (a bounded connection pool) per login."""

    def __init__(
        self, credentials: Credentials, request_timeout: float = 60.0, connections: int = 32
    ) -> None:
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self.requests: collections.Counter[str] = collections.Counter()  # by verb, for the metrics

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._credentials.ssl_context())
            self._session = aiohttp.ClientSession(
                base_url=self._credentials.server, connector=connector, timeout=self._timeout
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            # aiohttp's documented graceful shutdown: TLS connections finish closing in the loop.
            await asyncio.sleep(0.25)

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        field_manager: str | None = None,
        force_conflicts: bool = False,
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        params: dict[str, str] = dict(query or {})
        if field_manager is not None:
            params["fieldManager"] = field_manager
        if force_conflicts:
            params["force"] = "true"
        headers = {"Accept": "application/json"}
        authorization = self._credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body, separators=(",", ":")).encode()
        self.requests[method] += 1
        session = self._open()
        try:
            async with session.request(
                method.upper(), path, params=params, data=data, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
                reason = response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(0, type(exc).__name__, str(exc) or repr(exc)) from None
        if status >= 400:
            raise _api_error(status, reason, raw)
        if not raw:
            return {}
        decoded = json.loads(raw)
        return decoded if isinstance(decoded, dict) else {}

    async def apply(
        self, obj: Mapping[str, Any], *, field_manager: str = constants.FIELD_MANAGER
    ) -> dict[str, Any]:
        """Server-side apply of ``obj`` under the operator's field manager, taking over conflicts."""
        kind = kind_of(obj["apiVersion"], obj["kind"])
        metadata = obj["metadata"]
        return await self._request(
            "patch",
            kind.path(metadata["namespace"], metadata["name"]),
            body=dict(obj),
            content_type=APPLY_PATCH,
            field_manager=field_manager,
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

    async def list(self, kind: Kind, namespace: str, label_selector: str, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` objects of ``kind`` in ``namespace`` matching ``label_selector``."""
        query = {"labelSelector": label_selector, "limit": str(limit)}
        found = await self._request("get", kind.path(namespace), query=query)
        return [dict(item) for item in found.get("items") or []]

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


def _api_error(status: int, reason: str, raw: bytes) -> ApiError:
    message = ""
    if raw:
        try:
            message = str(json.loads(raw).get("message", ""))
        except (ValueError, AttributeError):
            message = raw[:500].decode(errors="replace")
    return ApiError(status, reason, message)
