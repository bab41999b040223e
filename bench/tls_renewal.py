"""``python -m bench.tls_renewal [--swaps N] [--workers 1,2]``: failed requests across certificate renewals.

Under steady load (``testbed.tls_clients.SteadyLoad``: keep-alive clients, and clients opening a
new TLS connection per request) the leaf's files are swapped the way the kubelet swaps a Secret
volume (``testbed.proxy_process.KubeVolume``), ``--swaps`` times, 3 s apart (under granian, 3 s
after its workers were replaced):

* **uvicorn**: the real proxy (``python -m weather_proxy``, ``listen.tls``), which loads a new
  pair into its live SSL context (``weather_proxy.http.tls``);
* **granian**: granian 2.8 reads its files once per worker, so the only renewal it offers without
  a new process tree is ``SIGHUP``, which respawns each worker (a new one started, then the old
  one stopped). Served here with ``weather_proxy.server.granian``'s settings and the bare ASGI
  callable (``bench.bare_app``), its certificate paths rebuilt in an ``on_reload`` hook (granian
  keeps the resolved paths of the first files, which the swap deletes), one ``SIGHUP`` per swap.

Prints, per server and worker count: requests served, requests failed (and the first errors),
and how many new handshakes got each leaf. The proxy rolls granian's pods instead of this
(docs/http-server.md, TLS); these are the figures behind that choice.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from devcluster.processes import free_port
from testbed import certificates, proxy_process, tls_clients
from weather_proxy import config as proxy_config
from weather_proxy import contract

NAMES = ["localhost", "127.0.0.1"]
SWAP_INTERVAL_SECONDS = 3.0
GRANIAN_RESPAWN_SECONDS = 3.5  # granian's respawn_interval default


def _serve_granian(cert: str, key: str, port: int, workers: int) -> None:
    """The granian server of this bench (run in its own process): SIGHUP respawns its workers."""
    from weather_proxy import server

    tls = proxy_config.ServingTls(cert_file=cert, key_file=key)
    granian = server.granian("bench.bare_app:asgi_app", host="127.0.0.1", port=port, workers=workers, tls=tls)

    def rebuild() -> None:
        granian.build_ssl_context(
            pathlib.Path(cert), pathlib.Path(key), None, granian.ssl_ctx[4], None, [], False
        )

    granian.on_reload(rebuild)
    granian.serve()


@contextlib.contextmanager
def _granian(
    volume: proxy_process.KubeVolume, workers: int, workdir: pathlib.Path
) -> Iterator[tuple[int, int]]:
    """(port, pid) of a granian serving the volume's pair."""
    body = workdir / "body.json"
    body.write_text('{"ok": true}')
    port = free_port()
    log = (workdir / f"granian-{workers}.log").open("ab")
    command = [
        sys.executable, "-m", "bench.tls_renewal", "serve-granian",
        str(volume.file(certificates.CERT_FILE)), str(volume.file(certificates.KEY_FILE)),
        str(port), str(workers),
    ]  # fmt: skip
    proc = subprocess.Popen(command, env={**os.environ, "BENCH_BODY_FILE": str(body)}, stdout=log, stderr=log)
    try:
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def _wait_serving(port: int, context: ssl.SSLContext, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            tls_clients.served_serial(port, context)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _measure(
    name: str,
    port: int,
    path: str,
    ca: certificates.TestCA,
    volume: proxy_process.KubeVolume,
    swaps: int,
    interval: float = SWAP_INTERVAL_SECONDS,
    after_swap: object = None,
) -> list[str]:
    context = ssl.create_default_context(cadata=ca.cert_pem)
    _wait_serving(port, context)
    leaves = []
    with tls_clients.SteadyLoad(port, context, path) as load:
        time.sleep(SWAP_INTERVAL_SECONDS)
        for _ in range(swaps):
            leaf = ca.issue(NAMES)
            volume.write(leaf.files())
            leaves.append(leaf)
            if callable(after_swap):
                after_swap()
            time.sleep(interval)
        time.sleep(SWAP_INTERVAL_SECONDS)
    seen = {serial: load.handshakes.count(serial) for serial in dict.fromkeys(load.handshakes)}
    by_leaf = ", ".join(str(count) for count in seen.values())
    lines = [
        f"  {name:<22} served {load.ok:>6}   failed {len(load.failures):>3}   "
        f"new handshakes per leaf, in order: {by_leaf}   (last leaf seen: "
        f"{'yes' if leaves and leaves[-1].serial in seen else 'no'})"
    ]
    lines += [f"      {failure[:150]}" for failure in load.failures[:3]]
    return lines


def run(workdir: pathlib.Path, *, swaps: int, worker_counts: list[int]) -> list[str]:
    out = [f"TLS renewal under load: {swaps} swaps, 3 keep-alive + 3 new-connection clients"]
    for workers in worker_counts:
        ca = certificates.TestCA()
        volume = proxy_process.KubeVolume(workdir / f"uvicorn-{workers}" / "tls")
        volume.write(ca.issue(NAMES).files())
        listen_tls = proxy_config.ServingTls(
            cert_file=str(volume.file(certificates.CERT_FILE)),
            key_file=str(volume.file(certificates.KEY_FILE)),
        )
        cfg = proxy_config.ProxyConfig(
            workers=workers,
            listen=proxy_config.Listen(tls=listen_tls),
            auth=proxy_config.Auth(required=False),
        )
        ca_file = ca.write_ca(workdir / f"uvicorn-{workers}" / "ca.crt")
        proc = proxy_process.ProxyProcess(workdir / f"uvicorn-{workers}" / "proxy", cfg, ca_file=ca_file)
        proc.start()
        try:
            out += _measure(
                f"uvicorn, {workers} worker(s)", proc.port, contract.LIVENESS_PATH, ca, volume, swaps
            )
        finally:
            proc.stop()
    for workers in worker_counts:
        ca = certificates.TestCA()
        volume = proxy_process.KubeVolume(workdir / f"granian-{workers}" / "tls")
        volume.write(ca.issue(NAMES).files())
        with _granian(volume, workers, workdir) as (port, pid):
            out += _measure(
                f"granian, {workers} worker(s)",
                port,
                "/",
                ca,
                volume,
                swaps,
                # granian starts each new worker, waits its respawn interval (3.5 s), then stops the old one.
                interval=(GRANIAN_RESPAWN_SECONDS + 1.0) * workers + SWAP_INTERVAL_SECONDS,
                after_swap=lambda pid=pid: os.kill(pid, signal.SIGHUP),
            )
    return out


def main() -> None:
    if sys.argv[1:2] == ["serve-granian"]:
        cert, key, port, workers = sys.argv[2:6]
        _serve_granian(cert, key, int(port), int(workers))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.tls_renewal", description=__doc__)
    parser.add_argument("--swaps", type=int, default=3, help="certificate swaps per server")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wpf-tls-") as tmp:
        counts = [int(n) for n in args.workers.split(",")]
        print("\n".join(run(pathlib.Path(tmp), swaps=args.swaps, worker_counts=counts)), flush=True)


if __name__ == "__main__":
    main()
