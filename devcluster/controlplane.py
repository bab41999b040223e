"""A real, local Kubernetes control plane for tests (envtest-style).

Runs etcd, kube-apiserver and kube-controller-manager (built from Go modules by
``hack/controlplane/build.sh``) as local processes on free 127.0.0.1 ports, with
generated PKI, RBAC authorization, an admin client certificate (group
``system:masters``) and an admin kubeconfig. No Docker, no kubelet: pods are
scheduled nowhere (they stay Pending) unless a kwok binary is present in the
binary folder, in which case kube-scheduler + kwok run fake nodes too.

Command line (state lives in ``.controlplane/`` at the repo root by default)::

    python -m devcluster up [--state-dir DIR] [--no-build]
    python -m devcluster status [--state-dir DIR]
    python -m devcluster down [--state-dir DIR]
    python -m devcluster env [--state-dir DIR]   # prints export KUBECONFIG=...

Pytest (session scope)::

    def test_x(kube_controlplane, kubeconfig): ...

Environment:

``WPF_KUBECONFIG``
    Reuse an already running cluster: the fixture starts nothing and yields
    this kubeconfig (e.g. ``WPF_KUBECONFIG=.controlplane/kubeconfig``).
``WPF_CONTROLPLANE_BIN_DIR``
    Use binaries from this folder instead of the build cache.
``WPF_CONTROLPLANE_CACHE``
    Root of the build cache (see ``hack/controlplane/build.sh``).
``WPF_CONTROLPLANE_BUILD=0``
    Never build; fail if the binaries are missing.
``WPF_CONTROLPLANE_KWOK=0``
    Do not start kube-scheduler/kwok even if they are built.
``WPF_CONTROLPLANE_FAKE_NODES=N``
    The fixture creates N kwok nodes at start (default 0; ``up`` creates 1).
``WPF_CONTROLPLANE_LOG_DIR=DIR``
    The fixture's control plane copies its components' logs to ``DIR/<state dir name>/`` when
    it stops (its temp state dir, logs included, is then removed); CI uploads them.
``CI=true``
    Missing binaries that cannot be built are a test failure, never a skip.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devcluster import pki
from devcluster.processes import free_port, kill_process_group, parent_death_signal, pid_alive, pid_is, tail

REPO_ROOT = Path(__file__).resolve().parents[1]
HACK_DIR = REPO_ROOT / "hack" / "controlplane"
BUILD_SCRIPT = HACK_DIR / "build.sh"
DEFAULT_STATE_DIR = REPO_ROOT / ".controlplane"

ENV_EXISTING_KUBECONFIG = "WPF_KUBECONFIG"
ENV_BIN_DIR = "WPF_CONTROLPLANE_BIN_DIR"
ENV_BUILD = "WPF_CONTROLPLANE_BUILD"
ENV_KWOK = "WPF_CONTROLPLANE_KWOK"
ENV_FAKE_NODES = "WPF_CONTROLPLANE_FAKE_NODES"
ENV_LOG_DIR = "WPF_CONTROLPLANE_LOG_DIR"

REQUIRED_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
KWOK_BINARIES = ("kube-scheduler", "kwok", "kwok-stages.yaml")
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
ADMIN_TOKEN_USER = "wpf-admin"

# Components in start order; stopped in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or reached."""


class BinariesUnavailable(ControlPlaneError):
    """Binaries are missing and cannot be built here (e.g. no Go toolchain)."""


def truthy(value: str | None) -> bool:
    """An environment flag set on (1, true, yes, on)."""
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _falsy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"0", "false", "no", "off"}


# --------------------------------------------------------------------------- binaries


def binary_dir() -> Path:
    """Where the binaries are (or would be built): env override or build cache."""
    override = os.environ.get(ENV_BIN_DIR)
    if override:
        return Path(override).expanduser().resolve()
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-bin-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def _have_all(bin_dir: Path, names: tuple[str, ...]) -> bool:
    return all(os.access(bin_dir / n, os.R_OK if n.endswith(".yaml") else os.X_OK) for n in names)


def ensure_binaries(*, build: bool | None = None, stream: Any = None) -> Path:
    """Return the binary folder, building it with ``build.sh`` when needed.

    ``build.sh`` is a fast no-op when the cached binaries match go.sum.
    Raises :class:`BinariesUnavailable` when binaries are missing and Go is absent
    (or building is disabled), :class:`ControlPlaneError` when the build fails.
    """
    if build is None:
        build = not _falsy(os.environ.get(ENV_BUILD))
    if os.environ.get(ENV_BIN_DIR):
        bin_dir = binary_dir()
        if not _have_all(bin_dir, REQUIRED_BINARIES):
            raise BinariesUnavailable(f"{ENV_BIN_DIR}={bin_dir} lacks one of {', '.join(REQUIRED_BINARIES)}")
        return bin_dir
    bin_dir = binary_dir()
    if not build:
        if _have_all(bin_dir, REQUIRED_BINARIES):
            return bin_dir
        raise BinariesUnavailable(
            f"control plane binaries missing in {bin_dir} and building is disabled "
            f"({ENV_BUILD}=0); run: bash {BUILD_SCRIPT.relative_to(REPO_ROOT)}"
        )
    if shutil.which("go") is None:
        if _have_all(bin_dir, REQUIRED_BINARIES):
            return bin_dir  # stale-check impossible without go; use what is there
        raise BinariesUnavailable(
            f"control plane binaries missing in {bin_dir} and 'go' is not installed; "
            f"install Go and run: bash {BUILD_SCRIPT.relative_to(REPO_ROOT)}"
        )
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        stdout=stream or sys.stderr,
        stderr=subprocess.STDOUT,
        check=False,
    )
    if proc.returncode != 0 or not _have_all(bin_dir, REQUIRED_BINARIES):
        raise ControlPlaneError(
            f"building the control plane failed (exit {proc.returncode}); "
            f"run `bash {BUILD_SCRIPT.relative_to(REPO_ROOT)}` to see why"
        )
    return bin_dir


# --------------------------------------------------------------------------- PKI


@dataclasses.dataclass
class Pki:
    """The files of a cluster's PKI: CA, serving and client certificates, service-account keys."""

    ca: pki.CertificateAuthority
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    kcm_cert: Path
    kcm_key: Path
    scheduler_cert: Path
    scheduler_key: Path
    sa_key: Path
    sa_pub: Path


def generate_pki(d: Path, *, service_cidr: str = SERVICE_CLUSTER_IP_RANGE, ips: tuple[str, ...] = ()) -> Pki:
    """A new CA in ``d`` and what the control plane (and a node, with its ``ips``) needs from it."""
    ca = pki.CertificateAuthority.create(d)
    dns, all_ips = pki.apiserver_names(service_cidr, ips)
    serving = ca.issue("apiserver", "kube-apiserver", server=True, dns_names=dns, ips=all_ips)
    admin = ca.issue("admin", "admin", ("system:masters",), client=True)
    kcm = ca.issue("kube-controller-manager", "system:kube-controller-manager", client=True)
    sched = ca.issue("kube-scheduler", "system:kube-scheduler", client=True)
    sa = pki.service_account_keys(d)
    return Pki(
        ca=ca,
        ca_cert=ca.cert_path,
        ca_key=ca.key_path,
        serving_cert=serving.cert,
        serving_key=serving.key,
        admin_cert=admin.cert,
        admin_key=admin.key,
        kcm_cert=kcm.cert,
        kcm_key=kcm.key,
        scheduler_cert=sched.cert,
        scheduler_key=sched.key,
        sa_key=sa.key,
        sa_pub=sa.cert,
    )


def _write_kubeconfig(path: Path, *, server: str, ca: Path, cert: Path, key: Path, user: str) -> None:
    # JSON is valid YAML; absolute paths keep the file usable from anywhere.
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "wpf-test", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [
            {"name": "wpf-test", "context": {"cluster": "wpf-test", "user": user, "namespace": "default"}}
        ],
        "current-context": "wpf-test",
        "preferences": {},
    }
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    path.chmod(0o600)


# --------------------------------------------------------------------------- control plane


@dataclasses.dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager (+ optional scheduler/kwok).

    ``ControlPlane(state_dir).start()`` ... ``.stop()``; or use it as a context manager.
    ``daemon=True`` leaves the processes running after this Python process exits
    (used by the ``up`` CLI); otherwise an atexit hook stops them.
    """

    state_dir: Path | None = None
    bin_dir: Path | None = None
    daemon: bool = False
    kwok: bool | None = None
    start_timeout: float = 120.0
    extra_apiserver_args: tuple[str, ...] = ()
    fake_nodes: int = 0  # kwok nodes to create at start (only when kwok runs)
    bind_address: str = "127.0.0.1"  # where kube-apiserver listens (and advertises, when not loopback)
    service_cidr: str = SERVICE_CLUSTER_IP_RANGE
    log_copy_dir: Path | None = None  # stop() copies logs/ to <log_copy_dir>/<state dir name>/

    kubeconfig: Path = dataclasses.field(init=False)
    server: str = dataclasses.field(init=False, default="")
    token: str = dataclasses.field(init=False, default="")
    ca_file: Path = dataclasses.field(init=False)
    pids: dict[str, int] = dataclasses.field(init=False, default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = dataclasses.field(init=False, default_factory=dict)
    _owns_state_dir: bool = dataclasses.field(init=False, default=False)

    # -- public API ------------------------------------------------------------------

    def start(self) -> ControlPlane:
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="wpf-controlplane-"))
            self._owns_state_dir = True
        self.state_dir = Path(self.state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.bin_dir is None:
            self.bin_dir = ensure_binaries()
        if self.kwok is None:
            self.kwok = not _falsy(os.environ.get(ENV_KWOK)) and _have_all(self.bin_dir, KWOK_BINARIES)
        if not self.daemon:
            atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every component (reverse order), by process group. Idempotent."""
        self._stop_components(COMPONENTS)
        self._copy_logs()
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def _copy_logs(self) -> None:
        """Keep the components' logs in ``log_copy_dir`` (a temp state dir is removed next)."""
        if self.log_copy_dir is None or self.state_dir is None:
            return
        logs = self.state_dir / "logs"
        if logs.is_dir():
            with contextlib.suppress(OSError):  # a failed copy must not keep the processes or the dir
                shutil.copytree(logs, Path(self.log_copy_dir) / self.state_dir.name, dirs_exist_ok=True)

    def _stop_components(self, components: tuple[str, ...]) -> None:
        for comp in reversed(components):
            pid = self.pids.pop(comp, None)
            if pid is None:
                continue
            proc = self._procs.pop(comp, None)
            if proc is not None or pid_is(pid, comp):
                kill_process_group(pid)
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.wait(timeout=1)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    # -- internals -------------------------------------------------------------------

    def _spawn(
        self, comp: str, args: list[str], exe: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        assert self.state_dir is not None
        assert self.bin_dir is not None
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        log_path = log_dir / f"{comp}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [exe or str(self.bin_dir / comp), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg tears down all of it
                cwd=self.state_dir,
                env=None if env is None else {**os.environ, **env},
                preexec_fn=None if self.daemon else parent_death_signal(),
            )
        self._procs[comp] = proc
        self.pids[comp] = proc.pid
        self._write_pids()
        return proc

    def _write_pids(self) -> None:
        assert self.state_dir is not None
        (self.state_dir / "pids").write_text(json.dumps(self.pids, indent=2) + "\n")

    def _check_alive(self, comp: str) -> None:
        proc = self._procs[comp]
        if proc.poll() is not None:
            assert self.state_dir is not None
            log = self.state_dir / "logs" / f"{comp}.log"
            raise ControlPlaneError(
                f"{comp} exited with code {proc.returncode} during start-up; "
                f"last lines of {log}:\n{tail(log)}"
            )

    def _wait(self, what: str, comps: tuple[str, ...], probe: Any, deadline: float) -> Any:
        last: object = None
        while time.monotonic() < deadline:
            for c in comps:
                self._check_alive(c)
            try:
                result = probe()
                if result:
                    return result
            except Exception as exc:
                last = exc
            time.sleep(0.25)
        assert self.state_dir is not None
        log_files = [self.state_dir / "logs" / f"{c}.log" for c in comps]
        logs = "\n".join(f"--- {c} ({f}):\n{tail(f, 25)}" for c, f in zip(comps, log_files, strict=True))
        raise ControlPlaneError(f"timed out waiting for {what} (last error: {last!r})\n{logs}")

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
        return ctx

    def _get(self, path: str) -> tuple[int, bytes]:
        return self._request("GET", path)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(
            self.server + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def add_fake_node(self, name: str) -> None:
        """Create a kwok-managed Node (needs ``kwok``) and wait until it is Ready."""
        if not self.kwok:
            raise ControlPlaneError("fake nodes need kwok (built by hack/controlplane/build.sh)")
        status, body = self._request("POST", "/api/v1/nodes", fake_node_manifest(name))
        if status not in (201, 409):
            raise ControlPlaneError(f"creating fake node {name}: HTTP {status}: {body[:300]!r}")

        def ready() -> bool:
            code, raw = self._get(f"/api/v1/nodes/{name}")
            conds = json.loads(raw).get("status", {}).get("conditions", []) if code == 200 else []
            return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

        self._wait(f"fake node {name} Ready", ("kwok",), ready, time.monotonic() + 60)

    def _start(self) -> None:
        assert self.state_dir is not None
        sd = self.state_dir
        deadline = time.monotonic() + self.start_timeout
        self._pki = pki = self._make_pki(sd / "pki")
        self.ca_file = pki.ca_cert
        self.token = os.urandom(16).hex()
        token_file = sd / "pki" / "tokens.csv"
        token_file.write_text(f'{self.token},{ADMIN_TOKEN_USER},{ADMIN_TOKEN_USER},"system:masters"\n')
        token_file.chmod(0o600)

        # etcd
        etcd_client, etcd_peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_client}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"
        self._spawn(
            "etcd",
            [
                "--name=default",
                f"--data-dir={sd / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )

        def etcd_healthy() -> bool:
            with urllib.request.urlopen(etcd_url + "/health", timeout=2) as r:
                return bool(json.loads(r.read()).get("health") == "true")

        self._wait("etcd /health", ("etcd",), etcd_healthy, deadline)

        # kube-apiserver
        port = free_port()
        self.server = f"https://{self.bind_address}:{port}"
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.bind_address}",
                f"--secure-port={port}",
                f"--cert-dir={sd / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--token-auth-file={token_file}",
                "--authorization-mode=Node,RBAC",
                f"--service-cluster-ip-range={self.service_cidr}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--allow-privileged=true",
                "--profiling=false",
                "--enable-priority-and-fairness=false",
                *self._apiserver_args(pki),
                *self.extra_apiserver_args,
            ],
        )
        self._wait(
            "kube-apiserver /readyz",
            ("etcd", "kube-apiserver"),
            lambda: self._get("/readyz")[0] == 200,
            deadline,
        )

        self.kubeconfig = sd / "kubeconfig"
        _write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca=pki.ca_cert,
            cert=pki.admin_cert,
            key=pki.admin_key,
            user="admin",
        )
        kcm_kubeconfig = self._client_kubeconfig(
            "kube-controller-manager", pki.kcm_cert, pki.kcm_key, "system:kube-controller-manager"
        )

        # kube-controller-manager
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={kcm_kubeconfig}",
                "--controllers=*",
                "--leader-elect=false",
                "--secure-port=0",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                f"--service-cluster-ip-range={self.service_cidr}",
                "--concurrent-gc-syncs=5",
            ],
        )

        if self.kwok:
            self._start_scheduler(pki)
            self._start_kwok()
            for i in range(self.fake_nodes):
                self.add_fake_node(f"kwok-node-{i}")

        self._wait(
            "the 'default' ServiceAccount (created by kube-controller-manager)",
            ("etcd", "kube-apiserver", "kube-controller-manager"),
            lambda: self._get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            deadline,
        )
        (sd / "state.json").write_text(
            json.dumps(
                {
                    "server": self.server,
                    "kubeconfig": str(self.kubeconfig),
                    "ca_file": str(self.ca_file),
                    "token": self.token,
                    "etcd": etcd_url,
                    "bin_dir": str(self.bin_dir),
                    "kwok": bool(self.kwok),
                    **self._state_extra(),
                },
                indent=2,
            )
            + "\n"
        )
        (sd / "state.json").chmod(0o600)

    # -- hooks for a cluster with a real node (devcluster.node.Cluster) --------------

    def _make_pki(self, directory: Path) -> Pki:
        return generate_pki(directory, service_cidr=self.service_cidr)

    def _apiserver_args(self, pki: Pki) -> list[str]:
        return []

    def _state_extra(self) -> dict[str, Any]:
        return {}

    def _client_kubeconfig(self, name: str, cert: Path, key: Path, user: str) -> Path:
        """``<state dir>/<name>.kubeconfig``: this cluster, authenticated by a client certificate."""
        assert self.state_dir is not None
        path = self.state_dir / f"{name}.kubeconfig"
        _write_kubeconfig(path, server=self.server, ca=self.ca_file, cert=cert, key=key, user=user)
        return path

    def _start_scheduler(self, pki: Pki) -> None:
        sched_kubeconfig = self._client_kubeconfig(
            "kube-scheduler", pki.scheduler_cert, pki.scheduler_key, "system:kube-scheduler"
        )
        self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={sched_kubeconfig}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
            ],
        )

    def _start_kwok(self) -> None:
        assert self.bin_dir is not None
        # kwok: manage every node annotated kwok.x-k8s.io/node=fake; runs pods on them.
        self._spawn(
            "kwok",
            [
                f"--config={self.bin_dir / 'kwok-stages.yaml'}",
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
                "--disregard-status-with-label-selector=",
                "--cidr=10.244.0.0/16",
                "--node-ip=10.244.0.1",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )


# --------------------------------------------------------------------------- fake nodes (kwok)


def fake_node_manifest(name: str = "kwok-node-0") -> dict[str, Any]:
    """A Node that kwok (if running) keeps Ready and runs pods on."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
            },
        },
        "spec": {"taints": []},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


# --------------------------------------------------------------------------- daemon state
# What a started control plane leaves in its state dir, read back by ``python -m devcluster``
# (status, stop) and by the fixtures reusing a running one.


def read_state(state_dir: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """The components' pids and the state (server URL, CA file, bin dir) of a state dir; empty if none."""
    pids: dict[str, int] = {}
    state: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        pids = {k: int(v) for k, v in json.loads((state_dir / "pids").read_text()).items()}
    with contextlib.suppress(OSError, ValueError):
        state = json.loads((state_dir / "state.json").read_text())
    return pids, state


def running_components(pids: dict[str, int]) -> dict[str, bool]:
    """Component -> whether its recorded pid is still that component (not a reused pid)."""
    return {c: pid_alive(p) and pid_is(p, c) for c, p in pids.items()}


def readyz(state_dir: Path, state: dict[str, Any]) -> bool:
    """Whether the state dir's kube-apiserver answers /readyz with 200 (admin client certificate)."""
    try:
        ctx = ssl.create_default_context(cafile=state["ca_file"])
        ctx.load_cert_chain(str(state_dir / "pki" / "admin.crt"), str(state_dir / "pki" / "admin.key"))
        with urllib.request.urlopen(state["server"] + "/readyz", context=ctx, timeout=3) as r:
            return bool(r.status == 200)
    except Exception:
        return False
