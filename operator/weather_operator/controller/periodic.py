"""The operator's one background loop: drift repair, monitoring re-check, ApiKey re-check.

Started with the queue's workers, cancelled at cleanup. Per-object Kopf timers would do
the same, but Kopf puts a finalizer on every object with a timer or daemon, and a
finalizer blocks deletion while the operator is down; this loop needs none. Each job only
enqueues requests, spread over its period (so 1,000 fleets are not re-applied at once):

* Drift repair (``drift_interval_seconds``): every fleet is reconciled with every child
  re-applied (server-side apply of unchanged objects changes nothing).
* Monitoring (``monitoring_recheck_seconds``): the Prometheus Operator CRDs are looked up
  again; a fleet whose MonitoringConfigured condition contradicts the answer is reconciled.
* ApiKeys (``key_recheck_seconds``): keys read from a user's Secret (a new content is a
  rotation) and keys with a problem (a missing Secret) are re-checked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

from weather_operator import settings, status
from weather_operator.controller import connection, fleets, indexes, memory, requests

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Job:
    """A periodic job: ``run`` every ``interval`` seconds, the first time one interval after start."""

    name: str
    interval: float
    run: Callable[[], Awaitable[None]]
    due: float = 0.0


class Periodic:
    """The jobs, each of which only requests reconciles."""

    def __init__(
        self,
        *,
        settings_: settings.OperatorSettings,
        connection_: connection.Connection,
        indexes_: indexes.Indexes,
        memory_: memory.Memory,
        requests_: requests.Requests,
    ) -> None:
        self.settings = settings_
        self.connection = connection_
        self.indexes = indexes_
        self.memory = memory_
        self.requests = requests_

    def jobs(self) -> list[Job]:
        own = self.settings
        return [
            Job("drift repair", own.drift_interval_seconds, self.repair_drift),
            Job("monitoring re-check", own.monitoring_recheck_seconds, self.recheck_monitoring),
            Job("ApiKey re-check", own.key_recheck_seconds, self.recheck_keys),
        ]

    async def repair_drift(self) -> None:
        bodies = self.indexes.all_fleets()
        spread = self.settings.drift_interval_seconds
        for i, body in enumerate(bodies):
            namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
            self.memory.fleet(namespace, name).full_apply = True
            self.requests.fleet(namespace, name, fleets.DRIFT, delay=spread * i / len(bodies))

    async def recheck_monitoring(self) -> None:
        available = await self.connection.monitoring.available()
        pod_logs = await self.connection.pod_logs.available()
        for body in self.indexes.all_fleets():
            namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
            previous = self.memory.fleet(namespace, name).status.previous(body)
            if status.monitoring_outdated(previous, available):
                trigger = "monitoring CRDs " + ("installed" if available else "removed")
                self.requests.fleet(namespace, name, trigger)
            elif status.logs_outdated(previous, pod_logs):
                self.requests.fleet(
                    namespace, name, "PodLogs CRD " + ("installed" if pod_logs else "removed")
                )

    async def recheck_keys(self) -> None:
        """Request a re-check of the keys read from a user's Secret and of those with a problem."""
        due = sorted(key for key, record in self.memory.apikeys.items() if record.recheck)
        spread = self.settings.key_recheck_seconds
        for i, (namespace, name) in enumerate(due):
            self.requests.apikey(namespace, name, "periodic re-check", delay=spread * i / max(1, len(due)))

    async def run(self) -> None:
        await run(self.jobs(), lambda: self.connection.connected)


async def run(
    schedule: list[Job], connected: Callable[[], bool], clock: Callable[[], float] = time.monotonic
) -> None:
    """Run the jobs forever (once logged in); a failing job is logged and retried at its next turn."""
    start = clock()
    for job in schedule:
        job.due = start + job.interval
    while True:
        now = clock()
        for job in schedule:
            if job.due > now:
                continue
            job.due = now + job.interval
            if not connected():
                continue
            try:
                await job.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("periodic %s failed; retrying in %ss", job.name, job.interval)
        await asyncio.sleep(max(0.05, min(job.due for job in schedule) - clock()))
