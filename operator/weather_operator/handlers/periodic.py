"""The operator's one background loop: drift repair, monitoring re-check, ApiKey re-check.

Started by the startup handler, cancelled by the cleanup handler. Per-object Kopf timers
would do the same, but Kopf puts a finalizer on every object with a timer or daemon, and
a finalizer blocks deletion while the operator is down; this loop needs none.

* Drift repair (``drift_interval_seconds``): every fleet is reconciled (server-side apply
  of unchanged objects changes nothing, so this is cheap and never loops).
* Monitoring (``monitoring_recheck_seconds``): the Prometheus Operator CRDs are looked up
  again; a fleet whose MonitoringConfigured condition contradicts the answer is reconciled.
* ApiKeys (``key_recheck_seconds``): every ApiKey is re-checked (a user Secret's new
  content is a rotation; expiry shows in status; a missing Secret or WeatherProxy that
  appeared is picked up).
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
    for body in state.all_fleets():
        fleet.report(body, await fleet.reconcile(state, body), trigger="drift repair")


async def recheck_monitoring(state: runtime.State) -> None:
    available = await state.monitoring.available()
    for body in state.all_fleets():
        if fleet.monitoring_outdated(state.previous_status(constants.WEATHERPROXY_KIND, body), available):
            trigger = "monitoring CRDs " + ("installed" if available else "removed")
            fleet.report(body, await fleet.reconcile(state, body), trigger=trigger)


def jobs(state: runtime.State) -> list[Job]:
    own = state.settings
    return [
        Job("drift repair", own.drift_interval_seconds, repair_drift),
        Job("monitoring re-check", own.monitoring_recheck_seconds, recheck_monitoring),
        Job("ApiKey re-check", own.key_recheck_seconds, apikeys.recheck_all),
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
