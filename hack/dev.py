"""The local dev stack (``make dev`` = ``python -m hack.dev [--offline] [--check]``).

Starts, in order: a local control plane (etcd, kube-apiserver, kube-controller-manager),
a redis-server, a PostgreSQL (Debian's package: the proxy writes its usage history there),
the Open-Meteo emulator (``--offline``), the CRDs, the operator, a dev
WeatherProxy and an ApiKey in namespace ``weather``; then the proxy as a local process
fed with the ConfigMap and keys Secret the operator rendered, projected into
``.dev/etc/weather-proxy/`` the way the kubelet projects volumes (``..data`` symlink
swap, refreshed on change). Like a fleet's pods, the proxy also watches the keys Secret
through the API server as the fleet's ServiceAccount: a token from the TokenRequest API
(renewed before it expires) in ``.dev/etc/serviceaccount/``, the API server's URL and CA
through ``auth.kubernetes`` of its config. It prints the endpoint, the generated key and
a curl line, and runs until Ctrl-C (SIGINT/SIGTERM), which tears everything down.

``--check`` runs the whole stack non-interactively and measures key propagation:
ApiKey deleted -> proxy answers 403, ApiKey applied -> proxy answers 200. Exit 0 when
both happen within the bound, 1 otherwise. It also prints the request rows and key
lifecycle events the proxy wrote to PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess  # nosec B404 - child processes run with argument lists, never a shell
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from hack import kubectl as kubectl_
from hack import kubelet_projector, operator_process
from weather_proxy import contract

NAMESPACE = "weather"
PROXY = "dev"
API_KEY = "developer"
SECOND_API_KEY = "developer-2"
DEFAULT_STATE_DIR = kubectl_.REPO_ROOT / ".dev"
# Bounds of one step, not targets: a cold start of the control plane takes ~10 s.
STEP_TIMEOUT = 120.0
PROPAGATION_BOUND = 30.0
PROPAGATION_TARGET = 2.0


class StackError(RuntimeError):
    """A step of the dev stack failed; the message says which and where its log is."""


def step(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChildProcess:
    """A child in its own process group with its output in a log file; stopped by group."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.log_path = name, log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argument lists built by this module
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def weather_proxy_manifest(upstream: dict[str, str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"environment": "dev", "replicas": 1}
    if upstream:
        spec["upstream"] = upstream
    return {
        "apiVersion": "weatherproxy.dev/v1alpha1",
        "kind": "WeatherProxy",
        "metadata": {"name": PROXY, "namespace": NAMESPACE},
        "spec": spec,
    }


def api_key_manifest(name: str, proxy: str = PROXY) -> dict[str, Any]:
    return {
        "apiVersion": "weatherproxy.dev/v1alpha1",
        "kind": "ApiKey",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"proxyRef": {"name": proxy}, "description": "local development key"},
    }


@dataclasses.dataclass(frozen=True)
class ApiAccess:
    """How a proxy outside the cluster reaches the API server as the fleet's ServiceAccount."""

    server: str
    ca_file: Path
    token_file: Path
    namespace: str


def local_config(
    text: bytes,
    *,
    port: int,
    redis_url: str,
    keys_file: Path,
    api: ApiAccess | None = None,
    analytics_url: str | None = None,
) -> bytes:
    """The rendered config.yaml, pointed at this machine: loopback port, local Redis, local keys,
    (``api``) the API server and credentials for the keys watch instead of in-cluster ones, and
    (``analytics_url``) the local PostgreSQL for the usage history (the dev preset has it off)."""
    cfg = yaml.safe_load(text) or {}
    cfg["listen"] = {"host": "127.0.0.1", "port": port}
    cfg["redis"] = {"url": redis_url}
    if analytics_url is not None:
        found = cfg.get("analytics")
        section: dict[str, Any] = found if isinstance(found, dict) else {}
        cfg["analytics"] = {**section, "database": {**section.get("database", {}), "url": analytics_url}}
    auth = cfg.setdefault("auth", {})
    auth["keysFile"] = str(keys_file)
    if api is not None and isinstance(auth.get("kubernetes"), dict):
        auth["kubernetes"].update(
            apiServer=api.server,
            caFile=str(api.ca_file),
            tokenFile=str(api.token_file),
            namespace=api.namespace,
        )
    return yaml.safe_dump(cfg, sort_keys=False).encode()


class ServiceAccountToken:
    """A TokenRequest token of a ServiceAccount in a file, renewed well before it expires.

    The file is replaced atomically; the proxy reads it again on every (re)connect, as it
    does with the token the kubelet projects into a pod.
    """

    LIFETIME = "1h"
    RENEW_SECONDS = 20 * 60

    def __init__(self, kubectl: kubectl_.Kubectl, namespace: str, account: str, path: Path) -> None:
        self.kubectl, self.namespace, self.account, self.path = kubectl, namespace, account, path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"token-{account}", daemon=True)

    def write(self) -> None:
        token = self.kubectl.run(
            "-n", self.namespace, "create", "token", self.account, f"--duration={self.LIFETIME}"
        ).strip()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(token)
        tmp.chmod(0o600)
        os.replace(tmp, self.path)

    def start(self) -> ServiceAccountToken:
        self.write()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def _renew(self) -> None:
        while not self._stop.wait(self.RENEW_SECONDS):
            with contextlib.suppress(kubectl_.KubectlError, subprocess.TimeoutExpired):
                self.write()


class DevStack:
    """Everything ``make dev`` runs; :meth:`down` stops what :meth:`up` started, in reverse."""

    proxy_name = PROXY
    key_name = API_KEY
    propagation_bound = PROPAGATION_BOUND

    def __init__(self, state_dir: Path, *, offline: bool, build: bool) -> None:
        self.state_dir = state_dir
        self.offline = offline
        self.build = build
        self.started = time.monotonic()
        self.logs = state_dir / "logs"
        self.etc = state_dir / "etc" / "weather-proxy"
        self.keys_file = self.etc / "keys" / "keys.yaml"
        self.config_file = self.etc / "config.yaml"
        self.token_file = state_dir / "etc" / "serviceaccount" / "token"
        self.api: ApiAccess | None = None
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._teardown = contextlib.ExitStack()
        self.children: list[ChildProcess] = []
        self.kubectl: kubectl_.Kubectl | None = None
        self.api_client: Any = None
        self.has_node = False  # a node (kwok or real) runs the fleet's pods: the WeatherProxy reads Ready
        self.history: Any = None  # the local PostgreSQL's database of the usage history (AnalyticsDatabase)

    def say(self, message: str) -> None:
        step(message, self.started)

    # -- up --------------------------------------------------------------------------

    def up(self) -> None:
        from devcluster import controlplane

        shutil.rmtree(self.state_dir / "controlplane", ignore_errors=True)
        shutil.rmtree(self.etc, ignore_errors=True)
        self.logs.mkdir(parents=True, exist_ok=True)

        self.say("building (or reusing) the control-plane binaries")
        bin_dir = controlplane.ensure_binaries(build=self.build)
        # kube-scheduler and a kwok node when kwok is built: the fleet's pods are scheduled and
        # report Ready (no process runs in them; the proxy runs below as a local process).
        self.say("starting etcd, kube-apiserver, kube-controller-manager (and kube-scheduler + a kwok node)")
        cp = controlplane.ControlPlane(
            state_dir=self.state_dir / "controlplane", bin_dir=bin_dir, fake_nodes=1
        )
        cp.start()
        self._teardown.callback(cp.stop)
        self.has_node = bool(cp.kwok)
        self.kubectl = kubectl_.Kubectl(cp.kubeconfig)
        self.say(f"control plane up at {cp.server}  (export KUBECONFIG={cp.kubeconfig})")

        redis_url, redis_password = self._start_redis()
        self.history = self._start_postgres()
        upstream = self._start_emulator() if self.offline else None

        self.say("installing the CRDs")
        self.kubectl.install_crds()

        self.say("starting the operator")
        operator = operator_process.OperatorProcess(cp.kubeconfig, self.logs / "operator.log").start()
        self._teardown.callback(operator.stop)
        self.operator = operator

        self.say(f"applying WeatherProxy {NAMESPACE}/{PROXY} and ApiKey {NAMESPACE}/{API_KEY}")
        self.kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        self.kubectl.apply(weather_proxy_manifest(upstream), api_key_manifest(API_KEY))

        from kubernetes import config as kube_config

        self.api_client = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cp.kubeconfig)
        )
        self._teardown.callback(self.api_client.close)
        self._service_account(cp.server, cp.ca_file)
        self._project(redis_url)
        self._start_proxy(redis_url, redis_password)

    def _start_redis(self) -> tuple[str, str]:
        from testbed import redis_server

        binary = redis_server.find_redis_server()
        if binary is None:
            raise StackError("redis-server is not installed: run `make system-packages`")
        password = secrets.token_urlsafe(16)
        server = redis_server.RedisServer(binary, password=password).start()
        self._teardown.callback(server.stop)
        self.say(f"redis-server on 127.0.0.1:{server.port}")
        return f"redis://127.0.0.1:{server.port}/0", password

    def _start_postgres(self) -> Any:
        """A PostgreSQL from Debian's package (as the tests start it) with a database for the history."""
        from testbed import postgres_server

        bin_dir = postgres_server.find_bin_dir()
        if bin_dir is None:
            raise StackError("PostgreSQL is not installed: run `make system-packages`")
        server = postgres_server.PostgresServer(bin_dir).init().start()
        self._teardown.callback(server.close)
        database = server.create_database()
        self.say(
            f"PostgreSQL {bin_dir.parent.name} on 127.0.0.1:{server.port}, usage history in {database.name}"
        )
        return database

    def _start_emulator(self) -> dict[str, str]:
        port = free_port()
        log_path = self.logs / "openmeteo.log"
        # The log is appended across runs: only what this run's emulator printed counts.
        offset = log_path.stat().st_size if log_path.exists() else 0
        child = self._spawn("openmeteo", [sys.executable, "-m", "devcluster.openmeteo", "--port", str(port)])

        def urls() -> dict[str, str] | None:
            if not child.alive():
                raise StackError(f"the Open-Meteo emulator exited:\n{child.log_tail()}")
            with open(log_path, "rb") as log:
                log.seek(offset)
                lines = log.read().decode(errors="replace").splitlines()
            for line in lines:
                if line.startswith("{"):
                    parsed: dict[str, str] = json.loads(line)
                    return parsed
            return None

        found = kubectl_.wait_until(urls, timeout=30, what="the Open-Meteo emulator")
        self.say(f"Open-Meteo emulator on {found['geocodingUrl']} and {found['forecastUrl']}")
        return {"geocodingUrl": found["geocodingUrl"], "forecastUrl": found["forecastUrl"]}

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ChildProcess:
        child = ChildProcess(name, argv, self.logs / f"{name}.log", env)
        self.children.append(child)
        self._teardown.callback(child.stop)
        return child

    def _service_account(self, server: str, ca_file: Path) -> None:
        """A token of the fleet's ServiceAccount, which may read its keys Secret and nothing else."""
        from weather_operator.render import names

        assert self.kubectl is not None
        kubectl, account = self.kubectl, names.service_account_name(PROXY)
        kubectl_.wait_until(
            lambda: kubectl.exists("rolebinding", names.keys_reader_name(PROXY), namespace=NAMESPACE),
            timeout=STEP_TIMEOUT,
            what=f"the proxy's Role in {NAMESPACE} (operator log: {self.operator.log_path})",
        )
        token = ServiceAccountToken(kubectl, NAMESPACE, account, self.token_file).start()
        self._teardown.callback(token.stop)
        self.api = ApiAccess(server=server, ca_file=ca_file, token_file=self.token_file, namespace=NAMESPACE)
        self.say(
            f"the proxy watches the keys Secret as ServiceAccount {NAMESPACE}/{account} ({self.token_file})"
        )

    def _project(self, redis_url: str) -> None:
        from weather_operator.render import names

        self.say("waiting for the operator to render the ConfigMap and the keys Secret")
        assert self.kubectl is not None
        kubectl = self.kubectl
        for kind, name in (
            ("configmap", names.config_map_name(PROXY)),
            ("secret", names.keys_secret_name(PROXY)),
        ):
            kubectl_.wait_until(
                functools.partial(kubectl.exists, kind, name, namespace=NAMESPACE),
                timeout=STEP_TIMEOUT,
                what=f"{kind}/{name} in {NAMESPACE} (operator log: {self.operator.log_path})",
            )

        def to_local(name: str, content: bytes) -> bytes:
            if name != names.CONFIG_KEY:
                return content
            return local_config(
                content,
                port=self.port,
                redis_url=redis_url,
                keys_file=self.keys_file,
                api=self.api,
                analytics_url=self.history.url if self.history is not None else None,
            )

        config_volume = kubelet_projector.ProjectedVolume(self.etc)
        keys_volume = kubelet_projector.ProjectedVolume(self.etc / "keys")
        for projector in (
            kubelet_projector.Projector(
                self.api_client, "ConfigMap", NAMESPACE, names.config_map_name(PROXY), config_volume,
                transform=to_local, on_change=self._changed,
            ),
            kubelet_projector.Projector(
                self.api_client, "Secret", NAMESPACE, names.keys_secret_name(PROXY), keys_volume,
                on_change=self._changed,
            ),
        ):  # fmt: skip
            projector.start()
            self._teardown.callback(projector.stop)
        kubectl_.wait_until(
            lambda: self.config_file.is_file() and self.keys_file.is_file(),
            timeout=30,
            what=f"{self.config_file} and {self.keys_file}",
        )
        self.say(f"projecting config.yaml and keys/keys.yaml into {self.etc} (..data symlink swap)")

    def _changed(self, what: str) -> None:
        self.say(f"{what} changed: files re-projected")

    def _start_proxy(self, redis_url: str, redis_password: str) -> None:
        self.say(f"starting the proxy on {self.endpoint}")
        self.proxy = self._spawn(
            "proxy",
            [
                sys.executable,
                "-m",
                "weather_proxy",
                "--config",
                str(self.config_file),
                "--log-format",
                "text",
            ],
            env={
                contract.ENV_REDIS_URL: redis_url,
                contract.ENV_REDIS_PASSWORD: redis_password,
                **(
                    {contract.ENV_ANALYTICS_PASSWORD: self.history.password}
                    if self.history is not None
                    else {}
                ),
            },
        )

        def live() -> bool:
            if not self.proxy.alive():
                raise StackError(f"the proxy exited:\n{self.proxy.log_tail()}")
            return httpx.get(f"{self.endpoint}/health/live", timeout=1).status_code == 200

        kubectl_.wait_until(live, timeout=60, what=f"the proxy at {self.endpoint}/health/live")

    # -- using it ----------------------------------------------------------------------

    def api_key(self, name: str, timeout: float = STEP_TIMEOUT) -> str:
        """The plaintext key of an ApiKey, read from the Secret its status names."""
        from weather_operator.render import names

        assert self.kubectl is not None
        kubectl = self.kubectl

        def read() -> str | None:
            status = kubectl.get("apikey", name, namespace=NAMESPACE).get("status") or {}
            secret_name = status.get("secretName")
            if not secret_name or not kubectl.exists("secret", secret_name, namespace=NAMESPACE):
                return None
            secret = kubectl.get("secret", secret_name, namespace=NAMESPACE)
            import base64

            return base64.b64decode(secret["data"][names.APIKEY_SECRET_KEY]).decode()

        return kubectl_.wait_until(read, timeout=timeout, what=f"the Secret of ApiKey {NAMESPACE}/{name}")

    def status_for(self, key: str) -> int:
        url = f"{self.endpoint}/v1/weather"
        return httpx.get(url, params={"city": "Paris"}, headers={"X-API-Key": key}, timeout=10).status_code

    def banner(self, key: str) -> str:
        return "\n".join(
            [
                "",
                "Weather Proxy Fleet dev stack is up.",
                f"  endpoint   {self.endpoint}",
                f"  api key    {key}   (ApiKey {NAMESPACE}/{self.key_name})",
                f"  try        curl -s -H 'X-API-Key: {key}' '{self.endpoint}/v1/weather?city=Paris'",
                f"  kubectl    export KUBECONFIG={self.kubeconfig_path}",
                *self.banner_extra(),
                f"  logs       {self.logs}/",
                "Ctrl-C stops everything.",
                "",
            ]
        )

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "controlplane" / "kubeconfig"

    def banner_extra(self) -> list[str]:
        return [f"  files      {self.config_file}  {self.keys_file}"]

    def watch(self) -> None:
        """Block until a signal; stop early (with its log) when a child dies."""
        while True:
            for child in self.children:
                if not child.alive():
                    raise StackError(f"{child.name} exited ({child.proc.returncode}):\n{child.log_tail()}")
            if self.operator.proc is not None and self.operator.proc.poll() is not None:
                raise StackError(f"the operator exited:\n{self.operator.log_tail(30)}")
            time.sleep(1.0)

    def check(self) -> int:
        """Measure ApiKey propagation end to end; 0 when both directions work within the bound."""
        assert self.kubectl is not None
        if self.has_node:
            self.kubectl.run(
                "-n", NAMESPACE, "wait", "--for=condition=Ready", f"weatherproxy/{self.proxy_name}",
                f"--timeout={int(STEP_TIMEOUT)}s", timeout=STEP_TIMEOUT + 10,
            )  # fmt: skip
            print(f"WeatherProxy {NAMESPACE}/{self.proxy_name} Ready: True", flush=True)
        key = self.api_key(self.key_name)
        self.say("waiting until the proxy accepts the generated key")
        kubectl_.wait_until(
            lambda: self.status_for(key) == 200, timeout=STEP_TIMEOUT, what="200 with the key"
        )
        self.say("200 with the key")

        # The clock starts before kubectl runs: its own start-up counts, so the figures are upper bounds.
        t0 = time.monotonic()
        self.kubectl.run("delete", "apikey", self.key_name, "-n", NAMESPACE, "--wait=false")
        kubectl_.wait_until(
            lambda: self.status_for(key) == 403, timeout=self.propagation_bound, interval=0.05, what="403"
        )
        rejected = time.monotonic() - t0

        t0 = time.monotonic()
        self.kubectl.apply(api_key_manifest(SECOND_API_KEY, self.proxy_name))
        second = self.api_key(SECOND_API_KEY, timeout=self.propagation_bound)
        kubectl_.wait_until(
            lambda: self.status_for(second) == 200, timeout=self.propagation_bound, interval=0.05, what="200"
        )
        accepted = time.monotonic() - t0

        print(f"ApiKey applied → proxy accepts it: {accepted:.2f} s", flush=True)
        print(f"ApiKey deleted → proxy rejects it: {rejected:.2f} s", flush=True)
        print(f"keys Secret watched through the API server: {self.watch_summary()}", flush=True)
        history = self.history_summary()
        if history:
            print(f"usage history in PostgreSQL: {history}", flush=True)
        verdict = "within" if max(accepted, rejected) <= PROPAGATION_TARGET else "OVER"
        print(f"target ≤ {PROPAGATION_TARGET:.0f} s each: {verdict}", flush=True)
        return 0

    def history_summary(self) -> str | None:
        """What the proxy wrote to its usage history (requests by status, key lifecycle events)."""
        if self.history is None:
            return None
        import psycopg

        conninfo = psycopg.conninfo.make_conninfo(self.history.url, password=self.history.password)

        def rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
            with psycopg.connect(conninfo, connect_timeout=5) as conn:
                requests = conn.execute(
                    "SELECT status, count(*) FROM requests GROUP BY 1 ORDER BY 1"
                ).fetchall()
                events = conn.execute(
                    "SELECT event, key_id FROM key_events ORDER BY time, key_id, event"
                ).fetchall()
            # Written within a second or two (the writer's flush, the audit after each key change).
            return (requests, events) if requests and len(events) >= 3 else None

        try:
            found = kubectl_.wait_until(rows, timeout=30, interval=0.5, what="rows in the usage history")
        except kubectl_.Timeout as exc:
            return f"NOT written ({exc})"
        requests, events = found
        statuses = ", ".join(f"{n} x {status}" for status, n in requests)
        lifecycle = ", ".join(f"{event} {key}" for event, key in events)
        return f"request rows {statuses}; key events {lifecycle}"

    def watch_summary(self) -> str:
        """What the proxy's readiness says of its keys watch (``checks.keys.watch``)."""
        try:
            ready = httpx.get(f"{self.endpoint}/health/ready", timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            return f"unknown ({exc})"
        watch = ready.get("checks", {}).get("keys", {}).get("watch")
        if not watch:
            return "no (auth.kubernetes not configured)"
        secrets = ", ".join(
            f"{s['name']} (resourceVersion {s['resourceVersion']}, {s['events']} events, keys in force "
            f"from the {(s.get('keys') or {}).get('source', '?')})"
            for s in watch["secrets"]
        )
        return f"{'connected' if watch['connected'] else 'NOT connected'}: {secrets}"

    # -- down --------------------------------------------------------------------------

    def down(self) -> None:
        self.say("tearing down")
        self._teardown.close()
        self.say("stopped")


class RealNodeStack(DevStack):
    """``make dev ARGS=--real-node``: the operator, the fleet and Redis run as real pods.

    The real single-node cluster of :mod:`devcluster.node` (images built here), installed
    as the README says (the CRDs, then ``kubectl apply -k``) with the local overlay
    ``e2e/overlay``: the dev overlay, the local images, the in-cluster Open-Meteo emulator
    as upstream (pods reach nothing outside this machine). The endpoint is the fleet
    Service's ClusterIP, which this host reaches through kube-proxy. Root only.
    """

    proxy_name = "paris"
    key_name = "developers"
    # The pods watch the keys Secret; a bound, not a target (a pod whose watch is down waits for
    # the kubelet's re-projection of the mounted file: up to ~1 min plus its cache TTL).
    propagation_bound = 150.0

    def __init__(self, state_dir: Path, *, build: bool) -> None:
        super().__init__(state_dir, offline=True, build=build)
        self.cluster: Any = None
        self.has_node = True

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "cluster" / "kubeconfig"

    def banner_extra(self) -> list[str]:
        from devcluster import node as node_mod

        return [
            f"  pods       kubectl get pods -A -o wide   (fleet in {NAMESPACE}, operator in weather-system)",
            f"  logs       kubectl -n {NAMESPACE} logs deployment/{self.proxy_name}",
            f"  log store  curl {node_mod.LOG_STORE_URL}/select/logsql/query -d 'query=requestId:=\"ID\"'",
        ]

    def up(self) -> None:
        from devcluster import controlplane, node

        self.logs.mkdir(parents=True, exist_ok=True)
        self.say("building (or reusing) the control-plane and node binaries")
        bin_dir = controlplane.ensure_binaries(build=self.build)
        self.say(
            "starting the cluster: control plane, containerd, kubelet, kube-proxy, kube-router,"
            " the log store and its collector, CoreDNS, metrics-server"
        )
        cluster_dir = self.state_dir / "cluster"
        if (cluster_dir / "pids").exists():
            from devcluster.cli import down

            down(cluster_dir)
        self.cluster = node.Cluster(state_dir=cluster_dir, bin_dir=bin_dir)
        self._teardown.callback(self.cluster.stop)
        self.cluster.start()
        self.kubectl = kubectl_.Kubectl(self.cluster.kubeconfig)
        self.say(f"cluster up at {self.cluster.server}  (export KUBECONFIG={self.cluster.kubeconfig})")
        self.say("installing: the CRDs, then kubectl apply -k e2e/overlay (dev overlay, local images)")
        self.kubectl.install_crds()
        base = kubectl_.REPO_ROOT / "manifests" / "base"
        for peering_crd in ("kopf.dev_clusterkopfpeerings.yaml", "kopf.dev_kopfpeerings.yaml"):
            self.kubectl.install_crds(base / peering_crd)
        overlay = kubectl_.REPO_ROOT / "e2e" / "overlay"
        self.kubectl.run("apply", "--server-side", "-k", str(overlay), timeout=STEP_TIMEOUT)
        for namespace, deployment in (("weather-system", "weather-operator"), (NAMESPACE, "openmeteo")):
            self.kubectl.run(
                "-n", namespace, "rollout", "status", f"deployment/{deployment}", "--timeout=300s"
            )
        self.say(
            f"waiting for WeatherProxy {NAMESPACE}/{self.proxy_name} to be Ready (real readiness probes)"
        )
        self.kubectl.run(
            "-n",
            NAMESPACE,
            "wait",
            "--for=condition=Ready",
            f"weatherproxy/{self.proxy_name}",
            "--timeout=300s",
        )
        service = self.kubectl.get("service", self.proxy_name, namespace=NAMESPACE)
        self.endpoint = f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"

    def watch(self) -> None:
        while True:
            for comp, proc in self.cluster._procs.items():
                if proc.poll() is not None:
                    raise StackError(
                        f"{comp} exited ({proc.returncode}); its log: {self.cluster.state_dir}/logs/"
                    )
            time.sleep(1.0)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt: the ``finally`` blocks tear the stack down."""

    def handler(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # SIGINT too: a shell that starts us in the background leaves SIGINT ignored.
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.dev", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--offline", action="store_true", help="use the Open-Meteo emulator, not the internet"
    )
    parser.add_argument("--check", action="store_true", help="run non-interactively, measure, exit 0/1")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: .dev/")
    parser.add_argument("--no-build", action="store_true", help="never build the control-plane binaries")
    parser.add_argument(
        "--real-node",
        action="store_true",
        help="real pods: a node with containerd and kubelet, images built here (root; implies --offline)",
    )
    args = parser.parse_args(argv)

    stack: DevStack
    if args.real_node:
        stack = RealNodeStack(args.state_dir.resolve(), build=not args.no_build)
    else:
        stack = DevStack(args.state_dir.resolve(), offline=args.offline, build=not args.no_build)
    with signals_raise():
        try:
            stack.up()
            key = stack.api_key(stack.key_name)
            if args.check:
                return stack.check()
            print(stack.banner(key), flush=True)
            stack.watch()
        except KeyboardInterrupt:
            print("", flush=True)
            return 0
        except (StackError, kubectl_.Timeout, kubectl_.KubectlError) as exc:
            print(f"dev stack failed: {exc}", file=sys.stderr, flush=True)
            return 1
        except Exception as exc:
            from devcluster import controlplane

            if isinstance(exc, controlplane.ControlPlaneError):
                print(f"dev stack failed: {exc}", file=sys.stderr, flush=True)
                return 1
            raise
        finally:
            stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
