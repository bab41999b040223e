"""Figure 5: what the usage history costs the hit path, and how many rows one proxy writes.

* Cache-hit throughput of two proxy processes side by side, analytics off and on (one row per
  request queued for PostgreSQL), driven by ``wrk`` in alternating rounds; the figure is the
  ratio of the medians (target >= 0.9).
* The write rate: the rows the analytics-on proxy wrote to PostgreSQL per second of the rounds
  (its ``weather_proxy_analytics_rows_written_total``), with the rows dropped; then one writer
  in this process emptying a queue of ``WRITE_ROWS`` rows into the database as fast as it can.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pathlib
import time

import httpx
from prometheus_client import parser as prometheus_text

from bench import fleet, throughput, wrk
from devcluster import openmeteo as om
from testbed import postgres_server, proxy_process
from weather_proxy import config as proxy_config
from weather_proxy.history import service
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import client as upstream

WRITE_ROWS = 200_000
PARIS = upstream.Location("Paris", "FR", 48.8534, 2.3488, "Europe/Paris", 2988507)


@dataclasses.dataclass(frozen=True)
class Figure:
    off: wrk.WrkResult
    on: wrk.WrkResult
    served_on: int
    rows_written: int
    rows_dropped: int
    seconds_on: float
    writer_rows_per_second: float

    def lines(self) -> list[str]:
        def row(name: str, r: wrk.WrkResult) -> str:
            return (
                f"  {name:<28} {r.requests_per_second:>9.0f} req/s   p50 {r.p50_ms:6.2f} ms   "
                f"p99 {r.p99_ms:6.2f} ms   (non-2xx {r.non_2xx}, socket errors {r.errors})"
            )

        ratio = self.on.requests_per_second / self.off.requests_per_second
        return [
            "5. Usage history: cache-hit throughput with analytics off and on (median of alternating rounds)",
            row("proxy, analytics off", self.off),
            row("proxy, analytics on", self.on),
            f"  ratio on / off = {ratio:.2f}   (target >= 0.9)",
            f"  rows written while serving: {self.rows_written / self.seconds_on:,.0f} rows/s "
            f"({self.rows_written:,} written, {self.rows_dropped:,} dropped, "
            f"{self.served_on:,} requests served)",
            f"  one writer emptying a queue of {WRITE_ROWS:,} rows: "
            f"{self.writer_rows_per_second:,.0f} rows/s",
        ]


def _metric(url: str, name: str) -> int:
    """An unlabelled counter of the proxy at ``url`` (0 before it is first exported)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in prometheus_text.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return int(sample.value)
    return 0


async def _writer_rate(database: postgres_server.AnalyticsDatabase) -> float:
    cfg = proxy_config.Analytics.model_validate(
        {
            "database": {"url": database.url},
            "writer": {"maxQueuedRows": WRITE_ROWS, "batchRows": 5000},
        }
    )
    history = service.UsageHistory(cfg, database.password, metrics_mod.Metrics())
    try:
        if not await history.prepare():
            raise RuntimeError(f"analytics database: {history.db.last_error}")
        now = time.time()
        for n in range(WRITE_ROWS):
            history.writer.record(
                (now + n * 1e-4, "bench/load", "/v1/weather", PARIS, None, 200, "hit", 0.0004, None)
            )
        start = time.perf_counter()
        while history.writer.queued:
            await history.writer.flush()
        return WRITE_ROWS / (time.perf_counter() - start)
    finally:
        await history.aclose()


def run(workdir: pathlib.Path, *, seconds: int, connections: int, rounds: int = 3) -> Figure:
    bin_dir = postgres_server.find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    pg = postgres_server.PostgresServer(bin_dir).init().start()
    try:
        database = pg.create_database()
        with om.OpenMeteoEmulator() as emulator, fleet.redis() as redis:
            base = fleet.config(emulator, redis.url)
            analytics = proxy_config.Analytics.model_validate({"database": {"url": database.url}})
            procs = {
                "off": proxy_process.ProxyProcess(workdir / "off", base, fleet.keys_file()),
                "on": proxy_process.ProxyProcess(
                    workdir / "on", base.model_copy(update={"analytics": analytics}), fleet.keys_file()
                ),
            }
            env = {**os.environ, proxy_config.ANALYTICS_PASSWORD_ENV: database.password}
            with (
                fleet.served(
                    "proxy",
                    procs["off"].port,
                    {**env, "WEATHER_PROXY_CONFIG": str(procs["off"].config_path)},
                    workdir / "off.log",
                ) as off_url,
                fleet.served(
                    "proxy",
                    procs["on"].port,
                    {**env, "WEATHER_PROXY_CONFIG": str(procs["on"].config_path)},
                    workdir / "on.log",
                ) as on_url,
            ):
                headers = {"X-API-Key": fleet.KEY}
                urls = {"off": f"{off_url}/v1/weather?city=Paris", "on": f"{on_url}/v1/weather?city=Paris"}
                for url in urls.values():
                    httpx.get(url, headers=headers, timeout=30).raise_for_status()
                    if httpx.get(url, headers=headers, timeout=30).headers.get("x-cache") != "HIT":
                        raise RuntimeError("expected a cache hit")
                    wrk.run(url, seconds=2, connections=connections, headers=headers)  # warm-up
                time.sleep(2)  # the on-proxy's writer catches up with the warm-up
                written_before = _metric(on_url, "weather_proxy_analytics_rows_written_total")
                results: dict[str, list[wrk.WrkResult]] = {"off": [], "on": []}
                seconds_on = 0.0
                served_on = 0
                for _ in range(rounds):
                    for name, url in urls.items():
                        result = wrk.run(url, seconds=seconds, connections=connections, headers=headers)
                        results[name].append(result)
                        if name == "on":
                            seconds_on += seconds
                            served_on += int(result.requests_per_second * seconds)
                time.sleep(2)
                written = _metric(on_url, "weather_proxy_analytics_rows_written_total") - written_before
                dropped = _metric(on_url, "weather_proxy_analytics_rows_dropped_total")
        rate = asyncio.run(_writer_rate(pg.create_database()))
    finally:
        pg.close()
    return Figure(
        throughput.median(results["off"]),
        throughput.median(results["on"]),
        served_on,
        written,
        dropped,
        seconds_on,
        rate,
    )
