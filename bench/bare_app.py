"""The baselines: bare apps returning the same JSON body as a proxy cache hit.

FastAPI: ``/dict`` returns a dict (FastAPI serializes it); ``/bytes`` returns
pre-serialized bytes. ``asgi_app``: a bare ASGI callable sending the same bytes
on any path, the server's own ceiling; ``asgi_headers_app``: the same with the
headers of a proxy answer. Served with the same server settings as the
proxy (see bench/serve.py). The body is read from ``BENCH_BODY_FILE`` (a real
proxy response captured by the run).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Receive, Scope, Send


def create_app() -> FastAPI:
    raw = pathlib.Path(os.environ["BENCH_BODY_FILE"]).read_bytes()
    body: dict[str, Any] = json.loads(raw)
    app = FastAPI()

    @app.get("/dict")
    async def as_dict(city: str) -> dict[str, Any]:
        return body

    @app.get("/bytes")
    async def as_bytes(city: str) -> Response:
        return Response(raw, media_type="application/json")

    return app


def asgi_app() -> ASGIApp:
    """The bare ASGI callable: the captured body with its content type and length, nothing else."""
    return _asgi(pathlib.Path(os.environ["BENCH_BODY_FILE"]).read_bytes(), [])


def asgi_headers_app() -> ASGIApp:
    """The bare ASGI callable sending a proxy answer's headers too (``BENCH_HEADERS_FILE``, JSON pairs).

    What the server's own handling of the contract's headers costs, with no work per request.
    """
    headers = json.loads(pathlib.Path(os.environ["BENCH_HEADERS_FILE"]).read_text())
    extra = [(name.encode(), value.encode()) for name, value in headers]
    return _asgi(pathlib.Path(os.environ["BENCH_BODY_FILE"]).read_bytes(), extra)


def _asgi(raw: bytes, extra: list[tuple[bytes, bytes]]) -> ASGIApp:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            *extra,
        ],
    }
    body = {"type": "http.response.body", "body": raw}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send(start)
        await send(body)

    return app
