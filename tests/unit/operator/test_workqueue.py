"""The reconcile-request queue: coalescing, one reconcile per object at a time, retries, delays."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from weather_operator.controller import workqueue

A = workqueue.Request("WeatherProxy", "ns", "a")
B = workqueue.Request("WeatherProxy", "ns", "b")


class Recorder:
    def __init__(self, hold: asyncio.Event | None = None, fail: int = 0) -> None:
        self.calls: list[tuple[str, str]] = []
        self.running: set[workqueue.Request] = set()
        self.overlaps = 0
        self.hold = hold
        self.fail = fail

    async def __call__(self, request: workqueue.Request, reason: str) -> None:
        if request in self.running:
            self.overlaps += 1
        self.running.add(request)
        self.calls.append((request.name, reason))
        try:
            if self.hold is not None:
                await self.hold.wait()
            if self.fail > 0:
                self.fail -= 1
                raise RuntimeError("refused")
        finally:
            self.running.discard(request)


async def _until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (a test's view of the queue's progress), for at most 5 s."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


def _queue(reconcile: Recorder, **kwargs: object) -> workqueue.WorkQueue:
    return workqueue.WorkQueue({"WeatherProxy": reconcile}, workers=4, **kwargs)  # type: ignore[arg-type]


async def test_requests_for_a_queued_object_coalesce_into_one_reconcile() -> None:
    reconcile = Recorder()
    queue = _queue(reconcile)
    for i in range(1000):
        queue.add(A, f"key {i} changed")
    queue.add(B, "created")
    assert queue.depth == 2
    queue.start()
    await _until(lambda: len(reconcile.calls) == 2 and queue.busy == 0)
    assert sorted(reconcile.calls) == [("a", "key 0 changed"), ("b", "created")]
    assert queue.last_success is not None
    await queue.stop()


async def test_a_request_during_a_reconcile_runs_once_more_after_it_never_alongside() -> None:
    hold = asyncio.Event()
    reconcile = Recorder(hold=hold)
    queue = _queue(reconcile)
    queue.start()
    queue.add(A, "first")
    await _until(lambda: reconcile.running)
    for i in range(10):
        queue.add(A, f"during {i}")
    assert queue.pending(A)
    assert queue.depth == 0  # marked dirty, not queued beside the running one
    hold.set()
    await _until(lambda: len(reconcile.calls) == 2 and queue.busy == 0 and not queue.pending(A))
    assert reconcile.calls == [("a", "first"), ("a", "during 0")]
    assert reconcile.overlaps == 0
    await queue.stop()


async def test_a_failed_reconcile_is_retried_after_its_backoff_and_counted() -> None:
    reconcile = Recorder(fail=2)
    seen: list[str] = []
    queue = _queue(
        reconcile, first_backoff=0.01, observe=lambda request, result, seconds: seen.append(result)
    )
    queue.start()
    queue.add(A, "created")
    await _until(lambda: seen == ["error", "error", "success"])
    assert [reason for _, reason in reconcile.calls][1:] == ["retry after: refused"] * 2
    await queue.stop()


async def test_a_delayed_request_waits_and_an_earlier_one_replaces_a_later_one() -> None:
    reconcile = Recorder()
    queue = _queue(reconcile)
    queue.start()
    queue.add(A, "in an hour", delay=3600)
    queue.add(A, "soon", delay=0.02)
    queue.add(A, "later", delay=10)  # a later one does not push the due one back
    assert queue.scheduled == 1
    await _until(lambda: reconcile.calls == [("a", "soon")])
    assert queue.scheduled == 0
    await queue.stop()


async def test_retry_asks_for_another_run_without_an_error() -> None:
    runs: list[str] = []

    async def reconcile(request: workqueue.Request, reason: str) -> None:
        runs.append(reason)
        if len(runs) == 1:
            raise workqueue.Retry(0.01, "rollout still running")

    results: list[str] = []
    queue = workqueue.WorkQueue(
        {"WeatherProxy": reconcile}, observe=lambda request, result, seconds: results.append(result)
    )
    queue.start()
    queue.add(A, "created")
    await _until(lambda: results == ["requeued", "success"])
    assert runs == ["created", "rollout still running"]
    await queue.stop()


async def test_forget_drops_a_scheduled_request() -> None:
    reconcile = Recorder()
    queue = _queue(reconcile)
    queue.start()
    queue.add(A, "expiry", delay=0.05)
    queue.forget(A)
    await asyncio.sleep(0.1)
    assert reconcile.calls == []
    await queue.stop()


@pytest.mark.parametrize("workers", [1, 3])
async def test_distinct_objects_are_reconciled_concurrently_up_to_the_workers(workers: int) -> None:
    hold = asyncio.Event()
    reconcile = Recorder(hold=hold)
    queue = workqueue.WorkQueue({"WeatherProxy": reconcile}, workers=workers)
    queue.start()
    for i in range(5):
        queue.add(workqueue.Request("WeatherProxy", "ns", str(i)), "created")
    await _until(lambda: queue.busy == workers)
    await asyncio.sleep(0.02)
    assert queue.busy == workers
    assert queue.depth == 5 - workers
    hold.set()
    await _until(lambda: len(reconcile.calls) == 5 and queue.busy == 0)
    await queue.stop()
