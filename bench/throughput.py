"""Figure 1: cache-hit throughput and latency of the proxy, as ratios to its baselines, and worker scaling.

The proxy is the real one (``python -m weather_proxy``, one uvicorn worker): API-key auth, a
Redis-backed rate limit (high, so nothing is throttled), metrics, one JSON audit line per
request. The baselines, each on loopback like the proxy and driven by the same ``wrk``:

* a bare ASGI callable sending the same bytes (``bench.bare_app.asgi_app``): the server's
  own ceiling, under the same uvicorn settings (``weather_proxy.server.UVICORN_SETTINGS``);
* the same callable sending the proxy answer's headers as well (``asgi_headers_app``): the
  ceiling of any app that answers with the contract's headers on this server;
* bare FastAPI returning the same JSON as a dict and as bytes (``bench.bare_app``);
* nginx ``proxy_cache`` in front of the proxy, one worker, with an ``X-API-Key`` map check and
  ``limit_req`` (``bench.nginx``): what an operator might put in front instead;
* the proxy and the bare ASGI callable under granian (``server: granian``, one worker each):
  the other server the proxy offers, and its own ceiling.

Every server is up at once and the rounds alternate between them, so the machine's drift
hits all alike; each figure is the median round. Then the proxy's p99 at half its measured
rate (wrk paced by a Lua ``delay``), and the proxy with 1 and 2 workers (``workers`` in
config.yaml), alternating as well. wrk runs on the same cores as the servers: on a small
machine the scaling figure is bounded by what wrk leaves.

Over HTTPS (``listen.tls``, a leaf of a test CA, TLS 1.2 or later): the
proxy under each server in the same rounds, wrk keeping its connections alive as for every row,
so the figure is the cost of encrypting the requests and answers, not of handshakes; printed as
ratios to the same server over plain HTTP (``--no-https`` leaves them out).

``--observability`` adds two more proxies to the rounds: one tracing (``tracing.enabled``,
``sampleRatio`` 0.1, spans made and sampled but exported nowhere: the export runs in a
background thread, off the request) and one with error tracking on (``SENTRY_DSN`` set: a hit
sends nothing, so this is what the reporter costs a request that does not fail); the figures
are their ratios to the proxy with both off, in the same rounds.

``--against REF`` serves the proxy of an earlier commit (its ``proxy/`` tree from ``git
archive``, on PYTHONPATH) beside today's, under each server, in the same alternating rounds:
a change's cost on the hit path, before and after, in one run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import subprocess
import time
from collections.abc import Iterator

import httpx

from bench import fleet, nginx, wrk
from devcluster import openmeteo as om
from devcluster.processes import free_port
from testbed import certificates, proxy_process
from weather_proxy import config as proxy_config

PATH = "/v1/weather?city=Paris"
TRACING_SAMPLE_RATIO = 0.1


@dataclasses.dataclass(frozen=True)
class Throughput:
    results: dict[str, wrk.WrkResult]  # by target name, median rounds
    paced: wrk.WrkResult | None  # the proxy at half its rate
    paced_rate: float
    workers: dict[int, wrk.WrkResult]  # the proxy by worker count

    def lines(self) -> list[str]:
        def row(name: str, r: wrk.WrkResult) -> str:
            return (
                f"  {name:<34} {r.requests_per_second:>9.0f} req/s   p50 {r.p50_ms:6.2f} ms   "
                f"p99 {r.p99_ms:6.2f} ms   (non-2xx {r.non_2xx}, socket errors {r.errors})"
            )

        r = self.results
        proxy = r["proxy"].requests_per_second
        out = [
            "1. Cache-hit throughput (wrk -t1, loopback, 1 worker each; median of alternating rounds)",
            row("proxy /v1/weather (HIT)", r["proxy"]),
            row("bare ASGI callable, same bytes", r["asgi"]),
            row("bare ASGI callable, + proxy headers", r["asgi-headers"]),
            row("bare FastAPI, dict body", r["dict"]),
            row("bare FastAPI, bytes body", r["bytes"]),
        ]
        if "nginx" in r:
            out.append(row("nginx proxy_cache HIT, key map", r["nginx"]))
        if "granian" in r:
            out.append(row("proxy under granian (HIT)", r["granian"]))
            out.append(row("bare ASGI callable under granian", r["asgi-granian"]))

        def ratio(name: str, of: str, target: str = "") -> str:
            return f"  ratio proxy / {name:<18} = {proxy / r[of].requests_per_second:.2f}{target}"

        out += [
            ratio("bare ASGI", "asgi", "   (target >= 0.7)"),
            ratio("bare ASGI + headers", "asgi-headers"),
            f"  ratio bare ASGI + headers / bare ASGI = "
            f"{r['asgi-headers'].requests_per_second / r['asgi'].requests_per_second:.2f}"
            "   (the server's cost of the answer's headers alone)",
            ratio("bare FastAPI dict", "dict", "   (target >= 0.6)"),
            ratio("bare FastAPI bytes", "bytes"),
        ]
        if "nginx" in r:
            out.append(ratio("nginx proxy_cache", "nginx"))
        for name, plain in (("proxy+https", "proxy"), ("granian+https", "granian")):
            if name in r:
                label = "proxy over HTTPS" if plain == "proxy" else "proxy under granian over HTTPS"
                out.append(row(f"{label} (HIT)", r[name]))
                out.append(
                    f"  ratio {label} / over HTTP = "
                    f"{r[name].requests_per_second / r[plain].requests_per_second:.2f}"
                    f"   (p99 {r[name].p99_ms:.2f} ms against {r[plain].p99_ms:.2f} ms)"
                )
        if "granian" in r:
            on_granian = r["granian"].requests_per_second
            out += [
                f"  ratio proxy under granian / bare ASGI under granian = "
                f"{on_granian / r['asgi-granian'].requests_per_second:.2f}",
                f"  ratio proxy under granian / proxy under uvicorn = {on_granian / proxy:.2f}"
                "   (granian offered at >= 1.5)",
            ]
        for name, what in (("tracing", "tracing on (sample 0.1)"), ("errors", "error tracking on")):
            if f"proxy+{name}" in r:
                on = r[f"proxy+{name}"]
                out.append(row(f"proxy, {what}", on))
                out.append(f"  ratio proxy {what} / proxy = {on.requests_per_second / proxy:.2f}")
        for name in r:
            if "@" in name:
                now = "proxy" if name.startswith("proxy@") else "granian"
                out.append(row(name, r[name]))
                out.append(
                    f"  ratio {now} / {name} = {r[now].requests_per_second / r[name].requests_per_second:.2f}"
                    "   (this tree against that commit, same run)"
                )
        if self.paced is not None:
            paced = self.paced
            out.append(
                f"  proxy paced at half ({self.paced_rate:.0f} req/s): {paced.requests_per_second:.0f} req/s,"
                f" p50 {paced.p50_ms:.2f} ms, p99 {paced.p99_ms:.2f} ms   (target p99 <= 5 ms)"
            )
        if self.workers:
            counts = sorted(self.workers)
            out.append("  proxy by workers (wrk -t2 -c100, same cores as the workers):")
            out += [row(f"  {n} worker{'s' if n > 1 else ''}", self.workers[n]) for n in counts]
            if 1 in self.workers and len(counts) > 1:
                base = self.workers[1].requests_per_second
                for n in counts[1:]:
                    scale = self.workers[n].requests_per_second / base
                    out.append(f"  scaling 1 -> {n} workers = {scale:.2f}x   (target >= 1.8x)")
        return out


def median(results: list[wrk.WrkResult]) -> wrk.WrkResult:
    """The round with the median requests/s (its latencies come with it)."""
    return sorted(results, key=lambda r: r.requests_per_second)[len(results) // 2]


@contextlib.contextmanager
def _proxy(
    workdir: pathlib.Path,
    cfg: proxy_config.ProxyConfig,
    workers: int,
    server: proxy_config.Server = proxy_config.Server.UVICORN,
    source: pathlib.Path | None = None,
    extra_env: dict[str, str] | None = None,
    ca_file: pathlib.Path | None = None,
) -> Iterator[str]:
    """A proxy serving a warm cache hit; from the package under ``source`` when given (an older tree).

    Each proxy has a redis-server of its own, so the bench key's bucket is its own: sharing one, the
    targets of a round spent each other's tokens, and one served above the bucket's refill (16,667/s)
    was held to it by whatever the targets before it had left.
    """
    env = ({"PYTHONPATH": str(source)} if source is not None else {}) | (extra_env or {})
    with fleet.redis() as redis:
        own = {"workers": workers, "server": server, "redis": proxy_config.Redis(url=redis.url)}
        proc = proxy_process.ProxyProcess(
            workdir, cfg.model_copy(update=own), fleet.keys_file(), env=env or None, ca_file=ca_file
        )
        if source is not None:
            # Only what differs from the defaults: an older tree does not know the fields added since.
            written = proc.config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            proc.config_volume.write({proxy_process.CONFIG_FILE: proxy_process.to_yaml(written)})
        proc.start(timeout=60)
        try:
            url = f"{proc.url}{PATH}"
            headers = {"X-API-Key": fleet.KEY}
            httpx.get(url, headers=headers, timeout=30, verify=proc.verify).raise_for_status()
            hit = httpx.get(url, headers=headers, timeout=30, verify=proc.verify)
            if hit.headers.get("x-cache") != "HIT":
                raise RuntimeError(f"expected a cache hit, got {hit.headers.get('x-cache')}")
            yield proc.url
        finally:
            proc.stop()


def _alternate(
    targets: dict[str, str], *, seconds: int, connections: int, rounds: int, threads: int = 1
) -> dict[str, wrk.WrkResult]:
    headers = {"X-API-Key": fleet.KEY}  # every target gets the same request
    for url in targets.values():  # warm-up
        wrk.run(url, seconds=2, connections=connections, threads=threads, headers=headers)
    results: dict[str, list[wrk.WrkResult]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, url in targets.items():
            results[name].append(
                wrk.run(url, seconds=seconds, connections=connections, threads=threads, headers=headers)
            )
    return {name: median(rs) for name, rs in results.items()}


def source_of(ref: str, workdir: pathlib.Path) -> pathlib.Path:
    """The proxy package of git ``ref`` (``git archive``), for ``python -m weather_proxy`` on PYTHONPATH."""
    workdir.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", ref, "proxy"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    return workdir / "proxy"


def run(
    workdir: pathlib.Path,
    *,
    seconds: int,
    connections: int,
    rounds: int = 3,
    scaling: bool = True,
    with_nginx: bool = True,
    with_granian: bool = True,
    against: str | None = None,
    observability: bool = False,
    with_https: bool = True,
) -> Throughput:
    """Every server up side by side; rounds alternate between them so drift hits all alike.

    ``against`` (a git ref) adds the proxy of that commit, under each server, to the rounds: a
    change's cost on the hit path, measured before and after in the same run.
    """
    with om.OpenMeteoEmulator() as emulator, fleet.redis() as redis:
        cfg = fleet.config(emulator, redis.url)
        with _proxy(workdir / "proxy", cfg, 1) as proxy_url, contextlib.ExitStack() as stack:
            answer = httpx.get(f"{proxy_url}{PATH}", headers={"X-API-Key": fleet.KEY}, timeout=30)
            body_file = workdir / "body.json"
            body_file.write_bytes(answer.content)
            headers_file = workdir / "headers.json"
            # The answer's headers but those the server adds (date) or the callable sets itself.
            own = {"date", "server", "content-type", "content-length"}
            headers_file.write_text(
                json.dumps([(name, value) for name, value in answer.headers.items() if name not in own])
            )
            env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_HEADERS_FILE": str(headers_file)}
            targets = {"proxy": f"{proxy_url}{PATH}"}
            asgi_url = stack.enter_context(fleet.served("asgi", free_port(), env, workdir / "asgi.log"))
            targets["asgi"] = f"{asgi_url}{PATH}"
            asgi_headers_url = stack.enter_context(
                fleet.served("asgi-headers", free_port(), env, workdir / "asgi-headers.log")
            )
            targets["asgi-headers"] = f"{asgi_headers_url}{PATH}"
            bare_url = stack.enter_context(fleet.served("bare", free_port(), env, workdir / "bare.log"))
            targets["dict"] = f"{bare_url}/dict?city=Paris"
            targets["bytes"] = f"{bare_url}/bytes?city=Paris"
            if with_nginx:
                nginx_url = stack.enter_context(
                    nginx.served(
                        workdir / "nginx",
                        port=free_port(),
                        upstream_port=int(proxy_url.rsplit(":", 1)[1]),
                        key=fleet.KEY,
                    )
                )
                for _ in range(20):
                    cached = httpx.get(f"{nginx_url}{PATH}", headers={"X-API-Key": fleet.KEY}, timeout=30)
                    if cached.headers.get("x-nginx-cache") == "HIT":
                        break
                    time.sleep(0.1)
                else:
                    raise RuntimeError(f"nginx did not cache: {cached.headers.get('x-nginx-cache')}")
                targets["nginx"] = f"{nginx_url}{PATH}"
            if with_granian:
                granian_url = stack.enter_context(
                    _proxy(workdir / "granian", cfg, 1, proxy_config.Server.GRANIAN)
                )
                targets["granian"] = f"{granian_url}{PATH}"
                asgi_granian_url = stack.enter_context(
                    fleet.served("asgi", free_port(), env, workdir / "asgi-granian.log", server="granian")
                )
                targets["asgi-granian"] = f"{asgi_granian_url}{PATH}"
            if with_https:
                leaf = certificates.TestCA().issue(["localhost", "127.0.0.1"])
                files = leaf.write(workdir / "tls")
                served = proxy_config.ServingTls(
                    cert_file=str(files[certificates.CERT_FILE]), key_file=str(files[certificates.KEY_FILE])
                )
                https = cfg.model_copy(update={"listen": cfg.listen.model_copy(update={"tls": served})})
                ca_file = files[certificates.CA_FILE]
                servers = [proxy_config.Server.UVICORN] + (
                    [proxy_config.Server.GRANIAN] if with_granian else []
                )
                for server in servers:
                    name = "proxy+https" if server is proxy_config.Server.UVICORN else "granian+https"
                    https_url = stack.enter_context(_proxy(workdir / name, https, 1, server, ca_file=ca_file))
                    targets[name] = f"{https_url}{PATH}"
            if observability:
                tracing = proxy_config.Tracing(enabled=True, sample_ratio=TRACING_SAMPLE_RATIO)
                observed = cfg.observability.model_copy(update={"tracing": tracing})
                traced = cfg.model_copy(update={"observability": observed})
                tracing_url = stack.enter_context(_proxy(workdir / "traced", traced, 1))
                targets["proxy+tracing"] = f"{tracing_url}{PATH}"
                # A DSN nothing listens on: a hit sends no report, so none is lost.
                dsn = {"SENTRY_DSN": f"http://public@127.0.0.1:{free_port()}/1"}
                reporting = stack.enter_context(_proxy(workdir / "reporting", cfg, 1, extra_env=dsn))
                targets["proxy+errors"] = f"{reporting}{PATH}"
            if against is not None:
                source = source_of(against, workdir / "against")
                servers = [proxy_config.Server.UVICORN] + (
                    [proxy_config.Server.GRANIAN] if with_granian else []
                )
                for server in servers:
                    name = f"{'proxy' if server is proxy_config.Server.UVICORN else 'granian'}@{against}"
                    old_url = stack.enter_context(_proxy(workdir / name, cfg, 1, server, source))
                    targets[name] = f"{old_url}{PATH}"
            results = _alternate(targets, seconds=seconds, connections=connections, rounds=rounds)
            half = results["proxy"].requests_per_second / 2
            paced = wrk.run(
                targets["proxy"],
                seconds=seconds,
                connections=connections,
                headers={"X-API-Key": fleet.KEY},
                rate=half,
            )
        workers: dict[int, wrk.WrkResult] = {}
        if scaling:
            with _proxy(workdir / "w1", cfg, 1) as one, _proxy(workdir / "w2", cfg, 2) as two:
                by_count = _alternate(
                    {"1": f"{one}{PATH}", "2": f"{two}{PATH}"},
                    seconds=seconds,
                    connections=2 * connections,
                    rounds=rounds,
                    threads=2,
                )
            workers = {int(n): r for n, r in by_count.items()}
    return Throughput(results, paced, half, workers)
