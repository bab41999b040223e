"""The audit line of keyed requests: one JSON line each, in JsonFormatter's shape, written per loop turn."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator

from weather_proxy.observability import logging as logs

FIELDS = {"keyId": "ns/a", "city": "Paris", "status": 200, "cache": "hit", "route": "/v1/weather"}


@contextlib.contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """Our JSON handler as the root's only handler (as in production), writing to a buffer.

    A context manager inside the test body: pytest adds its own capture handler to the root
    logger for each test phase.
    """
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    for handler in saved:
        root.removeHandler(handler)
    logs.configure("info", "json")
    ours = root.handlers[0]
    assert isinstance(ours, logging.StreamHandler)
    buffer = io.StringIO()
    ours.setStream(buffer)
    try:
        yield buffer
    finally:
        logs.flush_audit()
        root.removeHandler(ours)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
        logging.getLogger("weather_proxy").setLevel(logging.NOTSET)


async def test_audit_lines_are_batched_per_loop_turn() -> None:
    with json_logs() as out:
        token = logs.request_id_var.set("rid-1")
        try:
            for _ in range(3):
                logs.audit(FIELDS)
            logging.getLogger("weather_proxy.audit").info("request", extra=FIELDS)  # the formatter's line
        finally:
            logs.request_id_var.reset(token)
        written_at_once = out.getvalue().splitlines()
        await asyncio.sleep(0)
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(written_at_once) == 1  # the logging call wrote at once; the audit lines wait for the loop
    assert len(lines) == 4
    reference = lines[0]
    for line in lines[1:]:
        assert list(line) == list(reference)  # same keys, same order as JsonFormatter
        assert {k: v for k, v in line.items() if k != "time"} == {
            k: v for k, v in reference.items() if k != "time"
        }
    assert reference["requestId"] == "rid-1"
    assert reference["logger"] == "weather_proxy.audit"
    assert reference["keyId"] == "ns/a"


def test_audit_without_a_loop_writes_at_once() -> None:
    with json_logs() as out:
        logs.audit(FIELDS)
        written = out.getvalue()
    assert json.loads(written)["keyId"] == "ns/a"
    assert "requestId" not in json.loads(written)


def test_audit_respects_the_level_and_other_handlers() -> None:
    with json_logs() as out:
        logs.set_level("warning")
        logs.audit(FIELDS)
        silent = out.getvalue()
        logs.set_level("info")
        other = io.StringIO()
        extra = logging.StreamHandler(other)
        logging.getLogger().addHandler(extra)
        try:
            logs.audit(FIELDS)  # another handler wants it too: an ordinary logging call
        finally:
            logging.getLogger().removeHandler(extra)
        written = out.getvalue()
    assert silent == ""
    assert json.loads(written)["city"] == "Paris"
    assert other.getvalue() == "request\n"
