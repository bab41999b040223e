"""Figure 1: cache-hit throughput and latency of the proxy, as a ratio to bare FastAPI.

Both servers run under ``bench.serve`` (same uvicorn flags, 1 worker, uvloop + httptools);
``wrk`` drives them over loopback one after the other. The proxy path is the real one:
API-key auth, a Redis-backed rate limit (high, so nothing is throttled), metrics, one
JSON log line per request.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import httpx

from bench import fleet, wrk
from devcluster import openmeteo as om
from tests.support import proxy_process


@dataclasses.dataclass(frozen=True)
class Throughput:
    proxy: wrk.WrkResult
    bare_dict: wrk.WrkResult
    bare_bytes: wrk.WrkResult

    def lines(self) -> list[str]:
        def row(name: str, r: wrk.WrkResult) -> str:
            return (
                f"  {name:<28} {r.requests_per_second:>9.0f} req/s   p50 {r.p50_ms:6.2f} ms   "
                f"p99 {r.p99_ms:6.2f} ms   (non-2xx {r.non_2xx}, socket errors {r.errors})"
            )

        to_dict = self.proxy.requests_per_second / self.bare_dict.requests_per_second
        to_bytes = self.proxy.requests_per_second / self.bare_bytes.requests_per_second
        return [
            "1. Cache-hit throughput (wrk, loopback, 1 uvicorn worker each; median of alternating rounds)",
            row("proxy /v1/weather (HIT)", self.proxy),
            row("bare FastAPI, dict body", self.bare_dict),
            row("bare FastAPI, bytes body", self.bare_bytes),
            f"  ratio proxy / bare(dict)  = {to_dict:.2f}   (target >= 0.6)",
            f"  ratio proxy / bare(bytes) = {to_bytes:.2f}",
        ]


def _median(results: list[wrk.WrkResult]) -> wrk.WrkResult:
    """The round with the median requests/s (its latencies come with it)."""
    return sorted(results, key=lambda r: r.requests_per_second)[len(results) // 2]


def run(workdir: pathlib.Path, *, seconds: int, connections: int, rounds: int = 3) -> Throughput:
    """Both servers up side by side; rounds alternate proxy / bare so drift hits both alike."""
    with om.OpenMeteoEmulator() as emulator, fleet.redis() as redis:
        proc = proxy_process.ProxyProcess(
            workdir / "proxy", fleet.config(emulator, redis.url), fleet.keys_file()
        )
        env = {**os.environ, "WEATHER_PROXY_CONFIG": str(proc.config_path)}
        with fleet.served("proxy", proc.port, env, workdir / "proxy.log") as proxy_url:
            url = f"{proxy_url}/v1/weather?city=Paris"
            headers = {"X-API-Key": fleet.KEY}
            httpx.get(url, headers=headers, timeout=30).raise_for_status()
            hit = httpx.get(url, headers=headers, timeout=30)
            if hit.headers.get("x-cache") != "HIT":
                raise RuntimeError(f"expected a cache hit, got {hit.headers.get('x-cache')}")
            body_file = workdir / "body.json"
            body_file.write_bytes(hit.content)
            bare_env = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
            with fleet.served("bare", proxy_process.free_port(), bare_env, workdir / "bare.log") as bare_url:
                targets = {
                    "proxy": (url, headers),
                    "dict": (f"{bare_url}/dict?city=Paris", {}),
                    "bytes": (f"{bare_url}/bytes?city=Paris", {}),
                }
                results: dict[str, list[wrk.WrkResult]] = {name: [] for name in targets}
                for target_url, target_headers in targets.values():  # warm-up
                    wrk.run(target_url, seconds=2, connections=connections, headers=target_headers)
                for _ in range(rounds):
                    for name, (target_url, target_headers) in targets.items():
                        results[name].append(
                            wrk.run(
                                target_url, seconds=seconds, connections=connections, headers=target_headers
                            )
                        )
    return Throughput(_median(results["proxy"]), _median(results["dict"]), _median(results["bytes"]))
