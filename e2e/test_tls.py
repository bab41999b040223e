"""TLS on every hop of a fleet, on real pods: the overlay's fleet switched to ``tls.mode: Managed``.

The fleet ``paris`` (a managed Redis and, its usage history on, a managed PostgreSQL) is
patched to ``spec.tls: {mode: Managed}`` as a staging fleet has it by its preset, and then:
consumers reach it over HTTPS through its Service (inside the cluster, as other pods do) and
through a port-forward, with the fleet's CA; a client without that CA fails the handshake;
Redis refuses a plaintext client on 6379 and answers one with the CA; the proxies' readiness
reaches Redis and PostgreSQL, and every PostgreSQL client connection is encrypted; a deleted
key's erasure Job still reaches PostgreSQL; and the proxies' leaf, deleted under steady load, is
re-issued and served by every pod within RENEWAL_BOUND seconds without one failed request.
It runs last (its module is not in conftest.MODULE_ORDER): it leaves the fleet on TLS.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from e2e import cluster as k
from e2e import conftest as fx

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HTTPS_PORT = 8443  # the proxy container's listener with TLS on
SERVICE_PORT = 443  # the Service's port `https`
REDIS_PORT = 6379
RENEWAL_BOUND = 120.0  # docs/operations.md: a renewed leaf is served within 2 minutes
CLIENT = "tls-client"  # a pod of the fleet's namespace that is not the fleet's
LOAD_KEY = "tls-load"

# Inside a pod: GET argv[1] with X-API-Key argv[2], trusting only the CA PEM argv[3] (or the
# image's default trust store when it is "-"); prints the status, or the error's class and text.
GET = (
    "import ssl, sys, urllib.request as u\n"
    "ctx = ssl.create_default_context(cadata=None if sys.argv[3] == '-' else sys.argv[3])\n"
    "try:\n"
    "    with u.urlopen(u.Request(sys.argv[1], headers={'X-API-Key': sys.argv[2]}), timeout=10,"
    " context=ctx) as r:\n"
    "        print(r.status)\n"
    "except Exception as exc:\n"
    "    reason = getattr(exc, 'reason', exc)\n"
    "    print(type(reason).__name__, reason)\n"
)
# Inside a pod: the SHA-256 of the certificate each of argv[4:] (pod IPs) serves on port argv[3],
# verified against the CA PEM argv[1] for the name argv[2]; one line per address.
FINGERPRINTS = (
    "import hashlib, socket, ssl, sys\n"
    "ctx = ssl.create_default_context(cadata=sys.argv[1])\n"
    "name, port = sys.argv[2], int(sys.argv[3])\n"
    "for ip in sys.argv[4:]:\n"
    "    try:\n"
    "        with socket.create_connection((ip, port), timeout=5) as s:\n"
    "            with ctx.wrap_socket(s, server_hostname=name) as t:\n"
    "                print(hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest())\n"
    "    except OSError as exc:\n"
    "        print('error:' + type(exc).__name__)\n"
)
# Inside a proxy pod: PING Redis at argv[1] over TLS, trusting the CA file argv[2].
REDIS_TLS_PING = (
    "import os, sys, redis\n"
    "r = redis.Redis(host=sys.argv[1], port=6379, password=os.environ.get('REDIS_PASSWORD'), ssl=True,"
    " ssl_ca_certs=sys.argv[2], socket_timeout=5)\n"
    "try:\n"
    "    print(r.ping())\n"
    "except Exception as exc:\n"
    "    print(type(exc).__name__, exc)\n"
)
# Inside a proxy pod: its own readiness document over HTTPS on the loopback (the name check is
# the other tests' business: here the certificate is the pod's own).
READINESS = (
    "import ssl, urllib.request as u\n"
    "ctx = ssl.create_default_context(cafile='/etc/weather-proxy/tls/ca.crt')\n"
    "ctx.check_hostname = False\n"
    "print(u.urlopen('https://127.0.0.1:8443/health/ready', context=ctx, timeout=10).read().decode())\n"
)
INTERNAL_CA = "/etc/weather-proxy/internal-ca/ca.crt"


def _condition(kube: k.Kube, fleet: str, kind: str) -> dict[str, Any] | None:
    status = kube.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{fleet}").get("status", {})
    return next((c for c in status.get("conditions", []) if c["type"] == kind), None)


def _service_name(fleet: str) -> str:
    return f"{fleet}.{fx.NAMESPACE}.svc"


def _ready_proxy_pods(kube: k.Kube, fleet: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={fleet},app.kubernetes.io/component=proxy"
    pods = kube.json("-n", fx.NAMESPACE, "get", "pods", "-l", selector)["items"]
    return [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and p["status"].get("podIP")
        and p["status"].get("containerStatuses")
        and all(s.get("ready") for s in p["status"]["containerStatuses"])
    ]


def _secret_value(kube: k.Kube, name: str, key: str) -> str:
    secret = kube.json("-n", fx.NAMESPACE, "get", f"secret/{name}")
    return base64.b64decode(secret["data"][key]).decode()


def _pem_fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def _exec_python(kube: k.Kube, pod: str, script: str, *args: str) -> str:
    return kube.kubectl(
        "-n", fx.NAMESPACE, "exec", pod, "--", "python", "-c", script, *args, timeout=60
    ).strip()


@pytest.fixture(scope="module")
def secured(installed: k.Kube, fleet: str) -> str:
    """The fleet with ``tls.mode: Managed`` (its leaf also names localhost, for the port-forward)."""
    fx.patch_fleet(installed, fleet, {"tls": {"mode": "Managed", "dnsNames": ["localhost"]}})

    def proxies_on_https() -> bool:
        deployment = installed.json("-n", fx.NAMESPACE, "get", f"deployment/{fleet}")
        ports = deployment["spec"]["template"]["spec"]["containers"][0].get("ports", [])
        return any(p["containerPort"] == HTTPS_PORT for p in ports)

    k.eventually(proxies_on_https, 120, f"the operator to render {fleet}'s proxies with TLS", interval=2)
    workloads = [f"deployment/{fleet}", f"statefulset/{fleet}-redis"]
    if installed.kubectl(
        "-n", fx.NAMESPACE, "get", f"statefulset/{fleet}-postgres", "--ignore-not-found", "-o", "name"
    ).strip():
        workloads.append(f"statefulset/{fleet}-postgres")

    def rendered_with_tls(workload: str) -> bool:
        template = installed.json("-n", fx.NAMESPACE, "get", workload)["spec"]["template"]
        return "tls" in json.dumps(template)  # Redis: --tls-port; PostgreSQL: its leaf; proxies: listen.tls

    for workload in workloads:
        # Each restarts once onto its TLS form: wait for that template, then for its rollout.
        k.eventually(
            lambda w=workload: rendered_with_tls(w), 120, f"{workload} rendered with TLS", interval=2
        )
        installed.kubectl("-n", fx.NAMESPACE, "rollout", "status", workload, "--timeout=300s")
    k.eventually(
        lambda: (_condition(installed, fleet, "TLSReady") or {}).get("status") == "True",
        180,
        f"{fleet}'s TLSReady condition",
        interval=2,
    )
    fx.wait_ready(installed, f"weatherproxy/{fleet}")
    return fleet


@pytest.fixture(scope="module")
def ca_pem(installed: k.Kube, secured: str) -> str:
    """The fleet's CA as its consumers get it: ``ca.crt`` of the proxies' leaf Secret."""
    return _secret_value(installed, f"{secured}-tls", "ca.crt")


@pytest.fixture(scope="module")
def client_pod(installed: k.Kube, secured: str) -> Iterator[str]:
    """A pod in the proxy image that is not the fleet's: a consumer inside the cluster."""
    with fx.probe_pod(installed, CLIENT, secured) as pod:
        yield pod


def test_status_endpoint_is_https_and_the_service_has_port_https(installed: k.Kube, secured: str) -> None:
    status = installed.json("-n", fx.NAMESPACE, "get", f"weatherproxy/{secured}")["status"]
    assert status["endpoint"].startswith(f"https://{_service_name(secured)}"), status["endpoint"]
    service = installed.json("-n", fx.NAMESPACE, "get", f"service/{secured}")
    ports = {p["name"]: (p["port"], p.get("targetPort")) for p in service["spec"]["ports"]}
    assert ports.get("https", (None,))[0] == SERVICE_PORT, ports
    message = (_condition(installed, secured, "TLSReady") or {}).get("message", "")
    assert "notAfter" in message or "expires" in message, message


def test_a_consumer_in_the_cluster_is_served_over_https_with_the_fleet_ca(
    installed: k.Kube, secured: str, ca_pem: str, client_pod: str
) -> None:
    key = fx.key_of(installed, "developers")
    url = f"https://{_service_name(secured)}/v1/weather?city=Paris"
    k.eventually(
        lambda: _exec_python(installed, client_pod, GET, url, key, ca_pem) == "200",
        120,
        "a 200 over HTTPS through the fleet's Service",
        interval=2,
    )
    # The image's own trust store does not know the fleet's CA: the handshake fails.
    refused = _exec_python(installed, client_pod, GET, url, key, "-")
    assert refused.startswith("SSLCertVerificationError"), refused
    # Nor is anything served in plaintext on the Service's port.
    plain = _exec_python(
        installed,
        client_pod,
        GET,
        f"http://{_service_name(secured)}:{SERVICE_PORT}/v1/weather?city=Paris",
        key,
        "-",
    )
    assert plain != "200", plain


def test_a_port_forward_serves_https_to_curl_with_the_ca(
    installed: k.Kube, secured: str, ca_pem: str, tmp_path: Any
) -> None:
    key = fx.key_of(installed, "developers")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(ca_pem)
    with installed.port_forward(f"service/{secured}", SERVICE_PORT, fx.NAMESPACE) as port:
        url = f"https://localhost:{port}/v1/weather?city=Paris"
        curl = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"X-API-Key: {key}", url]
        ok = subprocess.run([*curl, "--cacert", str(ca_file)], capture_output=True, text=True, timeout=30)
        assert ok.stdout == "200", (ok.stdout, ok.stderr)
        without = subprocess.run(curl, capture_output=True, text=True, timeout=30)
        assert without.returncode == 60, (without.returncode, without.stderr)  # peer certificate not trusted


def test_redis_refuses_plaintext_and_answers_tls_with_the_ca(installed: k.Kube, secured: str) -> None:
    plain = installed.kubectl(
        "-n", fx.NAMESPACE, "exec", f"{secured}-redis-0", "--",
        "redis-cli", "-h", "127.0.0.1", "-p", str(REDIS_PORT), "PING", check=False, timeout=60,
    )  # fmt: skip
    assert "PONG" not in plain, plain
    pod = _ready_proxy_pods(installed, secured)[0]["metadata"]["name"]
    host = f"{secured}-redis.{fx.NAMESPACE}.svc"
    # A pod rolled onto TLS a moment ago may not resolve the headless Service's name yet (see
    # test_fleet.test_redis_reached_by_its_service_dns_name): polled, the last answer in the failure.
    answers: list[str] = []

    def pong() -> bool:
        answers.append(_exec_python(installed, pod, REDIS_TLS_PING, host, INTERNAL_CA))
        return answers[-1] == "True"

    try:
        k.eventually(pong, 90, f"a PING over TLS from {pod} to {host}", interval=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its last answer: {answers[-1:]}") from None


def test_readiness_reaches_redis_and_postgresql_over_tls(installed: k.Kube, secured: str) -> None:
    pods = _ready_proxy_pods(installed, secured)
    assert pods
    for pod in pods:
        name = pod["metadata"]["name"]
        config = installed.kubectl(
            "-n", fx.NAMESPACE, "exec", name, "--", "cat", "/etc/weather-proxy/config.yaml"
        )
        assert "rediss://" in config, config

        def ready(name: str = name) -> dict[str, Any] | None:
            doc: dict[str, Any] = json.loads(_exec_python(installed, name, READINESS))
            checks = doc.get("checks", {})
            up = checks.get("redis", {}).get("up") is True
            database = checks.get("analytics") or checks.get("database") or {}
            return doc if up and (not database or database.get("up") is True) else None

        k.eventually(ready, 90, f"{name} to report Redis (and PostgreSQL) up over TLS", interval=2)
    postgres = f"{secured}-postgres-0"
    if not installed.kubectl(
        "-n", fx.NAMESPACE, "get", f"pod/{postgres}", "--ignore-not-found", "-o", "name"
    ).strip():
        return
    # Every client connection over TCP (the proxies', the writer's) is encrypted.
    query = (
        "select count(*) filter (where s.ssl), count(*) from pg_stat_ssl s join pg_stat_activity a"
        " using (pid) where a.client_addr is not null and a.backend_type = 'client backend'"
    )

    def encrypted() -> tuple[int, int] | None:
        out = installed.kubectl(
            "-n",
            fx.NAMESPACE,
            "exec",
            postgres,
            "--",
            "psql",
            "-h",
            "/tmp",  # the socket directory of the operator's PostgreSQL (render/postgres.py)
            "-U",
            "weather",
            "-d",
            "weather",
            "-tAc",
            query,
        )
        with_ssl, total = (int(n) for n in out.strip().split("|"))
        return (with_ssl, total) if total > 0 else None

    with_ssl, total = k.eventually(encrypted, 90, "a proxy's connection to PostgreSQL", interval=2)
    assert with_ssl == total, f"{total - with_ssl} of {total} PostgreSQL client connections without TLS"


def test_the_erasure_job_reaches_postgresql_over_tls(installed: k.Kube, secured: str) -> None:
    if not installed.kubectl(
        "-n", fx.NAMESPACE, "get", f"statefulset/{secured}-postgres", "--ignore-not-found", "-o", "name"
    ).strip():
        pytest.skip(f"{secured} runs without its usage history: no PostgreSQL, no erasure Job")
    job = fx.erase_key(installed, "tls-erased", secured)
    assert job["status"].get("succeeded") == 1, json.dumps(job["status"])


class _NamedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address, verifying the certificate for another name (the Service's DNS name)."""

    def __init__(self, address: str, port: int, name: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(address, port, context=context, timeout=timeout)
        self._name = name
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self._name)


def _https_getter(address: str, port: int, name: str, ca_pem: str) -> Any:
    context = ssl.create_default_context(cadata=ca_pem)

    def get(
        url: str, headers: dict[str, str] | None = None, timeout: float = 10
    ) -> tuple[int, Message, bytes]:
        path = url.split("://", 1)[-1].split("/", 1)[1]
        connection = _NamedHTTPS(address, port, name, context, timeout)  # a new handshake each time
        try:
            connection.request("GET", "/" + path, headers={"Host": name, **(headers or {})})
            response = connection.getresponse()
            return response.status, response.msg, response.read()
        finally:
            connection.close()

    return get


@pytest.fixture(scope="module")
def load_key(installed: k.Kube, secured: str) -> str:
    """A key whose limit is far above the steady load, so a 429 is not what the load measures."""
    installed.apply(fx.apikey(LOAD_KEY, secured, rateLimit={"requestsPerMinute": 100_000, "burst": 10_000}))
    fx.wait_ready(installed, f"apikey/{LOAD_KEY}")
    return fx.key_of(installed, LOAD_KEY)


def test_a_deleted_leaf_is_reissued_and_served_by_every_pod_without_a_failed_request(
    installed: k.Kube, secured: str, ca_pem: str, client_pod: str, load_key: str
) -> None:
    key = load_key
    name = _service_name(secured)
    old = _pem_fingerprint(_secret_value(installed, f"{secured}-tls", "tls.crt"))
    if installed.host_reaches_services:
        service = installed.json("-n", fx.NAMESPACE, "get", f"service/{secured}")
        getter = _https_getter(service["spec"]["clusterIP"], SERVICE_PORT, name, ca_pem)
        url = f"https://{name}/v1/weather?city=Paris"
    else:  # kind: the host reaches no ClusterIP; through a port-forward (one pod) instead
        pytest.skip("the steady load needs the host to reach the Service (the real node)")
    # Every pod learns a new key at the kubelet's next sync of its keys Secret: wait until the
    # Service answers it many times in a row before the load starts.
    k.eventually(
        lambda: all(getter(url, {"X-API-Key": key})[0] == 200 for _ in range(10)),
        150,
        "the load key accepted by every proxy pod",
        interval=2,
    )
    with k.SteadyLoad(url, {"X-API-Key": key}, workers=4, get=getter) as load:
        time.sleep(3)  # the load runs before the change
        deleted_at = time.monotonic()
        installed.kubectl("-n", fx.NAMESPACE, "delete", f"secret/{secured}-tls")

        def reissued() -> str | None:
            found = installed.kubectl(
                "-n", fx.NAMESPACE, "get", f"secret/{secured}-tls", "--ignore-not-found", "-o", "json"
            )
            if not found.strip():
                return None
            pem = base64.b64decode(json.loads(found)["data"]["tls.crt"]).decode()
            fingerprint = _pem_fingerprint(pem)
            return fingerprint if fingerprint != old else None

        new = k.eventually(reissued, 60, f"the operator to re-issue {secured}-tls", interval=1)

        def every_pod_serves_the_new_leaf() -> list[str] | None:
            ips = [p["status"]["podIP"] for p in _ready_proxy_pods(installed, secured)]
            served = _exec_python(
                installed, client_pod, FINGERPRINTS, ca_pem, name, str(HTTPS_PORT), *ips
            ).split()
            return served if ips and all(f == new for f in served) else None

        k.eventually(
            every_pod_serves_the_new_leaf, RENEWAL_BOUND, "every proxy pod to serve the new leaf", interval=2
        )
        served_after = time.monotonic() - deleted_at
        time.sleep(3)  # and the load goes on after it
    line = (
        f"TLS leaf deleted under load: new leaf served by every pod after {served_after:.1f}s; "
        f"{load.result.sent} requests (a new handshake each), {len(load.result.failures)} failed"
    )
    k.MEASURED.append(line)
    print(f"\n[e2e timing] {line}", flush=True)
    assert load.result.sent > 0
    assert not load.result.failures, load.result.failures[:5]
