"""The request-context middleware: pure ASGI, on every request's hot path.

One middleware does the per-request bookkeeping so the hot path pays one layer:
request id (echoed or generated, set in a contextvar for the logs), security
headers, HSTS behind TLS, the request counter and latency histogram by route
template, the audit line of keyed requests, the usage-history row of every API
request but a probe key's (queued for the analytics writer when analytics is on), and a last-resort
500 problem document (no stack trace, no key) for anything unhandled. With error tracking on
(``observability.errortracking``) it reports that unhandled error, and any other 5xx answer.

It also keeps the promise that every error is RFC 9457 problem+json: an error
response produced below it as text (Starlette's trusted-host and CORS
middlewares answer in plain text) is rewritten into a problem document with the
request id, its text kept as the detail (5xx texts are replaced, never leaked).
JSON error documents (problems, the readiness 503) pass unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weather_proxy.http import problems
from weather_proxy.observability import logging as logs
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.observability import place

if TYPE_CHECKING:
    from weather_proxy.history import writer as history_writer
    from weather_proxy.observability import errortracking

log = logging.getLogger(__name__)

MAX_REQUEST_ID = 128
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class RequestIds:
    """Generated request ids: 32 hex digits, a random per-process prefix then a counter.

    Unique across a fleet (64 random bits per process) at a fraction of uuid4's cost,
    which reads the OS's random source for every request; reseeded in a forked child.
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(secrets.randbelow(1 << 32))

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


request_ids = RequestIds()


def _valid_request_id(raw: bytes) -> bool:
    return 0 < len(raw) <= MAX_REQUEST_ID and all(33 <= c <= 126 for c in raw)


def is_api_route(template: str) -> bool:
    """The routes whose requests the usage history records (not health, metrics or docs)."""
    return template in ("/weather", "/v1/weather", "/v1/usage") or template.startswith("/v1/analytics/")


class RequestContextMiddleware:
    """Request id, security headers, metrics, audit log, usage-history row, 500 fallback, error reports."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: metrics_mod.Metrics,
        recorder: history_writer.RequestWriter | None = None,
        reporter: errortracking.ErrorReporter | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.recorder = recorder
        self.reporter = reporter  # None: error tracking off, and nothing of it on any path
        self._counters: dict[tuple[str, str, int], metrics_mod.BatchedCounter] = {}
        self._histograms: dict[str, metrics_mod.BatchedHistogram] = {}
        self._recorded: dict[str, bool] = {}  # route template -> whether its requests get a row

    @staticmethod
    def _context(scope: Scope) -> tuple[str, list[tuple[bytes, bytes]]]:
        """The request's id (echoed or generated) and the headers every answer to it carries."""
        request_id: str | None = None
        # The scheme is https behind a trusted proxy that says so (http.trustedProxies sets it), never
        # because any client sent X-Forwarded-Proto.
        https = scope.get("scheme") == "https"
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _valid_request_id(value):
                request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = request_ids.next()
        extra = [(b"x-request-id", request_id.encode("ascii")), *SECURITY_HEADERS]
        if https:
            extra.append(HSTS)
        return request_id, extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id, extra = self._context(scope)
        token = logs.request_id_var.set(request_id)
        status = 500
        started = False
        rewrite: _ProblemRewrite | None = None
        tap: _ErrorBodyTap | None = None
        if self.reporter is not None:
            send = tap = _ErrorBodyTap(send)

        async def send_with_context(message: Message) -> None:
            nonlocal status, started, rewrite
            if rewrite is not None:
                done = rewrite.feed(message)
                if done is not None:
                    await send(done[0])
                    await send(done[1])
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                headers = [*message.get("headers", ()), *extra]
                if status >= 400 and _is_text(headers):
                    rewrite = _ProblemRewrite(status, headers)
                    return
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        except Exception as exc:
            log.exception("unhandled error while serving %s %s", scope["method"], scope["path"])
            if self.reporter is not None:
                self.reporter.unhandled(exc, scope, request_id)
            if not started:
                status = 500
                await send_with_context(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", problems.MEDIA_TYPE.encode())],
                    }
                )
                await send({"type": "http.response.body", "body": problems.body(500, "Unexpected error.")})
        else:
            if status >= 500 and tap is not None and self.reporter is not None:
                self.reporter.answered(scope, status, request_id, tap.body())
        finally:
            self._observe(scope, status, time.perf_counter() - start)
            logs.request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "other"
        method = scope["method"]
        key = (template, method, status)
        counter = self._counters.get(key)
        if counter is None:
            child = self.metrics.http_requests.labels(template, method, str(status))
            counter = self._counters[key] = self.metrics.batched_counter(child)
        counter.inc()
        histogram = self._histograms.get(template)
        if histogram is None:
            latency = self.metrics.http_duration.labels(template)
            histogram = self._histograms[template] = self.metrics.batched_histogram(latency)
        histogram.observe(elapsed)
        state = scope.get("state")
        recorder = self.recorder
        if recorder is not None:
            recorded = self._recorded.get(template)
            if recorded is None:
                recorded = self._recorded[template] = is_api_route(template)
            # A probe key's requests (the operator's smoke requests) are no one's usage.
            if recorded and not (state and state.get("probe")):
                # The key's id (None before authentication), never the key; never the client's address.
                s = state or {}
                recorder.record(
                    (
                        time.time() - elapsed,
                        s.get("key_id"),
                        template,
                        s.get("location"),
                        s.get("coordinates"),
                        status,
                        s.get("cache"),
                        elapsed,
                        s.get("upstream"),
                    )
                )
        if state and "key_id" in state:
            logs.audit(
                {
                    "keyId": state["key_id"],
                    "city": place.city_of(state),
                    "status": status,
                    "cache": state.get("cache"),
                    "route": template,
                }
            )


class RequestDeadline:
    """Every request FastAPI routes is answered within ``deadline()`` seconds, else 504.

    The weather routes bound their own work behind a miss; this bounds the others (usage and
    analytics wait on PostgreSQL, readiness on Redis), so no caller waits on a paused database
    longer than ``http.requestTimeoutSeconds``. Once an answer has started it is let finish.
    """

    def __init__(self, app: ASGIApp, deadline: Callable[[], float]) -> None:
        self.app = app
        self.deadline = deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seconds = self.deadline()
        started = False

        async def send_and_stop_timer(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                timer.reschedule(None)
            await send(message)

        try:
            async with asyncio.timeout(seconds) as timer:
                await self.app(scope, receive, send_and_stop_timer)
        except TimeoutError:
            if started or not timer.expired():
                raise
            status, headers, body = problems.raw(problems.deadline_exceeded(seconds))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})


class _ErrorBodyTap:
    """``send``, keeping the start of a 5xx answer's body: the title of the problem it reports."""

    LIMIT = 4096

    def __init__(self, send: Send) -> None:
        self.send = send
        self.error = False
        self.chunks: list[bytes] = []
        self.kept = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.error = message["status"] >= 500
        elif self.error and self.kept < self.LIMIT:
            chunk = message.get("body", b"")
            self.chunks.append(chunk)
            self.kept += len(chunk)
        await self.send(message)

    def body(self) -> bytes:
        return b"".join(self.chunks)


_DROPPED_ON_REWRITE = frozenset({b"content-type", b"content-length", b"content-encoding"})


def _is_text(headers: list[tuple[bytes, bytes]]) -> bool:
    """Plain text, HTML or nothing: not a document (problem or JSON, like readiness) to keep."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.startswith(b"text/")
    return True


class _ProblemRewrite:
    """Collects a non-problem error response and turns it into a problem document."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.plain = any(
            name.lower() == b"content-type" and value.startswith(b"text/plain") for name, value in headers
        ) and not any(name.lower() == b"content-encoding" for name, _ in headers)
        self.headers = [(name, value) for name, value in headers if name.lower() not in _DROPPED_ON_REWRITE]
        self.chunks: list[bytes] = []

    def feed(self, message: Message) -> tuple[Message, Message] | None:
        """Swallow the body; when complete, the start and body messages of the problem document."""
        if message["type"] != "http.response.body":
            return None
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return None
        text = b"".join(self.chunks).decode("utf-8", "replace").strip()[:200]
        detail = (
            text if self.plain and text and self.status < 500 else problems.TITLES.get(self.status, "Error")
        )
        body = problems.body(self.status, detail)
        headers = [
            *self.headers,
            (b"content-type", problems.MEDIA_TYPE_BYTES),
            (b"content-length", str(len(body)).encode()),
        ]
        return (
            {"type": "http.response.start", "status": self.status, "headers": headers},
            {"type": "http.response.body", "body": body},
        )
