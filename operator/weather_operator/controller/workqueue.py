"""The reconcile-request queue: producers enqueue what must be reconciled, a few workers do it.

The semantics of client-go's workqueue, which controller-runtime reconcilers run on:

* a request is one object (kind, namespace, name), not an event: requests for an object
  that is already queued coalesce into one, so a burst of 1,000 ApiKey events for one
  fleet costs a few fleet reconciles, not 1,000;
* one object is never reconciled by two workers at once: a request that arrives while
  the object is being reconciled marks it dirty, and it is reconciled once more after;
* a failed reconcile is retried with a per-object backoff (1, 2, 5, 10, ... times the
  first delay, at most 60 s), reset by a success; a reconcile may also ask to run again
  after a delay (``Retry``);
* ``add(..., delay=s)`` schedules a request (a key expiring, a rollout to look at again).

Whoever needs an object reconciled calls ``add``; the reconcile functions are registered
per kind by ``controller.runtime``, so the queue knows nothing about WeatherProxies or ApiKeys.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

logger = logging.getLogger(__name__)

BACKOFF_FACTORS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
MAX_BACKOFF = 60.0


@dataclasses.dataclass(frozen=True, order=True)
class Request:
    """Reconcile this object (from its latest state: the queue carries no bodies)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class Retry(Exception):
    """Raised by a reconcile that must run again after ``delay`` seconds (no error counted)."""

    def __init__(self, delay: float, why: str) -> None:
        super().__init__(why)
        self.delay = delay


Reconcile = Callable[[Request, str], Awaitable[object]]
Observer = Callable[[Request, str, float], None]  # (request, result, seconds)


class WorkQueue:
    """Coalescing, per-object serial, retrying; ``workers`` reconciles run concurrently."""

    def __init__(
        self,
        reconcilers: Mapping[str, Reconcile],
        *,
        workers: int = 4,
        first_backoff: float = 1.0,
        observe: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reconcilers = dict(reconcilers)
        self._workers = workers
        self._first_backoff = first_backoff
        self._observe = observe
        self._clock = clock
        self._ready: asyncio.Queue[Request] = asyncio.Queue()
        self._reasons: dict[Request, str] = {}  # queued (not yet taken by a worker), with the first reason
        self._processing: set[Request] = set()
        self._dirty: dict[Request, str] = {}  # asked for again while being processed
        self._timers: dict[Request, asyncio.TimerHandle] = {}
        self._failures: dict[Request, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.added = 0
        self.last_success: float | None = None

    # --- producers -------------------------------------------------------------------------------------

    def add(self, request: Request, reason: str, delay: float = 0.0) -> None:
        """Reconcile ``request`` (after ``delay`` seconds); coalesces with one already waiting."""
        if delay > 0:
            self._schedule(request, reason, delay)
            return
        self.added += 1
        if request in self._processing:
            self._dirty.setdefault(request, reason)
        elif request not in self._reasons:
            self._reasons[request] = reason
            self._ready.put_nowait(request)

    def _schedule(self, request: Request, reason: str, delay: float) -> None:
        loop = asyncio.get_running_loop()
        timer = self._timers.get(request)
        when = loop.time() + delay
        if timer is not None:
            if timer.when() <= when:
                return  # an earlier one is already due
            timer.cancel()
        self._timers[request] = loop.call_at(when, self._due, request, reason)

    def _due(self, request: Request, reason: str) -> None:
        self._timers.pop(request, None)
        self.add(request, reason)

    def forget(self, request: Request) -> None:
        """The object is gone: drop its timer and backoff (a queued request finds it gone and returns)."""
        timer = self._timers.pop(request, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(request, None)

    # --- state ----------------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Requests waiting for a worker (not counting those being reconciled or scheduled later)."""
        return len(self._reasons)

    @property
    def busy(self) -> int:
        return len(self._processing)

    @property
    def scheduled(self) -> int:
        return len(self._timers)

    def pending(self, request: Request) -> bool:
        return request in self._reasons or request in self._dirty

    # --- workers ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers (in the running loop; they inherit its context, e.g. Kopf's for events)."""
        if not self._tasks:
            self._tasks = [
                asyncio.get_running_loop().create_task(self._work(), name=f"reconcile worker {i}")
                for i in range(self._workers)
            ]

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            request = await self._ready.get()
            reason = self._reasons.pop(request, "requested")
            self._processing.add(request)
            try:
                await self._run(request, reason)
            finally:
                self._processing.discard(request)
                again = self._dirty.pop(request, None)
                if again is not None:
                    self.add(request, again)

    async def _run(self, request: Request, reason: str) -> None:
        reconcile = self._reconcilers[request.kind]
        started = self._clock()
        result = "success"
        try:
            await reconcile(request, reason)
        except asyncio.CancelledError:
            raise
        except Retry as retry:
            result = "requeued"
            self._failures.pop(request, None)
            self.add(request, str(retry), delay=retry.delay)
        except Exception as exc:
            result = "error"
            failures = self._failures.get(request, 0)
            self._failures[request] = failures + 1
            factor = BACKOFF_FACTORS[min(failures, len(BACKOFF_FACTORS) - 1)]
            delay = min(MAX_BACKOFF, self._first_backoff * factor)
            logger.warning("reconcile of %s failed (%s); retrying in %.0fs: %s", request, reason, delay, exc)
            self.add(request, f"retry after: {exc}", delay=delay)
        else:
            self._failures.pop(request, None)
            self.last_success = self._clock()
        finally:
            if self._observe is not None:
                self._observe(request, result, self._clock() - started)
