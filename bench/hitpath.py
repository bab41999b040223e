"""In-process cost of one cache hit: the proxy's ASGI app called directly, no HTTP server, no wrk.

``python -m bench.hitpath [--requests N] [--concurrency C] [--profile] [--tracing RATIO]``

A companion to figure 1 for finding where the time goes: the same production-like config
(auth, Redis limits, metrics, JSON audit lines to a file), a real redis-server and the
Open-Meteo emulator; it prints microseconds per hit, and with ``--profile`` the top of a
cProfile. Like every figure here it is only comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pathlib
import pstats
import tempfile
import time
from typing import Any

import uvloop

from bench import fleet
from devcluster import openmeteo as om
from testbed import proxy_process
from weather_proxy import app as proxy_app
from weather_proxy import config as proxy_config
from weather_proxy.observability import logging as proxy_logging


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/weather",
        "raw_path": b"/v1/weather",
        "query_string": b"city=Paris",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080"), (b"x-api-key", fleet.KEY.encode())],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8080),
    }


async def _measure(
    app: Any, requests: int, concurrency: int, profile: bool, sort: str = "tottime", top: int = 30
) -> None:
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def worker(n: int) -> None:
        for _ in range(n):
            await app(_scope(), receive, send)

    async def run(n: int) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        return time.perf_counter() - start, time.process_time() - cpu

    await worker(2)  # miss, then hit
    await run(2000)  # warm-up
    statuses.clear()
    elapsed, cpu = await run(requests)
    print(
        f"{requests} hits, {concurrency} concurrent: {elapsed / requests * 1e6:.1f} us per hit "
        f"({requests / elapsed:.0f}/s), {cpu / requests * 1e6:.1f} us of CPU per hit (this process, Redis's "
        f"excluded: steadier than the wall clock on a shared machine), statuses {sorted(set(statuses))}"
    )
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await run(requests)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(sort).print_stats(top)


async def _main(args: argparse.Namespace, workdir: pathlib.Path) -> None:
    with om.OpenMeteoEmulator() as emulator, fleet.redis() as redis:
        keys_path = workdir / "keys.yaml"
        keys_path.write_text(proxy_process.to_yaml(fleet.keys_file()))
        cfg = fleet.config(emulator, redis.url)
        cfg = cfg.model_copy(update={"auth": cfg.auth.model_copy(update={"keys_file": str(keys_path)})})
        if args.tracing is not None:  # spans made and sampled, exported nowhere
            tracing = proxy_config.Tracing(enabled=True, sample_ratio=args.tracing)
            observed = cfg.observability.model_copy(update={"tracing": tracing})
            cfg = cfg.model_copy(update={"observability": observed})
        proxy_logging.configure("info", "json")
        ours = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
        with (workdir / "proxy.log").open("w") as log_file:
            for handler in ours:
                handler.setStream(log_file)
            app = proxy_app.create_app(cfg, environ={}, fast_path=not args.no_fast_path)
            async with app.router.lifespan_context(app):
                await _measure(app, args.requests, args.concurrency, args.profile, args.sort, args.top)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hitpath", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative, ...)")
    parser.add_argument("--top", type=int, default=30, help="cProfile lines printed")
    parser.add_argument("--no-fast-path", action="store_true", help="route /v1/weather through FastAPI")
    parser.add_argument("--tracing", type=float, metavar="RATIO", help="trace, sampling this fraction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wpf-hitpath-") as tmp:
        uvloop.run(_main(args, pathlib.Path(tmp)))


if __name__ == "__main__":
    main()
