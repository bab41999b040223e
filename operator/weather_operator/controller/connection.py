"""The operator's connection to the API server: its client and the discovery answers built on it.

Kopf logs in again on a 401 (``handlers.login``): the client is rebuilt with the fresh
credentials, and the previous one closed in the background. Until the first login, every
use is a ``kopf.TemporaryError`` (the queue retries).
"""

from __future__ import annotations

import kopf
import kubernetes.client

from weather_operator import apply, discovery, metrics, settings
from weather_operator.controller import tasks


class Connection:
    """The API client (``apply.Cluster``) and the cached discovery of optional CRDs."""

    def __init__(
        self, own: settings.OperatorSettings, metrics_: metrics.OperatorMetrics, tasks_: tasks.Tasks
    ) -> None:
        self._settings = own
        self._metrics = metrics_
        self._tasks = tasks_
        self._client: apply.Cluster | None = None
        self._monitoring = discovery.MonitoringDiscovery(
            self._served_kinds, ttl=own.monitoring_recheck_seconds
        )
        self._cnpg = discovery.CnpgDiscovery(self._served_kinds, ttl=own.monitoring_recheck_seconds)
        self._cert_manager = discovery.CertManagerDiscovery(
            self._served_kinds, ttl=own.monitoring_recheck_seconds
        )
        self._pod_logs = discovery.PodLogsDiscovery(self._served_kinds, ttl=own.monitoring_recheck_seconds)

    def connect(self, configuration: kubernetes.client.Configuration) -> None:
        """Use freshly loaded credentials."""
        old = self._client
        self._client = apply.Cluster(
            apply.Credentials.from_configuration(configuration),
            self._settings.request_timeout_seconds,
            self._settings.api_connections,
        )
        self._metrics.watch_client(self._client)
        if old is not None:
            self._tasks.spawn(old.close(), "closing the previous API client")

    async def _served_kinds(self, api_version: str) -> set[str]:
        return await self.api.served_kinds(api_version)

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def api(self) -> apply.Cluster:
        if self._client is None:
            raise kopf.TemporaryError("not logged in to the API server yet", delay=1)
        return self._client

    @property
    def monitoring(self) -> discovery.MonitoringDiscovery:
        """Whether the Prometheus Operator's CRDs are served."""
        self._logged_in()
        return self._monitoring

    @property
    def cloudnativepg(self) -> discovery.CnpgDiscovery:
        """Whether CloudNativePG's Cluster is served."""
        self._logged_in()
        return self._cnpg

    @property
    def cert_manager(self) -> discovery.CertManagerDiscovery:
        """Whether cert-manager's Certificate is served."""
        self._logged_in()
        return self._cert_manager

    @property
    def pod_logs(self) -> discovery.PodLogsDiscovery:
        """Whether Grafana's PodLogs is served."""
        self._logged_in()
        return self._pod_logs

    def _logged_in(self) -> None:
        if self._client is None:
            raise kopf.TemporaryError("not logged in to the API server yet", delay=1)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
