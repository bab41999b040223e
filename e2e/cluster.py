"""Helpers of the e2e suite: one kubectl-driven cluster API, waiting, HTTP, load, timing.

The suite runs on kind where a container engine exists, and otherwise on the real-node
cluster of :mod:`devcluster.node`: both are reached through :class:`Kube`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

NO_ENGINE = "no container engine (docker info failed)"


def container_engine_problem(docker: str | None = None) -> str | None:
    """Why kind cannot run here (one line), or None when `docker info` works."""
    docker = docker or shutil.which("docker")
    if docker is None:
        return "no container engine (docker not found)"
    try:
        result = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return NO_ENGINE
    return None if result.returncode == 0 else NO_ENGINE


class Kube:
    """kubectl against one cluster, with its kubeconfig.

    ``host_reaches_services``: the test process can open Service ClusterIPs (true on the
    real node, where kube-proxy programs this host's own iptables; false for kind).
    ``log_store``: the URL of the VictoriaLogs that every container's lines go to (the real
    node's, :data:`devcluster.node.LOG_STORE_URL`), None where the cluster has none.
    """

    def __init__(
        self, kubeconfig: Path, *, host_reaches_services: bool, name: str, log_store: str | None = None
    ):
        self.kubeconfig = kubeconfig
        self.host_reaches_services = host_reaches_services
        self.name = name
        self.log_store = log_store

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 600, check: bool = True) -> str:
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, ["kubectl", *args], proc.stdout, proc.stderr)
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]]) -> None:
        items = manifest if isinstance(manifest, list) else [manifest]
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=document)

    def service_url(self, namespace: str, name: str, port: int | str = "http") -> str:
        """``http://<ClusterIP>:<port>`` of a Service (only where the host reaches ClusterIPs)."""
        service = self.json("-n", namespace, "get", f"service/{name}")
        ports = service["spec"]["ports"]
        number = next(p["port"] for p in ports if port in (p.get("name"), p["port"]))
        return f"http://{service['spec']['clusterIP']}:{number}"

    @contextlib.contextmanager
    def port_forward(self, resource: str, port: int, namespace: str) -> Iterator[int]:
        """``kubectl port-forward`` to a free local port; yields that port."""
        proc = subprocess.Popen(
            [
                "kubectl",
                "--kubeconfig",
                str(self.kubeconfig),
                "-n",
                namespace,
                "port-forward",
                "--address",
                "127.0.0.1",
                resource,
                f":{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            if not match:
                raise AssertionError(f"kubectl port-forward {resource}: {line}{proc.stdout.read(2000)}")
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
            yield int(match.group(1))
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def eventually(check: Callable[[], T | None], timeout: float, what: str, interval: float = 1.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (subprocess.CalledProcessError, urllib.error.URLError, ConnectionError, OSError) as exc:
            last_error = exc
        time.sleep(interval)
    detail = last_error
    if isinstance(last_error, subprocess.CalledProcessError):
        detail = f"{last_error} {last_error.stderr}"
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {detail})")


def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, Message, bytes]:
    """(status, headers, body) of a GET; HTTP errors are answers, not exceptions.

    The headers are looked up case-insensitively (``headers["X-Cache"]`` finds ``x-cache``).
    """
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@dataclasses.dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)


class SteadyLoad:
    """``workers`` threads GETting ``url`` back to back until stopped (bounded by ``max_seconds``).

    A failure is anything but a 200: a refused or reset connection, a failed handshake, a
    timeout, a 5xx. ``get`` makes one request (HTTPS with a CA and a name: e2e/test_tls.py).
    """

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        *,
        workers: int = 4,
        max_seconds: float = 600,
        get: Callable[..., tuple[int, Message, bytes]] = http_get,
    ):
        self.url = url
        self.get = get  # (url, headers, timeout) -> (status, headers, body); http_get by default
        self.headers = headers
        self.workers = workers
        self.max_seconds = max_seconds
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                status, _, body = self.get(self.url, self.headers, timeout=5)
                outcome = None if status == 200 else f"HTTP {status}: {body[:120]!r}"
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.result.sent += 1
                if outcome is None:
                    self.result.ok += 1
                else:
                    self.result.failures.append(outcome)
            time.sleep(0.02)

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p99/max of latencies in seconds (p99 by nearest rank: the max below 100 samples)."""
    ordered = sorted(samples)
    rank = max(0, math.ceil(0.99 * len(ordered)) - 1)
    return {"n": len(ordered), "p50": statistics.median(ordered), "p99": ordered[rank], "max": ordered[-1]}


# What the run measured: printed again at the end of the run (pytest_terminal_summary).
MEASURED: list[str] = []


def report(title: str, samples: list[float]) -> str:
    p = percentiles(samples)
    line = f"{title}: n={p['n']:.0f} p50={p['p50']:.2f}s p99={p['p99']:.2f}s max={p['max']:.2f}s"
    MEASURED.append(line)
    print(f"\n[e2e timing] {line}", flush=True)
    path = os.environ.get("WPF_E2E_TIMINGS")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")
    return line
