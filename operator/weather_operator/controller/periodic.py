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

from weather_operator.api import constants
from weather_operator.handlers import apikeys, fleet, runtime

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Job:
    """A periodic job: ``run`` every ``interval`` seconds, the first time one interval after start."""

    name: str
    interval: float
    run: Callable[[runtime.State], Awaitable[None]]
    due: float = 0.0


async def repair_drift(state: runtime.State) -> None:
    bodies = state.all_fleets()
    spread = state.settings.drift_interval_seconds
    for i, body in enumerate(bodies):
        metadata = body["metadata"]
        state.full_apply.add((metadata["namespace"], metadata["name"]))
        state.request_fleet(
            metadata["namespace"], metadata["name"], fleet.DRIFT, delay=spread * i / len(bodies)
        )


async def recheck_monitoring(state: runtime.State) -> None:
    available = await state.monitoring.available()
    for body in state.all_fleets():
        if fleet.monitoring_outdated(state.previous_status(constants.WEATHERPROXY_KIND, body), available):
            metadata = body["metadata"]
            trigger = "monitoring CRDs " + ("installed" if available else "removed")
            state.request_fleet(metadata["namespace"], metadata["name"], trigger)


async def recheck_keys(state: runtime.State) -> None:
    apikeys.recheck(state, spread=state.settings.key_recheck_seconds)


def jobs(state: runtime.State) -> list[Job]:
    own = state.settings
    return [
        Job("drift repair", own.drift_interval_seconds, repair_drift),
        Job("monitoring re-check", own.monitoring_recheck_seconds, recheck_monitoring),
        Job("ApiKey re-check", own.key_recheck_seconds, recheck_keys),
    ]


async def run(state: runtime.State, clock: Callable[[], float] = time.monotonic) -> None:
    """Run the jobs forever; a failing job is logged and retried at its next turn."""
    schedule = jobs(state)
    start = clock()
    for job in schedule:
        job.due = start + job.interval
    while True:
        now = clock()
        for job in schedule:
            if job.due > now:
                continue
            job.due = now + job.interval
            if not state.connected:
                continue
            try:
                await job.run(state)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("periodic %s failed; retrying in %ss", job.name, job.interval)
        await asyncio.sleep(max(0.05, min(job.due for job in schedule) - clock()))
