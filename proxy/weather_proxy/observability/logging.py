"""Logging: one JSON object per line (or text), request id carried by a contextvar.

A JSON line written inside a sampled span also carries the span's ``trace_id`` and ``span_id``
(the audit line too), so a trace and the request's log lines find each other. Only once a
tracer provider exists (``tracing.make_provider`` turns it on) is the current span looked up:
without tracing, a line pays a flag test.

The audit line of every keyed request is on the hot path, and a logging call
with a JSON formatter costs about 13 us (record, caller lookup, formatting, a
flush per line). ``audit`` therefore formats it directly with orjson, in the
same shape ``JsonFormatter`` gives, and writes the lines of one event-loop
turn together. It does so only when our handler is the only one that would
see the record (JSON format); otherwise (text format, extra handlers such as
pytest's) it is an ordinary ``logging`` call.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import logging
import sys
import time
from typing import Any

import orjson
from opentelemetry import trace

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
AUDIT_LOGGER = "weather_proxy.audit"
audit_logger = logging.getLogger(AUDIT_LOGGER)

# Libraries that log every upstream call at INFO (httpx: one line per request, URL included): at the
# request rate of an outage that is a flood. Their warnings and errors still pass.
QUIET_LIBRARIES = ("httpx", "httpcore")

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
# LogRecord attributes that are not user-supplied `extra` fields; uvicorn's `color_message`
# repeats `message` with terminal escape codes.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}

# Whether a tracer provider was made in this process. It stays on once set: with no span current
# the lookup finds none, so the flag only spares the untraced process the lookup (about 0.2 us).
_tracing = False


def include_trace_ids() -> None:
    """Add the current span's ids to JSON lines from now on (called when tracing is enabled)."""
    global _tracing
    _tracing = True


def _add_trace_ids(data: dict[str, Any]) -> None:
    """``trace_id`` and ``span_id`` of the current span, when it belongs to a trace being kept."""
    span = trace.get_current_span()
    context = span.get_span_context()
    if context.is_valid and (context.trace_flags.sampled or span.is_recording()):
        data["trace_id"] = format(context.trace_id, "032x")
        data["span_id"] = format(context.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """A small JSON formatter: time, level, logger, message, request id, trace ids and `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            data["requestId"] = request_id
        if _tracing:
            _add_trace_ids(data)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines with the request id."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = request_id_var.get() or "-"
        return super().format(record)


def _timestamp(created: float) -> str:
    return datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat(timespec="milliseconds")


class _Clock:
    """The audit lines' timestamp, formatted once per millisecond (a busy second has thousands)."""

    millisecond = -1
    text = ""

    def now(self) -> str:
        created = time.time()
        millisecond = int(created * 1000)
        if millisecond != self.millisecond:
            self.millisecond, self.text = millisecond, _timestamp(created)
        return self.text


_clock = _Clock()


class AuditWriter:
    """Audit lines formatted with orjson and written to a handler's stream once per loop turn.

    The lines stay bytes until they are written: to the stream's binary buffer when it has
    one (stdout), after flushing its text layer so that lines keep their order.
    """

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self.handler = handler
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, fields: dict[str, Any]) -> None:
        data: dict[str, Any] = {
            "time": _clock.now(),
            "level": "info",
            "logger": AUDIT_LOGGER,
            "message": "request",
        }
        request_id = request_id_var.get()
        if request_id is not None:
            data["requestId"] = request_id
        if _tracing:
            _add_trace_ids(data)
        data.update(fields)
        self._pending.append(orjson.dumps(data, default=str, option=orjson.OPT_APPEND_NEWLINE))
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        lines, self._pending = b"".join(self._pending), []
        stream = self.handler.stream
        binary = getattr(stream, "buffer", None)
        if binary is None:
            stream.write(lines.decode())
            stream.flush()
            return
        stream.flush()
        binary.write(lines)
        binary.flush()


_audit_writer: AuditWriter | None = None


def audit(fields: dict[str, Any]) -> None:
    """Log the audit line of one request (``fields``: keyId, city, status, cache, route)."""
    if not audit_logger.isEnabledFor(logging.INFO):
        return
    writer = _audit_writer
    handlers = logging.root.handlers
    if writer is None or audit_logger.handlers or len(handlers) != 1 or handlers[0] is not writer.handler:
        audit_logger.info("request", extra=fields)
        return
    writer.write(fields)


def flush_audit() -> None:
    if _audit_writer is not None:
        _audit_writer.flush()


def configure(level: str = "info", log_format: str = "json") -> None:
    """Install one stdout handler on the root logger (idempotent)."""
    global _audit_writer
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_weather_proxy", False):
            root.removeHandler(handler)
    flush_audit()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler._weather_proxy = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    _audit_writer = AuditWriter(handler) if log_format == "json" else None
    set_level(level)


def set_level(level: str) -> None:
    """Apply a config log level (live on reload)."""
    value = LEVELS.get(level, logging.INFO)
    logging.getLogger("weather_proxy").setLevel(value)
    logging.getLogger().setLevel(value)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(value, logging.WARNING))
