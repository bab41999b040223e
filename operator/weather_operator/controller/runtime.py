"""The controller of one operator run: its collaborators wired together, kept in Kopf's memo.

Built by the startup handler (``handlers.startup``); nothing mutable is module-global, so
each operator run (and each test) starts clean. Its parts:

* ``connection``: the API client and discovery (replaced at each login);
* ``indexes``: Kopf's two indexes, the reconciles' starting point;
* ``memory``: one record per WeatherProxy and per ApiKey;
* ``queue``/``requests``: the work queue, whose workers run the reconcilers;
* ``fleets``/``apikeys``: the reconcilers; ``periodic``: the background loop.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import kopf

from weather_operator import errortracking, metrics, settings
from weather_operator.controller import (
    apikeys,
    children,
    connection,
    fleets,
    indexes,
    memory,
    periodic,
    requests,
    tasks,
    workqueue,
)

MEMO_KEY = "weather"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Controller:
    """The queue, the per-object memory and the reconcilers of one operator run."""

    def __init__(
        self,
        own: settings.OperatorSettings,
        indexes_: indexes.Indexes,
        *,
        report_errors: bool = False,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        """``report_errors``: a reconcile's unexpected failure is also reported (``errortracking``)."""
        self.settings = own
        self.metrics = metrics.OperatorMetrics()
        self.tasks = tasks.Tasks()
        self.connection = connection.Connection(own, self.metrics, self.tasks)
        self.indexes = indexes_
        self.memory = memory.Memory()
        reconcilers: dict[str, workqueue.Reconcile] = {
            requests.WEATHERPROXY: self._reconcile_fleet,
            requests.APIKEY: self._reconcile_apikey,
        }
        if report_errors:
            reconcilers = {
                kind: errortracking.reporting(reconcile) for kind, reconcile in reconcilers.items()
            }
        self.queue = workqueue.WorkQueue(
            reconcilers,
            workers=own.reconcile_workers,
            first_backoff=own.retry_delay_seconds,
            observe=lambda request, result, seconds: self.metrics.observe(request.kind, result, seconds),
        )
        self.metrics.watch_queue(self.queue, self.indexes.key_counts)
        self.requests = requests.Requests(self.queue)
        self.fleets = fleets.FleetReconciler(
            settings_=own,
            connection_=self.connection,
            indexes_=self.indexes,
            memory_=self.memory,
            requests_=self.requests,
            children_=children.Children(self.connection),
            clock=clock,
        )
        self.apikeys = apikeys.ApiKeyReconciler(
            settings_=own,
            connection_=self.connection,
            indexes_=self.indexes,
            memory_=self.memory,
            requests_=self.requests,
            clock=clock,
        )
        self.periodic = periodic.Periodic(
            settings_=own,
            connection_=self.connection,
            indexes_=self.indexes,
            memory_=self.memory,
            requests_=self.requests,
        )
        self._periodic_started = False

    async def _reconcile_fleet(self, request: workqueue.Request, reason: str) -> object:
        return await self.fleets.reconcile(request, reason)

    async def _reconcile_apikey(self, request: workqueue.Request, reason: str) -> object:
        return await self.apikeys.reconcile(request, reason)

    def start(self) -> None:
        """Start the queue's workers and the periodic loop (once), from inside Kopf's processing.

        Not from the startup handler: Kopf's event posting (``kopf.event``) works only in
        tasks whose context Kopf prepared for processing objects; a task inherits it.
        """
        if not self.queue.started:
            self.queue.start()
        if not self._periodic_started:
            self._periodic_started = True
            self.tasks.spawn(self.periodic.run(), "periodic loop")

    async def close(self) -> None:
        await self.queue.stop()
        await self.tasks.close()
        await self.connection.close()


def _from(memo: Any) -> Controller | None:
    found = memo.get(MEMO_KEY) if hasattr(memo, "get") else getattr(memo, MEMO_KEY, None)
    return found if isinstance(found, Controller) else None


def started(memo: Any) -> Controller | None:
    """The Controller if the startup handler made one, with its workers running; else None."""
    controller = _from(memo)
    if controller is not None:
        controller.start()
    return controller


def of(memo: Any) -> Controller:
    """The Controller stored in Kopf's memo by the startup handler, with its workers running."""
    controller = _from(memo)
    if controller is None:
        raise kopf.TemporaryError("operator state not initialised yet", delay=1)
    controller.start()
    return controller
