"""The proxy watches its keys Secret through a real kube-apiserver, with the RBAC the operator renders.

* The operator runs with exactly its ClusterRole (a ServiceAccount token, not the admin
  certificate), so creating the proxy pods' ServiceAccount, Role and RoleBinding passes
  the API server's RBAC escalation check for real.
* The proxy's ServiceAccount token (TokenRequest) may get, list and watch its keys Secret
  and nothing else.
* A proxy process whose mounted keys file never changes still follows ApiKeys applied,
  disabled, rotated, expired and deleted: the changes come through the watch.
* With the API server unreachable the mounted file takes over, a stale one changes
  nothing, and the watch resumes when the API server is back.
* A watch from a compacted resourceVersion (410 Gone, from a control plane without watch
  cache, so that etcd's compaction shows) lists again; a rotated token file is read again.

Timing bounds are generous polls, not measurements: ``make e2e`` and ``hack.dev --check``
print the figures.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import pathlib
import ssl
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from devcluster import controlplane
from devcluster import openmeteo as om
from devcluster.fixtures import openmeteo  # noqa: F401
from hack import kubectl as kubectl_
from hack import operator_process
from testbed import proxy_process
from tests.integration.operator import conftest as suite
from tests.integration.operator import fleet as f
from tests.integration.proxy import scenario
from tests.support import tcp_relay
from weather_operator.render import names, rbac
from weather_proxy import config as proxy_config
from weather_proxy import contract
from weather_proxy.auth import keywatch
from weather_proxy.observability import metrics as metrics_mod

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.slow]

REPO = kubectl_.REPO_ROOT
PROXY = "paris"
BOUND = 30.0  # a poll's bound; the watch usually takes well under a second


def endpoint(kubeconfig: pathlib.Path) -> tuple[str, str]:
    """(server URL, CA file) of a kubeconfig written by devcluster."""
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    return str(cluster["server"]), str(cluster["certificate-authority"])


def token_kubeconfig(path: pathlib.Path, admin: pathlib.Path, token: str) -> pathlib.Path:
    server, ca = endpoint(admin)
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": ca}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    path.chmod(0o600)
    return path


def create_token(kubectl: kubectl_.Kubectl, namespace: str, account: str, *bound: str) -> str:
    """A TokenRequest token of ``account`` (``bound``: e.g. ``--bound-object-kind Secret ...``)."""
    return kubectl.run("-n", namespace, "create", "token", account, "--duration=1h", *bound).strip()


def keys_secret(namespace: str, keys: proxy_config.KeysFile, name: str = "paris-keys") -> dict[str, Any]:
    text = yaml.safe_dump(keys.to_camel_dict(), sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {names.KEYS_KEY: base64.b64encode(text.encode()).decode()},
    }


def keys_of(revision: int, *plaintexts: str) -> proxy_config.KeysFile:
    return proxy_config.KeysFile(
        revision=revision,
        keys=[proxy_process.key_entry(f"weather/k{i}", p) for i, p in enumerate(plaintexts)],
    )


def poll(check: Callable[[], bool], what: str, bound: float = BOUND) -> None:
    kubectl_.wait_until(check, timeout=bound, interval=0.05, what=what)


def status(url: str, key: str) -> int:
    return scenario.weather(url, key, city="Paris").status_code


def watch_state(url: str) -> dict[str, Any]:
    watch: dict[str, Any] = httpx.get(f"{url}/health/ready", timeout=5).json()["checks"]["keys"]["watch"]
    return watch


def grant_proxy_identity(cluster: f.Cluster) -> None:
    """The ServiceAccount, Role and RoleBinding the operator renders, applied directly."""
    ns = cluster.namespace
    cluster.apply(
        rbac.render_service_account(PROXY, ns),
        rbac.render_role(PROXY, ns),
        rbac.render_role_binding(PROXY, ns),
    )


def watching_proxy(
    tmp: pathlib.Path,
    emulator: om.OpenMeteoEmulator,
    admin: pathlib.Path,
    namespace: str,
    token: str,
    initial: proxy_config.KeysFile,
    api_server: str | None = None,
) -> proxy_process.ProxyProcess:
    """A proxy process whose mounted keys file holds ``initial`` and which watches ``paris-keys``."""
    server, ca = endpoint(admin)
    token_file = tmp / "token"
    token_file.write_text(token)
    kubernetes = proxy_config.KubernetesKeys(
        namespace=namespace,
        secret_names=[names.keys_secret_name(PROXY)],
        api_server=api_server or server,
        ca_file=ca,
        token_file=str(token_file),
    )
    cfg = scenario.build_config(emulator, None)
    cfg = cfg.model_copy(update={"auth": proxy_config.Auth(required=True, kubernetes=kubernetes)})
    return proxy_process.ProxyProcess(tmp / "proxy", cfg, initial).start()


# -- the operator with its own rights -------------------------------------------------------------


@pytest.fixture(scope="module")
def restricted_operator(
    kubectl: kubectl_.Kubectl,
    kubeconfig: pathlib.Path,
    crds: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[operator_process.OperatorProcess]:
    """The operator authenticated as a ServiceAccount bound to manifests/base's ClusterRole."""
    suffix = uuid.uuid4().hex[:6]
    namespace, role_name = f"wpf-operator-{suffix}", f"weather-operator-test-{suffix}"
    role = yaml.safe_load((REPO / "manifests/base/rbac.authorization.k8s.io_v1_clusterrole.yaml").read_text())
    role["metadata"]["name"] = role_name
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": "weather-operator", "namespace": namespace}],
    }
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "weather-operator", "namespace": namespace},
        },
        role,
        binding,
    )
    directory = tmp_path_factory.mktemp("restricted-operator")
    token = create_token(kubectl, namespace, "weather-operator")
    own = token_kubeconfig(directory / "kubeconfig", kubeconfig, token)
    proc = operator_process.OperatorProcess(own, directory / "operator.log", settings=suite.OPERATOR_SETTINGS)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        kubectl.run("delete", "clusterrolebinding,clusterrole", role_name, "--ignore-not-found", check=False)
        kubectl.run("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def test_the_operator_creates_the_proxy_identity_within_its_own_rights(
    cluster: f.Cluster, restricted_operator: operator_process.OperatorProcess
) -> None:
    cluster.apply(f.weather_proxy(PROXY, cluster.namespace))
    kubectl, ns = cluster.kubectl, cluster.namespace
    poll(lambda: kubectl.exists("rolebinding", "paris-keys-reader", namespace=ns), "the RoleBinding")
    account = cluster.get("serviceaccount", "paris-proxy")
    assert account["automountServiceAccountToken"] is False
    role = cluster.get("role", "paris-keys-reader")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["paris-keys"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    binding = cluster.get("rolebinding", "paris-keys-reader")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "paris-proxy", "namespace": ns}]
    for obj in (account, role, binding):
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "WeatherProxy"
    deployment = cluster.get("deployment", PROXY)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "paris-proxy"

    # The rights are the operator's own, no more: a Role granting what it lacks is refused.
    as_operator = kubectl_.Kubectl(restricted_operator.kubeconfig)
    beyond = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "beyond", "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}],
    }
    with pytest.raises(kubectl_.KubectlError, match="forbidden"):
        as_operator.apply(beyond)

    # A deleted Role is restored (its watch event, not only the drift loop).
    kubectl.run("-n", ns, "delete", "role", "paris-keys-reader")
    poll(lambda: kubectl.exists("role", "paris-keys-reader", namespace=ns), "the Role re-created")


def test_the_proxy_token_reads_its_keys_secret_and_nothing_else(
    cluster: f.Cluster, restricted_operator: operator_process.OperatorProcess, kubeconfig: pathlib.Path
) -> None:
    cluster.apply(f.weather_proxy(PROXY, cluster.namespace))
    kubectl, ns = cluster.kubectl, cluster.namespace
    poll(lambda: kubectl.exists("secret", "paris-keys", namespace=ns), "the keys Secret")
    poll(lambda: kubectl.exists("rolebinding", "paris-keys-reader", namespace=ns), "the RoleBinding")
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other", "namespace": ns}})
    token = create_token(kubectl, ns, "paris-proxy")
    server, ca = endpoint(kubeconfig)
    base = f"/api/v1/namespaces/{ns}/secrets"
    own = {"fieldSelector": "metadata.name=paris-keys"}
    with httpx.Client(
        base_url=server,
        verify=ssl.create_default_context(cafile=ca),
        headers={"Authorization": f"Bearer {token}"},
    ) as api:

        def code(method: str, path: str, **kwargs: Any) -> int:
            return api.request(method, path, **kwargs).status_code

        poll(lambda: code("GET", f"{base}/paris-keys") == 200, "the RoleBinding in force")
        assert code("GET", base, params=own) == 200
        assert code("GET", base, params={**own, "watch": "1", "timeoutSeconds": "1"}) == 200
        assert code("GET", base) == 403  # no list of all Secrets
        assert code("GET", f"{base}/other") == 403
        assert code("GET", base, params={"fieldSelector": "metadata.name=other"}) == 403
        assert code("GET", f"{base}/paris-redis-auth") == 403
        assert (
            code(
                "PATCH",
                f"{base}/paris-keys",
                json={},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            == 403
        )
        assert code("GET", f"/api/v1/namespaces/{ns}/configmaps") == 403
        assert code("GET", "/api/v1/secrets") == 403


def test_keys_reach_a_running_proxy_through_the_watch_alone(
    cluster: f.Cluster,
    restricted_operator: operator_process.OperatorProcess,
    openmeteo: om.OpenMeteoEmulator,  # noqa: F811
    kubeconfig: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    """The proxy's mounted file stays empty: every change below came through the watch."""
    kubectl, ns = cluster.kubectl, cluster.namespace
    cluster.apply(f.weather_proxy(PROXY, ns))
    poll(lambda: kubectl.exists("rolebinding", "paris-keys-reader", namespace=ns), "the RoleBinding")
    token = create_token(kubectl, ns, "paris-proxy")
    proxy = watching_proxy(tmp_path, openmeteo, kubeconfig, ns, token, proxy_config.KeysFile())
    try:
        poll(lambda: bool(watch_state(proxy.url)["connected"]), "the watch connected")
        key, rotated = "wpk_watch_" + uuid.uuid4().hex, "wpk_rotated_" + uuid.uuid4().hex
        user_secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "team-a-own", "namespace": ns},
            "stringData": {contract.APIKEY_SECRET_KEY: key},
        }
        cluster.apply(user_secret)
        spec = {"secretName": "team-a-own", "rotationGracePeriodSeconds": 3}
        cluster.apply(f.api_key("team-a", ns, PROXY, **spec))
        poll(lambda: status(proxy.url, key) == 200, "applied -> 200")
        cluster.apply(f.api_key("team-a", ns, PROXY, **spec, disabled=True))
        poll(lambda: status(proxy.url, key) == 403, "disabled -> 403")
        cluster.apply(f.api_key("team-a", ns, PROXY, **spec, disabled=False))
        poll(lambda: status(proxy.url, key) == 200, "re-enabled -> 200")
        # Rotation of the user's Secret: the new key works, the old one until its grace ends.
        cluster.apply({**user_secret, "stringData": {contract.APIKEY_SECRET_KEY: rotated}})
        poll(lambda: status(proxy.url, rotated) == 200, "rotated key -> 200")
        poll(lambda: status(proxy.url, key) == 403, "old key after its grace -> 403")
        # Expiry in a few seconds: refused from then on.
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
        cluster.apply(f.api_key("team-a", ns, PROXY, **spec, expiresAt=soon))
        poll(lambda: status(proxy.url, rotated) == 403, "expired -> 403")
        cluster.apply(f.api_key("team-b", ns, PROXY, secretName="team-a-own"))
        poll(lambda: status(proxy.url, rotated) == 200, "another ApiKey on the same Secret -> 200")
        kubectl.run("-n", ns, "delete", "apikey", "team-b")
        poll(lambda: status(proxy.url, rotated) == 403, "deleted -> 403")
        assert proxy.keys_path.read_text() == proxy_process.to_yaml(proxy_config.KeysFile())
        watch = watch_state(proxy.url)
        assert watch["secrets"][0]["keys"]["source"] == "watch"
        assert watch["secrets"][0]["error"] is None
    finally:
        proxy.stop()


def test_the_file_covers_while_the_api_server_is_unreachable_and_the_watch_resumes(
    cluster: f.Cluster,
    openmeteo: om.OpenMeteoEmulator,  # noqa: F811
    kubeconfig: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    kubectl, ns = cluster.kubectl, cluster.namespace
    grant_proxy_identity(cluster)
    a, b, c, d = (f"wpk_{name}_{uuid.uuid4().hex}" for name in "abcd")
    cluster.apply(keys_secret(ns, keys_of(10, a)))
    server, _ = endpoint(kubeconfig)
    host, port = server.removeprefix("https://").rsplit(":", 1)
    relay = tcp_relay.TcpRelay((host, int(port))).start()
    token = create_token(kubectl, ns, "paris-proxy")
    proxy = watching_proxy(
        tmp_path,
        openmeteo,
        kubeconfig,
        ns,
        token,
        keys_of(10, a),
        api_server=f"https://127.0.0.1:{relay.port}",
    )
    try:
        poll(lambda: bool(watch_state(proxy.url)["connected"]), "the watch connected")
        assert status(proxy.url, a) == 200
        cluster.apply(keys_secret(ns, keys_of(11, b)))
        poll(lambda: status(proxy.url, b) == 200, "B through the watch")
        assert status(proxy.url, a) == 403

        relay.cut()
        poll(lambda: not watch_state(proxy.url)["connected"], "the watch noticed the cut")
        ready = httpx.get(f"{proxy.url}/health/ready", timeout=5).json()
        assert ready["status"] == "degraded"
        cluster.apply(keys_secret(ns, keys_of(12, c)))  # the proxy cannot see this
        proxy.write_keys(keys_of(10, a))  # a stale projection: older than what the watch delivered
        time.sleep(1.5)  # three polls of the file
        assert status(proxy.url, a) == 403
        proxy.write_keys(keys_of(12, c))  # the kubelet catches up
        poll(lambda: status(proxy.url, c) == 200, "C through the file")
        assert status(proxy.url, b) == 403

        relay.restore()
        poll(lambda: bool(watch_state(proxy.url)["connected"]), "the watch resumed", bound=60)
        cluster.apply(keys_secret(ns, keys_of(13, d)))
        poll(lambda: status(proxy.url, d) == 200, "D through the resumed watch")
        assert status(proxy.url, c) == 403
        metrics = httpx.get(f"{proxy.url}/metrics", timeout=5).text
        assert scenario.metric_value(metrics, "weather_proxy_keys_watch_connected") == 1
        assert (
            scenario.metric_value(metrics, "weather_proxy_keys_watch_errors_total", {"reason": "network"})
            or 0
        ) >= 1
    finally:
        proxy.stop()
        relay.stop()


# -- resourceVersion expired, token rotated ---------------------------------------------------------


@contextlib.asynccontextmanager
async def key_watch(
    settings: proxy_config.KubernetesKeys, server: str
) -> AsyncIterator[tuple[keywatch.KeyWatch, list[proxy_config.KeysFile | None]]]:
    delivered: list[proxy_config.KeysFile | None] = []
    watch = keywatch.KeyWatch(
        settings, server, lambda _name, keys: delivered.append(keys), metrics_mod.Metrics(), backoff_max=0.5
    )
    task = asyncio.get_running_loop().create_task(watch.run())
    try:
        yield watch, delivered
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], bool], what: str, within: float = BOUND) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def revisions(delivered: list[proxy_config.KeysFile | None]) -> list[int | None]:
    return [None if keys is None else keys.revision for keys in delivered]


@pytest.fixture(scope="module")
def without_watch_cache() -> Iterator[controlplane.ControlPlane]:
    """A control plane of its own whose API server reads watches from etcd (no watch cache)."""
    cp = controlplane.ControlPlane(kwok=False, extra_apiserver_args=("--watch-cache=false",))
    try:
        cp.start()
    except controlplane.ControlPlaneError as exc:
        pytest.fail(f"second control plane failed to start: {exc}")
    try:
        yield cp
    finally:
        cp.stop()


def compact_etcd(cp: controlplane.ControlPlane) -> None:
    """Compact etcd at its current revision (its gRPC gateway), as the API server does every 5 minutes."""
    assert cp.state_dir is not None
    etcd = json.loads((cp.state_dir / "state.json").read_text())["etcd"]

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"{etcd}{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    revision = int(post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"])
    post("/v3/kv/compaction", {"revision": revision, "physical": True})


async def test_a_compacted_resource_version_is_listed_again(
    without_watch_cache: controlplane.ControlPlane, tmp_path: pathlib.Path
) -> None:
    cp = without_watch_cache
    kubectl = kubectl_.Kubectl(cp.kubeconfig)
    kubectl.apply(keys_secret("default", keys_of(1)))
    token_file = tmp_path / "token"
    token_file.write_text(cp.token)  # a static admin token: this test is about resourceVersions
    settings = proxy_config.KubernetesKeys(
        namespace="default",
        secret_names=["paris-keys"],
        api_server=cp.server,
        ca_file=str(cp.ca_file),
        token_file=str(token_file),
        watch_timeout_seconds=1,
    )
    async with key_watch(settings, cp.server) as (watch, delivered):
        await eventually(lambda: revisions(delivered) == [1], "the first list")
        # Other writes move etcd on; compacted, the watch's resourceVersion is gone when it re-opens.
        for i in range(3):
            kubectl.apply(keys_secret("default", keys_of(i), name="unrelated"))
        compact_etcd(cp)
        await eventually(
            lambda: (
                (
                    watch.metrics.registry.get_sample_value(
                        "weather_proxy_keys_watch_errors_total", {"reason": "expired"}
                    )
                    or 0
                )
                >= 1
            ),
            "410 Gone",
        )
        await eventually(lambda: revisions(delivered)[-2:] == [1, 1], "listed again")
        kubectl.apply(keys_secret("default", keys_of(2)))
        await eventually(lambda: revisions(delivered)[-1] == 2, "the next change")
    assert (
        watch.metrics.registry.get_sample_value("weather_proxy_keys_watch_events_total", {"type": "listed"})
        == 2
    )


async def test_the_token_file_is_read_again_when_the_watch_reconnects(
    cluster: f.Cluster, kubeconfig: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    kubectl, ns = cluster.kubectl, cluster.namespace
    grant_proxy_identity(cluster)
    cluster.apply(keys_secret(ns, keys_of(1)))
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "anchor", "namespace": ns}})
    # Token A dies with the object it is bound to; token B is the kubelet's next rotation.
    token_a = create_token(
        kubectl, ns, "paris-proxy", "--bound-object-kind=Secret", "--bound-object-name=anchor"
    )
    token_b = create_token(kubectl, ns, "paris-proxy")
    server, ca = endpoint(kubeconfig)
    token_file = tmp_path / "token"
    token_file.write_text("not-a-token")
    settings = proxy_config.KubernetesKeys(
        namespace=ns,
        secret_names=["paris-keys"],
        api_server=server,
        ca_file=ca,
        token_file=str(token_file),
        watch_timeout_seconds=1,
    )
    state = lambda watch: watch.states["paris-keys"]  # noqa: E731
    async with key_watch(settings, server) as (watch, delivered):
        await eventually(lambda: "unauthorized" in (state(watch).error or ""), "401 with a bad token")
        token_file.write_text(token_a)
        await eventually(lambda: revisions(delivered) == [1], "the list with token A")
        kubectl.run("-n", ns, "delete", "secret", "anchor")
        with httpx.Client(base_url=server, verify=ssl.create_default_context(cafile=ca)) as api:
            poll(
                lambda: (
                    api.get("/version", headers={"Authorization": f"Bearer {token_a}"}).status_code == 401
                ),
                "token A refused",
            )
        await eventually(lambda: "unauthorized" in (state(watch).error or ""), "the re-watch refused token A")
        token_file.write_text(token_b)
        await eventually(lambda: state(watch).connected, "reconnected with token B")
        cluster.apply(keys_secret(ns, keys_of(2)))
        await eventually(lambda: revisions(delivered)[-1] == 2, "a change seen with token B")
