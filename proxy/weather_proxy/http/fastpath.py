"""The weather fast path: ``GET /v1/weather`` and ``/weather`` answered in pure ASGI.

A cache hit is the proxy's whole reason to exist, and FastAPI's per-request
machinery (routing, exception and exit-stack middlewares, Request and Response
objects, gzip's header parsing) costs more than the hit itself. This middleware
sits below the request-context, trusted-host and CORS middlewares and above
everything else: it calls the route's handler (``routes.weather.answer``, which
the app hands it: http/ never imports routes/) directly and sends the bytes.
The routes stay registered with FastAPI, so the OpenAPI document still
describes them, and every other request goes through FastAPI untouched.
It sets ``scope["route"]`` as routing would, so metrics use the route template.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from weather_proxy.http import problems

RawResponse = tuple[int, list[tuple[bytes, bytes]], bytes]
# A route's whole answer on raw ASGI data: (status, headers, body); raises problems.ProblemError.
Handler = Callable[[Scope], Awaitable[RawResponse]]


class WeatherFastPath:
    """Serve GET requests of the weather routes without FastAPI; pass everything else on."""

    def __init__(
        self, app: ASGIApp, handler: Handler, routes: dict[str, Any], gzip_minimum_size: int
    ) -> None:
        self.app = app
        self.handler = handler
        self.routes = routes  # path -> the FastAPI route object, for scope["route"]
        self.gzip_minimum_size = gzip_minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in self.routes or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        status, headers, body = await self.respond(scope)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def respond(self, scope: Scope) -> RawResponse:
        """The whole answer to a GET of one of ``routes`` (problems included), gzipped when due."""
        scope["route"] = self.routes[scope["path"]]
        try:
            status, headers, body = await self.handler(scope)
        except problems.ProblemError as exc:
            status, headers, body = problems.raw(exc)
        if status != 304:
            if len(body) >= self.gzip_minimum_size and _accepts_gzip(scope):
                body = gzip.compress(body, compresslevel=6)
                headers.append((b"content-encoding", b"gzip"))
                headers.append((b"vary", b"Accept-Encoding"))
            headers.append((b"content-length", b"%d" % len(body)))
        return status, headers, body


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value.lower()
    return False
