"""Are the Prometheus Operator CRDs installed? Asked of the API server, cached for a while.

One answer is shared by every fleet; it is re-asked after ``ttl`` seconds, so CRDs
installed later are noticed without restarting the operator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

MONITORING_API_VERSION = "monitoring.coreos.com/v1"
MONITORING_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})


class MonitoringDiscovery:
    """A cached yes/no: both ServiceMonitor and PrometheusRule are served."""

    # What must be served for a yes (a subclass asks about another API).
    api_version = MONITORING_API_VERSION
    kinds = MONITORING_KINDS

    def __init__(
        self,
        served_kinds: Callable[[str], Awaitable[set[str]]],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._served_kinds = served_kinds
        self._ttl = ttl
        self._clock = clock
        self._answer: bool | None = None
        self._asked_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def last_answer(self) -> bool | None:
        """The cached answer without asking (None before the first question)."""
        return self._answer

    async def available(self) -> bool:
        """The cached answer, or a fresh one when it is older than ``ttl``.

        When the API server cannot be asked, the previous answer stands; with none,
        the error propagates (the handler retries).
        """
        async with self._lock:
            if self._answer is not None and self._clock() - self._asked_at < self._ttl:
                return self._answer
            try:
                kinds = await self._served_kinds(self.api_version)
            except Exception:
                if self._answer is None:
                    raise
                self._asked_at = self._clock()
                return self._answer
            self._answer = kinds >= self.kinds
            self._asked_at = self._clock()
            return self._answer

    def invalidate(self) -> None:
        """Forget the answer: the next question goes to the API server."""
        self._answer = None


CNPG_API_VERSION = "postgresql.cnpg.io/v1"
CNPG_KINDS = frozenset({"Cluster"})


class CnpgDiscovery(MonitoringDiscovery):
    """A cached yes/no: CloudNativePG's Cluster is served (a managed history database is one then)."""

    api_version = CNPG_API_VERSION
    kinds = CNPG_KINDS


CERT_MANAGER_API_VERSION = "cert-manager.io/v1"
CERT_MANAGER_KINDS = frozenset({"Certificate"})


class CertManagerDiscovery(MonitoringDiscovery):
    """A cached yes/no: cert-manager's Certificate is served (spec.tls mode CertManager needs it)."""

    api_version = CERT_MANAGER_API_VERSION
    kinds = CERT_MANAGER_KINDS


POD_LOGS_API_VERSION = "monitoring.grafana.com/v1alpha2"
POD_LOGS_KINDS = frozenset({"PodLogs"})


class PodLogsDiscovery(MonitoringDiscovery):
    """A cached yes/no: Grafana's PodLogs is served (spec.logging.podLogs renders one then)."""

    api_version = POD_LOGS_API_VERSION
    kinds = POD_LOGS_KINDS
