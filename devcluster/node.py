"""A real single-node cluster: the control plane, containerd, kubelet, kube-proxy, kube-router, add-ons.

Pods really run here: containerd + runc (Debian) start the images built by
:mod:`devcluster.images`, the CNI bridge plugin wires them to the node's bridge, kube-proxy
programs Services with iptables, kube-router's firewall (only that: no routing, no service
proxy) enforces NetworkPolicies with iptables and ipsets, CoreDNS answers cluster DNS,
metrics-server feeds the HPA, and :mod:`devcluster.provisioner` binds PVCs to host folders.
Every container's output is kept in a log store: vlagent's Kubernetes collector tails the
kubelet's log files (``/var/log/containers``) and sends each line, with its pod's name,
namespace and labels, to VictoriaLogs (``LOG_STORE_URL``; LogsQL at ``/select/logsql/query``).
Pod Security Admission enforces ``restricted`` in every namespace but ``kube-system``.

Addresses (none overlap this machine's own network; pod traffic never leaves the node):

* the node, its bridge ``wpf0`` and kube-apiserver: ``10.244.0.1``; the log store: ``10.244.0.1:9428``
* pods: ``10.244.0.0/24``; Services: ``10.96.0.0/16``; cluster DNS: ``10.96.0.10``

Root only (network namespaces, iptables, mounts, cgroups). One such cluster per machine: the
bridge name and addresses are fixed so that pods, kubeconfigs and docs stay predictable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from devcluster import images
from devcluster.controlplane import (
    REPO_ROOT,
    ControlPlane,
    ControlPlaneError,
    Pki,
)
from devcluster.processes import free_port, kill_process_group, pid_alive
from weather_operator.api import analytics, constants

NODE_NAME = "wpf-node"
BRIDGE = "wpf0"
NODE_IP = "10.244.0.1"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
CNI_BIN_DIR = Path("/usr/lib/cni")
EGRESS_CHAIN = "WPF-EGRESS"
ADDONS_DIR = Path(__file__).resolve().parent / "addons"
# Which cluster owns the bridge: a second one would fight over the addresses.
OWNER_FILE = Path("/run/weather-proxy-fleet-node.json")
NODE_COMPONENTS = (
    "containerd",
    "kubelet",
    "kube-proxy",
    "kube-router",
    "provisioner",
    "victoria-logs",
    "vlagent",
)
# The log store (VictoriaLogs): on the node's address, as pods and this host reach it.
LOG_STORE_PORT = 9428
LOG_STORE_URL = f"http://{NODE_IP}:{LOG_STORE_PORT}"
# Where the kubelet links each container's log file (<pod>_<namespace>_<container>-<id>.log).
CONTAINER_LOGS_DIR = Path("/var/log/containers")
# kube-router's netpol controller: its top-level chains (jumped to from INPUT, FORWARD, OUTPUT at
# position 1), per-pod and per-policy chains, and the ipsets of the pods a policy selects.
KUBE_ROUTER_FORWARD = "KUBE-ROUTER-FORWARD"
KUBE_ROUTER_IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-", "inet6:KUBE-SRC-", "inet6:KUBE-DST-")
# Images every node runs (the add-ons); the fleet's own images are imported by the caller's choice.
SYSTEM_IMAGES = (images.PAUSE, images.COREDNS, images.METRICS_SERVER)
FLEET_IMAGES = (images.PROXY, images.OPERATOR, images.EMULATOR, images.REDIS, images.POSTGRES)
# The images a fleet runs when its spec names none, served from the local builds under the
# operator's default names, as a registry mirror would serve them: the node reaches no registry,
# and the README's quick start (e2e/test_quick_start.py) leaves them unset.
DEFAULT_IMAGE_MIRRORS = {
    images.REDIS: constants.DEFAULT_REDIS_IMAGE,
    images.POSTGRES: analytics.DEFAULT_POSTGRES_IMAGE,
}


class NodeError(ControlPlaneError):
    """The node could not be prepared, started or torn down."""


def _run(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, input=input)
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")
    return proc


def _sysctl(key: str, value: str) -> None:
    Path("/proc/sys", *key.split(".")).write_text(value)


def preflight() -> list[str]:
    """What this machine lacks for a real node (empty when it can run one)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("a real node needs root (network namespaces, iptables, mounts, cgroups)")
    for tool in (
        "containerd",
        "runc",
        "ctr",
        "iptables",
        "ipset",
        "ip",
        "conntrack",
        "socat",
        "buildah",
        "mmdebstrap",
    ):
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found (bash hack/system-packages.sh installs the node's packages)")
    for plugin in ("bridge", "host-local", "loopback", "portmap"):
        if not (CNI_BIN_DIR / plugin).exists():
            problems.append(f"CNI plugin {CNI_BIN_DIR / plugin} missing (Debian containernetworking-plugins)")
    return problems


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix) or point == str(root):
                found.append(point)
    return found


def unmount_under(root: Path) -> None:
    """Lazily unmount everything mounted below ``root`` (pod volumes, container rootfs, shm)."""
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        _run("umount", "-l", point, check=False)


@dataclasses.dataclass
class Cluster(ControlPlane):
    """:class:`ControlPlane` on the node's address, plus one real node and the add-ons.

    ``Cluster(state_dir).start()`` ... ``.stop()``; ``stop`` kills every container, removes
    the pods' network namespaces, the bridge and the iptables rules, and unmounts what the
    kubelet and containerd mounted.
    """

    fleet_images: bool = True  # also import the proxy, operator, emulator and Redis images
    bind_address: str = NODE_IP
    service_cidr: str = SERVICE_CIDR
    kwok: bool | None = False

    @property
    def containerd_address(self) -> str:
        assert self.state_dir is not None
        return str(self.state_dir / "containerd" / "containerd.sock")

    # -- ControlPlane hooks ------------------------------------------------------------

    def _make_pki(self, directory: Path) -> Pki:
        from devcluster import controlplane

        pki = controlplane.generate_pki(directory, service_cidr=self.service_cidr, ips=(NODE_IP,))
        ca = pki.ca
        self._front_proxy_ca = front = type(ca).create(directory, "front-proxy-ca", "wpf-front-proxy-ca")
        self._certs = {
            "front-proxy-client": front.issue("front-proxy-client", "front-proxy-client", client=True),
            "apiserver-kubelet-client": ca.issue(
                "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",), client=True
            ),
            "kubelet": ca.issue("kubelet", f"system:node:{NODE_NAME}", ("system:nodes",), client=True),
            "kubelet-serving": ca.issue(
                "kubelet-serving", NODE_NAME, server=True, dns_names=(NODE_NAME,), ips=(NODE_IP,)
            ),
            "kube-proxy": ca.issue("kube-proxy", "system:kube-proxy", client=True),
            "kube-router": ca.issue("kube-router", "system:kube-router", client=True),
            "vlagent": ca.issue("vlagent", "system:vlagent", client=True),
            "provisioner": ca.issue(
                "provisioner", "wpf:hostpath-provisioner", ("system:masters",), client=True
            ),
        }
        return pki

    def _apiserver_args(self, pki: Pki) -> list[str]:
        assert self.state_dir is not None
        admission = self.state_dir / "admission.yaml"
        admission.write_text((ADDONS_DIR / "admission.yaml").read_text())
        c = self._certs
        return [
            f"--advertise-address={NODE_IP}",
            f"--admission-control-config-file={admission}",
            f"--kubelet-client-certificate={c['apiserver-kubelet-client'].cert}",
            f"--kubelet-client-key={c['apiserver-kubelet-client'].key}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",
            # The aggregation layer, for metrics-server's metrics.k8s.io.
            f"--requestheader-client-ca-file={self._front_proxy_ca.cert_path}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--proxy-client-cert-file={c['front-proxy-client'].cert}",
            f"--proxy-client-key-file={c['front-proxy-client'].key}",
            "--enable-aggregator-routing=true",
        ]

    def _state_extra(self) -> dict[str, Any]:
        return {"node": NODE_NAME, "containerd": self.containerd_address, "log_store": LOG_STORE_URL}

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Cluster:
        problems = preflight()
        if problems:
            raise NodeError("this machine cannot run a real node:\n  " + "\n  ".join(problems))
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="wpf-cluster-"))
            self._owns_state_dir = True
        self.state_dir = Path(self.state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        _claim_node(self)
        super().start()
        return self

    def _start(self) -> None:
        progress = _Progress()
        progress("network: bridge, forwarding, egress guard")
        _prepare_network()
        progress("building images (cached by content)")
        wanted = SYSTEM_IMAGES + (FLEET_IMAGES if self.fleet_images else ())
        built = images.build_images(list(wanted))
        progress("control plane")
        super()._start()
        assert self.state_dir is not None
        assert self._pki is not None
        # The scheduler: kwok is off, but real pods need placing.
        self._start_scheduler(self._pki)
        progress("containerd")
        self._start_containerd()
        progress(f"importing {len(built)} images into containerd")
        images.import_images([b.archive for b in built], address=self.containerd_address)
        if self.fleet_images:
            images.tag_images(DEFAULT_IMAGE_MIRRORS, address=self.containerd_address)
        progress("kubelet and kube-proxy")
        self._start_kubelet()
        self._start_kube_proxy()
        self._start_provisioner()
        self._wait(
            "node Ready",
            ("kubelet", "containerd", "kube-proxy", "provisioner"),
            self._node_ready,
            time.monotonic() + 120,
        )
        # kube-router reads its Node at start, so it starts once the kubelet registered it.
        progress("kube-router (NetworkPolicy firewall)")
        self._start_kube_router()
        self._wait(
            "kube-router's first sync of the NetworkPolicy rules",
            ("kubelet", "containerd", "kube-proxy", "kube-router", "provisioner"),
            _kube_router_synced,
            time.monotonic() + 90,
        )
        # vlagent reads its Node at start too; the add-ons' lines are collected from their first.
        progress("log store (VictoriaLogs) and its collector (vlagent)")
        self._start_log_pipeline()
        progress("add-ons: CoreDNS, metrics-server, storage class")
        self._apply_addons()
        self._wait(
            "CoreDNS and metrics-server available",
            NODE_COMPONENTS,
            self._addons_available,
            time.monotonic() + 180,
        )
        progress("ready")

    def stop(self) -> None:
        """Stop the node, then the control plane. Idempotent."""
        self._stop_components(NODE_COMPONENTS[1:])  # all but containerd (the collector first), then it
        if self.state_dir is not None:
            teardown_node(self.state_dir, containerd_pid=self.pids.get("containerd"), bin_dir=self.bin_dir)
            self.pids.pop("containerd", None)
            containerd = self._procs.pop("containerd", None)
            if containerd is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    containerd.wait(timeout=5)
        state_dir = self.state_dir
        super().stop()
        release(state_dir)

    # -- components ----------------------------------------------------------------------

    def _start_containerd(self) -> None:
        assert self.state_dir is not None
        root = self.state_dir / "containerd"
        for sub in ("root", "state", "opt"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        net_d = self.state_dir / "cni" / "net.d"
        net_d.mkdir(parents=True, exist_ok=True)
        cni = json.loads((ADDONS_DIR / "cni.conflist").read_text())
        cni["plugins"][0]["ipam"]["dataDir"] = str(self.state_dir / "cni" / "ipam")
        (net_d / "10-wpf.conflist").write_text(json.dumps(cni, indent=2) + "\n")
        config = root / "config.toml"
        config.write_text(
            _template(
                "containerd.toml",
                ROOT=root / "root",
                STATE=root / "state",
                OPT=root / "opt",
                ADDRESS=self.containerd_address,
                PAUSE=images.PAUSE,
                CNI_BIN_DIR=CNI_BIN_DIR,
                CNI_CONF_DIR=net_d,
            )
        )
        self._spawn("containerd", [f"--config={config}"], exe=shutil.which("containerd"))
        self._wait(
            "containerd",
            ("containerd",),
            lambda: _run("ctr", "--address", self.containerd_address, "version", check=False).returncode == 0,
            time.monotonic() + 30,
        )

    def _kubeconfig_for(self, name: str, user: str) -> Path:
        pair = self._certs[name]
        return self._client_kubeconfig(name, pair.cert, pair.key, user)

    def _start_kubelet(self) -> None:
        assert self.state_dir is not None
        sd = self.state_dir
        config = sd / "kubelet-config.yaml"
        config.write_text(
            _template(
                "kubelet-config.yaml",
                CA=self.ca_file,
                CERT=self._certs["kubelet-serving"].cert,
                KEY=self._certs["kubelet-serving"].key,
                CONTAINERD=f"unix://{self.containerd_address}",
                NODE_IP=NODE_IP,
                CLUSTER_DNS=CLUSTER_DNS,
                CLUSTER_DOMAIN=CLUSTER_DOMAIN,
                POD_CIDR=POD_CIDR,
                HEALTHZ_PORT=free_port(),
            )
        )
        self._spawn(
            "kubelet",
            [
                f"--config={config}",
                f"--kubeconfig={self._kubeconfig_for('kubelet', f'system:node:{NODE_NAME}')}",
                f"--root-dir={sd / 'kubelet'}",
                f"--node-ip={NODE_IP}",
                f"--hostname-override={NODE_NAME}",
                "--v=1",
            ],
        )

    def _start_kube_proxy(self) -> None:
        assert self.state_dir is not None
        config = self.state_dir / "kube-proxy-config.yaml"
        config.write_text(
            _template(
                "kube-proxy-config.yaml",
                KUBECONFIG=self._kubeconfig_for("kube-proxy", "system:kube-proxy"),
                POD_CIDR=POD_CIDR,
                NODE_NAME=NODE_NAME,
                NODE_IP=NODE_IP,
                HEALTHZ_PORT=free_port(),
                METRICS_PORT=free_port(),
            )
        )
        self._spawn("kube-proxy", [f"--config={config}", "--v=1"])

    def _start_kube_router(self) -> None:
        """kube-router with only its firewall: NetworkPolicies as iptables rules and ipsets.

        No routing (one node, the CNI bridge) and no service proxy (kube-proxy's job). Its client
        certificate's user, ``system:kube-router``, gets the ClusterRole of kube-router-rbac.yaml.
        """
        assert self.state_dir is not None
        assert self.bin_dir is not None
        if not (self.bin_dir / "kube-router").exists():
            raise NodeError(
                f"kube-router missing in {self.bin_dir}: run bash hack/controlplane/build.sh "
                "(with WPF_CONTROLPLANE_NODE unset)"
            )
        self._kubectl_apply(ADDONS_DIR / "kube-router-rbac.yaml")
        self._spawn(
            "kube-router",
            [
                f"--kubeconfig={self._kubeconfig_for('kube-router', 'system:kube-router')}",
                f"--hostname-override={NODE_NAME}",
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--run-loadbalancer=false",
                "--enable-ipv6=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--health-port=0",  # its /healthz would listen on every address; readiness: the rules
                "--metrics-port=0",
                "--v=0",  # 1 logs every sync
            ],
        )

    def _start_log_pipeline(self) -> None:
        """VictoriaLogs on the node's address, and vlagent shipping every container's lines to it.

        vlagent runs on the host, not as a DaemonSet: it reads the cluster from its kubeconfig
        (its client certificate's user, ``system:vlagent``, gets the ClusterRole of
        vlagent-rbac.yaml) and, outside a pod, collects for the cluster's first node, this one.
        """
        assert self.state_dir is not None
        assert self.bin_dir is not None
        for binary in ("victoria-logs", "vlagent"):
            if not (self.bin_dir / binary).exists():
                raise NodeError(
                    f"{binary} missing in {self.bin_dir}: run bash hack/controlplane/build.sh "
                    "(with WPF_CONTROLPLANE_NODE unset)"
                )
        self._spawn(
            "victoria-logs",
            [
                f"-storageDataPath={self.state_dir / 'victoria-logs'}",
                f"-httpListenAddr={NODE_IP}:{LOG_STORE_PORT}",
                "-retentionPeriod=7d",
            ],
        )
        self._wait(
            "VictoriaLogs",
            ("victoria-logs",),
            lambda: _http_ok(f"{LOG_STORE_URL}/health"),
            time.monotonic() + 30,
        )
        self._kubectl_apply(ADDONS_DIR / "vlagent-rbac.yaml")
        agent_port = free_port()
        self._spawn(
            "vlagent",
            [
                f"-remoteWrite.url={LOG_STORE_URL}/insert/native",
                f"-tmpDataPath={self.state_dir / 'vlagent'}",
                f"-httpListenAddr=127.0.0.1:{agent_port}",
                "-kubernetesCollector",
                f"-kubernetesCollector.logsPath={CONTAINER_LOGS_DIR}",
            ],
            env={"KUBECONFIG": str(self._kubeconfig_for("vlagent", "system:vlagent"))},
        )
        # Its HTTP server starts once the collector has started (a failing start exits).
        self._wait(
            "vlagent's Kubernetes collector",
            ("victoria-logs", "vlagent"),
            lambda: _http_ok(f"http://127.0.0.1:{agent_port}/health"),
            time.monotonic() + 60,
        )

    def _kubectl_apply(self, manifest: Path) -> None:
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), "apply", "--server-side", "-f", str(manifest)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise NodeError(f"applying {manifest.name} failed: {proc.stderr.strip()}")

    def _start_provisioner(self) -> None:
        assert self.state_dir is not None
        self._spawn(
            "provisioner",
            [
                "-m",
                "devcluster.provisioner",
                f"--kubeconfig={self._kubeconfig_for('provisioner', 'wpf:hostpath-provisioner')}",
                f"--root={self.state_dir / 'volumes'}",
                f"--node={NODE_NAME}",
            ],
            exe=sys.executable,
            env={"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))},
        )

    def _node_ready(self) -> bool:
        code, raw = self._get(f"/api/v1/nodes/{NODE_NAME}")
        conds = json.loads(raw).get("status", {}).get("conditions", []) if code == 200 else []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    def _apply_addons(self) -> None:
        assert self.state_dir is not None
        manifest = self.state_dir / "addons.yaml"
        manifest.write_text(
            _template(
                "addons.yaml",
                COREDNS_IMAGE=images.COREDNS,
                METRICS_SERVER_IMAGE=images.METRICS_SERVER,
                CLUSTER_DNS=CLUSTER_DNS,
                CLUSTER_DOMAIN=CLUSTER_DOMAIN,
            )
        )
        self._kubectl_apply(manifest)

    def _addons_available(self) -> bool:
        for name in ("coredns", "metrics-server"):
            code, raw = self._get(f"/apis/apps/v1/namespaces/kube-system/deployments/{name}")
            if code != 200 or not json.loads(raw).get("status", {}).get("availableReplicas"):
                return False
        code, raw = self._get("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")
        conds = json.loads(raw).get("status", {}).get("conditions", []) if code == 200 else []
        return any(c.get("type") == "Available" and c.get("status") == "True" for c in conds)


class _Progress:
    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self, what: str) -> None:
        print(f"[node {time.monotonic() - self._start:5.1f}s] {what}", file=sys.stderr, flush=True)


def _http_ok(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
    return False


def _template(name: str, **values: object) -> str:
    return string.Template((ADDONS_DIR / name).read_text()).substitute({k: str(v) for k, v in values.items()})


# --------------------------------------------------------------------------- host network


def _kube_router_synced() -> bool:
    """kube-router finished a full sync: the explicit ACCEPT it appends last is in its FORWARD chain."""
    rules = _run("iptables", "-w", "-S", KUBE_ROUTER_FORWARD, check=False).stdout
    return "0x20000/0x20000" in rules and "-j ACCEPT" in rules


def _prepare_network() -> None:
    """The node's bridge with its address, forwarding, and a guard that keeps pod traffic local."""
    if shutil.which("modprobe") and not Path("/proc/sys/net/bridge").exists():
        _run("modprobe", "br_netfilter", check=False)
    _sysctl("net.ipv4.ip_forward", "1")
    with contextlib.suppress(OSError):
        _sysctl("net.bridge.bridge-nf-call-iptables", "1")
    if _run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
    gateway = f"{NODE_IP}/{ipaddress.ip_network(POD_CIDR).prefixlen}"
    if NODE_IP not in _run("ip", "-4", "addr", "show", BRIDGE).stdout:
        _run("ip", "addr", "add", gateway, "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    # Pods may talk to pods, Services (DNAT'd to pods before FORWARD) and the node itself
    # (INPUT); anything they send elsewhere is dropped here, before any other rule. In the
    # mangle table, whose FORWARD runs before the filter table's: there kube-router keeps its
    # own jump first and ACCEPTs what NetworkPolicies allow, pod egress to anywhere included.
    mangle = ("iptables", "-w", "-t", "mangle")
    if _run(*mangle, "-L", EGRESS_CHAIN, "-n", check=False).returncode != 0:
        _run(*mangle, "-N", EGRESS_CHAIN)
    _run(*mangle, "-F", EGRESS_CHAIN)
    _run(*mangle, "-A", EGRESS_CHAIN, "-s", POD_CIDR, "-d", POD_CIDR, "-j", "RETURN")
    _run(*mangle, "-A", EGRESS_CHAIN, "-s", POD_CIDR, "-j", "DROP")
    if _run(*mangle, "-C", "FORWARD", "-j", EGRESS_CHAIN, check=False).returncode != 0:
        _run(*mangle, "-I", "FORWARD", "1", "-j", EGRESS_CHAIN)


def _remove_network() -> None:
    for table in ("mangle", "filter"):  # filter: where the guard was before kube-router came
        iptables = ("iptables", "-w", "-t", table)
        while _run(*iptables, "-D", "FORWARD", "-j", EGRESS_CHAIN, check=False).returncode == 0:
            pass
        _run(*iptables, "-F", EGRESS_CHAIN, check=False)
        _run(*iptables, "-X", EGRESS_CHAIN, check=False)
    _remove_kube_chains()
    _remove_kube_router_ipsets()
    _run("ip", "link", "delete", BRIDGE, check=False)


def _remove_kube_chains() -> None:
    """Drop the KUBE-* chains and the rules that jump to them (kubelet's, kube-proxy's, kube-router's)."""
    for table in ("filter", "nat", "mangle"):
        saved = _run("iptables-save", "-t", table, check=False).stdout
        if "KUBE-" not in saved:
            continue
        kept = "\n".join(line for line in saved.splitlines() if "KUBE-" not in line) + "\n"
        _run("iptables-restore", "-w", "-T", table, input=kept, check=False)


def _remove_kube_router_ipsets() -> None:
    """kube-router's ipsets (once no rule uses them: after :func:`_remove_kube_chains`)."""
    if shutil.which("ipset") is None:
        return
    for name in _run("ipset", "list", "-n", check=False).stdout.split():
        if name.startswith(KUBE_ROUTER_IPSET_PREFIXES):
            _run("ipset", "destroy", name, check=False)


def _netns_before(state_dir: Path) -> set[str]:
    """The pod network namespaces that existed before this cluster started (recorded at start)."""
    with contextlib.suppress(OSError, ValueError):
        return set(json.loads((state_dir / "netns.json").read_text()))
    return set()


def teardown_node(state_dir: Path, *, containerd_pid: int | None, bin_dir: Path | None) -> None:
    """Kill every container, stop containerd, and undo what the node did to this machine."""
    address = str(state_dir / "containerd" / "containerd.sock")
    if Path(address).exists():
        listed = _run("ctr", "--address", address, "-n", "k8s.io", "tasks", "ls", "-q", check=False)
        for task in listed.stdout.split():
            _run(
                "ctr",
                "--address",
                address,
                "-n",
                "k8s.io",
                "tasks",
                "kill",
                "-a",
                "-s",
                "SIGKILL",
                task,
                check=False,
            )
    if containerd_pid is not None and pid_alive(containerd_pid):
        kill_process_group(containerd_pid)
    _kill_shims(address)
    before = _netns_before(state_dir)
    for ns in sorted(_pod_netns() - before):
        _run("ip", "netns", "delete", ns, check=False)
    unmount_under(state_dir)
    if bin_dir is not None and (bin_dir / "kube-proxy").exists():
        _run(str(bin_dir / "kube-proxy"), "--cleanup", check=False)
    _remove_network()


def _pod_netns() -> set[str]:
    with contextlib.suppress(OSError):
        return {p.name for p in Path("/run/netns").iterdir() if p.name.startswith("cni-")}
    return set()


def _kill_shims(address: str) -> None:
    """containerd-shim-runc-v2 processes of this containerd (they outlive it on purpose)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
                kill_process_group(int(proc.name), timeout=3)


def _claim_node(cluster: Cluster) -> None:
    """Own the bridge and addresses; clean up after a previous cluster that died without stopping."""
    assert cluster.state_dir is not None
    if OWNER_FILE.exists():
        with contextlib.suppress(OSError, ValueError, KeyError):
            stale = Path(json.loads(OWNER_FILE.read_text())["state_dir"])
            pids: dict[str, int] = {}
            with contextlib.suppress(OSError, ValueError):
                pids = json.loads((stale / "pids").read_text())
            if stale != cluster.state_dir and any(pid_alive(int(p)) for p in pids.values()):
                raise NodeError(
                    f"another real-node cluster runs here ({stale}); stop it first "
                    f"(python -m devcluster down --state-dir {stale})"
                )
            print(f"cleaning up a real-node cluster that was not stopped ({stale})", file=sys.stderr)
            teardown_node(stale, containerd_pid=pids.get("containerd"), bin_dir=None)
    OWNER_FILE.write_text(json.dumps({"state_dir": str(cluster.state_dir)}) + "\n")
    # Network namespaces that exist before this cluster are not its to delete.
    (cluster.state_dir / "netns.json").write_text(json.dumps(sorted(_pod_netns())) + "\n")


def release(state_dir: Path | None) -> None:
    """Give up the node's bridge and addresses (after :func:`teardown_node`)."""
    with contextlib.suppress(OSError, ValueError):
        owner = json.loads(OWNER_FILE.read_text())
        if owner.get("state_dir") == str(state_dir):
            OWNER_FILE.unlink()
