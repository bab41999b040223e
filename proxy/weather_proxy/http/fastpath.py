"""The weather fast path: ``GET /v1/weather`` and ``/weather`` answered in pure ASGI.

A cache hit is the proxy's whole reason to exist, and FastAPI's per-request
machinery (routing, exception and exit-stack middlewares, Request and Response
objects, gzip's header parsing) costs more than the hit itself. This middleware
sits below the request-context, trusted-host and CORS middlewares and above
everything else: it calls ``routes.weather.answer`` directly and sends the
bytes. The routes stay registered with FastAPI, so the OpenAPI document still
describes them, and every other request goes through FastAPI untouched.
It sets ``scope["route"]`` as routing would, so metrics use the route template.
"""

from __future__ import annotations

import gzip
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from weather_proxy import runtime as runtime_mod
from weather_proxy.http import problems
from weather_proxy.routes import weather


class WeatherFastPath:
    """Serve GET requests of the weather routes without FastAPI; pass everything else on."""

    def __init__(
        self, app: ASGIApp, runtime: runtime_mod.Runtime, routes: dict[str, Any], gzip_minimum_size: int
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.routes = routes  # path -> the FastAPI route object, for scope["route"]
        self.gzip_minimum_size = gzip_minimum_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or path not in self.routes or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes[path]
        try:
            status, headers, body = await weather.answer(self.runtime, scope)
        except problems.ProblemError as exc:
            status, headers, body = problems.raw(exc)
        if status != 304:
            if len(body) >= self.gzip_minimum_size and _accepts_gzip(scope):
                body = gzip.compress(body, compresslevel=6)
                headers.append((b"content-encoding", b"gzip"))
                headers.append((b"vary", b"Accept-Encoding"))
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value.lower()
    return False
