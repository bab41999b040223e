"""Shutdown: a step that does not finish in time is named in a warning and the shutdown goes on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from weather_proxy import app as app_mod


async def _ignores_cancellation(released: asyncio.Event) -> None:
    while not released.is_set():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue  # a task that swallows its cancellation: gather() would wait for ever


async def test_a_task_that_swallows_its_cancellation_is_named_and_left_behind(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app_mod, "STOP_STEP_SECONDS", 0.05)
    released = asyncio.Event()
    stubborn = asyncio.get_running_loop().create_task(
        _ignores_cancellation(released), name="weather-proxy:stubborn"
    )
    polite = asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="weather-proxy:polite")
    await asyncio.sleep(0)
    tasks = [stubborn, polite]
    for task in tasks:
        task.cancel()
    with caplog.at_level(logging.WARNING, logger="weather_proxy.app"):
        await app_mod._within("background tasks", asyncio.gather(*tasks, return_exceptions=True), tasks)

    assert polite.cancelled()
    assert not stubborn.done()
    [record] = [r for r in caplog.records if "did not finish" in r.getMessage()]
    assert "background tasks" in record.getMessage()
    [waiting] = record.waiting  # type: ignore[attr-defined]
    assert waiting.startswith("weather-proxy:stubborn:")
    assert "_ignores_cancellation" in waiting
    released.set()
    stubborn.cancel()
    await stubborn


async def test_a_step_that_finishes_in_time_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="weather_proxy.app"):
        await app_mod._within("redis client", asyncio.sleep(0))
    assert not [r for r in caplog.records if "did not finish" in r.getMessage()]
