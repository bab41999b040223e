"""The baseline: bare FastAPI endpoints returning the same JSON body as a proxy cache hit.

``/dict`` returns a dict (FastAPI serializes it); ``/bytes`` returns pre-serialized
bytes. Served with the same uvicorn settings as the proxy (see bench/throughput.py).
The body is read from ``BENCH_BODY_FILE`` (a real proxy response captured by the run).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from fastapi import FastAPI, Response


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
