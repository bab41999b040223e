"""The cached "are the Prometheus Operator CRDs installed?" answer, and the periodic loop's schedule."""

from __future__ import annotations

import asyncio

import pytest

from weather_operator import discovery, settings
from weather_operator.controller import indexes, periodic, runtime


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Server:
    """Answers discovery questions; ``fail`` makes the next question raise."""

    def __init__(self, kinds: set[str]) -> None:
        self.kinds = kinds
        self.asked = 0
        self.fail = False

    async def served_kinds(self, api_version: str) -> set[str]:
        assert api_version == discovery.MONITORING_API_VERSION
        self.asked += 1
        if self.fail:
            raise ConnectionError("API server unreachable")
        return set(self.kinds)


async def test_the_answer_is_cached_for_its_ttl_then_asked_again() -> None:
    clock, server = Clock(), Server(set())
    cache = discovery.MonitoringDiscovery(server.served_kinds, ttl=60, clock=clock)
    assert cache.last_answer is None
    assert await cache.available() is False
    server.kinds = {"ServiceMonitor", "PrometheusRule", "Probe"}
    clock.now = 59
    assert await cache.available() is False
    assert server.asked == 1
    clock.now = 61
    assert await cache.available() is True
    assert cache.last_answer is True
    cache.invalidate()
    server.kinds = {"ServiceMonitor"}  # one of the two is not enough
    assert await cache.available() is False
    assert server.asked == 3


async def test_a_failed_question_keeps_the_previous_answer_or_raises_without_one() -> None:
    clock, server = Clock(), Server({"ServiceMonitor", "PrometheusRule"})
    cache = discovery.MonitoringDiscovery(server.served_kinds, ttl=1, clock=clock)
    server.fail = True
    with pytest.raises(ConnectionError):
        await cache.available()
    server.fail = False
    assert await cache.available() is True
    server.fail = True
    clock.now = 5
    assert await cache.available() is True


async def test_the_loop_runs_each_job_at_its_interval_and_survives_failures() -> None:
    calls: list[str] = []
    enough = asyncio.Event()

    async def drift() -> None:
        calls.append("drift")
        if calls.count("drift") >= 4:
            enough.set()
        raise RuntimeError("one fleet failed")

    async def keys() -> None:
        calls.append("keys")

    jobs = [periodic.Job("drift", 0.05, drift), periodic.Job("keys", 0.2, keys)]
    task = asyncio.create_task(periodic.run(jobs, connected=lambda: True))
    await enough.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls.count("drift") > calls.count("keys")  # failures do not stop the loop


async def test_the_loop_waits_for_the_login() -> None:
    own = settings.OperatorSettings(key_recheck_seconds=0.01)
    controller = runtime.Controller(own, indexes.Indexes({}, {}))
    jobs = controller.periodic.jobs()
    assert [job.name for job in jobs] == ["drift repair", "monitoring re-check", "ApiKey re-check"]
    task = asyncio.create_task(controller.periodic.run())
    await asyncio.sleep(0.05)  # not connected: every turn is skipped, nothing raises
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
