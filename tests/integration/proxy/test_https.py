"""HTTPS on the proxy's port under both servers, and a renewed certificate under steady load.

Real proxy processes serve a leaf of a test CA from a directory written the way the kubelet
writes a Secret volume (``..data`` swapped). uvicorn reloads the pair in process: the test swaps
it under keep-alive and new-connection load and counts failed requests and which leaf each new
handshake saw. granian's workers read the files once (docs/http-server.md, TLS): the test pins
that a swap is not picked up by a running granian, which is why the operator rolls its pods.
"""

from __future__ import annotations

import datetime
import pathlib
import ssl
import time

import httpx
import pytest

from testbed import certificates, proxy_process, tls_clients
from tests.integration.proxy import scenario
from weather_proxy import config as proxy_config
from weather_proxy import contract

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAMES = ["localhost", "127.0.0.1"]
EXPIRY = contract.METRIC_TLS_CERTIFICATE_EXPIRY


class TlsFleet:
    """A CA, a Secret-like volume holding the proxy's leaf, and the client context trusting the CA."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.ca = certificates.TestCA()
        self.ca_file = self.ca.write_ca(directory / "ca" / "ca.crt")
        self.volume = proxy_process.KubeVolume(directory / "tls")
        self.context = ssl.create_default_context(cafile=str(self.ca_file))

    def publish(self, days: int) -> certificates.Leaf:
        not_after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)
        leaf = self.ca.issue(NAMES, not_after=not_after)
        self.volume.write(leaf.files())
        return leaf

    @property
    def listen_tls(self) -> proxy_config.ServingTls:
        return proxy_config.ServingTls(
            cert_file=str(self.volume.file(certificates.CERT_FILE)),
            key_file=str(self.volume.file(certificates.KEY_FILE)),
        )


@pytest.fixture
def fleet(tmp_path: pathlib.Path) -> TlsFleet:
    return TlsFleet(tmp_path)


def start(
    fleet: TlsFleet,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    server: proxy_config.Server,
    workers: int = 1,
) -> proxy_process.ProxyProcess:
    cfg = make_config(server=server, workers=workers)
    cfg = cfg.model_copy(update={"listen": cfg.listen.model_copy(update={"tls": fleet.listen_tls})})
    return proxy_factory(cfg, scenario.standard_keys(), ca_file=fleet.ca_file)


@pytest.mark.parametrize("server", [proxy_config.Server.UVICORN, proxy_config.Server.GRANIAN])
def test_https_with_the_ca_and_no_handshake_without_it(
    fleet: TlsFleet,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    server: proxy_config.Server,
) -> None:
    leaf = fleet.publish(days=30)
    proxy = start(fleet, make_config, proxy_factory, server)
    assert proxy.url.startswith("https://")
    with httpx.Client(base_url=proxy.url, verify=fleet.context, timeout=10) as client:
        answer = client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": scenario.KEY_ALPHA}
        )
        assert answer.status_code == 200, answer.text
        ready = client.get(contract.READINESS_PATH).json()
        assert ready["checks"]["tls"]["sha256"] is not None
        assert ready["checks"]["tls"]["reload"] == (
            "in process" if server is proxy_config.Server.UVICORN else "at restart"
        )
        metrics = client.get(contract.METRICS_PATH).text
    assert scenario.metric_value(metrics, EXPIRY) == leaf.not_after.timestamp()
    assert tls_clients.served_serial(proxy.port, fleet.context) == leaf.serial
    # A client that does not trust the fleet's CA (the system's store only) fails the handshake.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{proxy.url}{contract.LIVENESS_PATH}", timeout=10)
    # Plain HTTP on the TLS port gets no HTTP answer.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{proxy.port}{contract.LIVENESS_PATH}", timeout=10).raise_for_status()
    assert proxy.stop() in proxy_process.GRACEFUL_EXIT_CODES


def test_uvicorn_serves_a_renewed_certificate_without_a_failed_request(
    fleet: TlsFleet,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    old = fleet.publish(days=30)
    proxy = start(fleet, make_config, proxy_factory, proxy_config.Server.UVICORN, workers=2)
    with tls_clients.SteadyLoad(proxy.port, fleet.context, contract.LIVENESS_PATH) as load:
        assert scenario.wait_until(lambda: load.count(old.serial) >= 20, timeout=30)
        new = fleet.publish(days=60)  # the kubelet's swap: new directory, ..data renamed, old one removed
        # Both workers reload within their file watcher's poll: every new handshake then gets the new leaf.
        assert scenario.wait_until(lambda: load.last(40) == [new.serial] * 40, timeout=30), load.last(40)
        served_before = load.ok
        assert scenario.wait_until(lambda: load.ok >= served_before + 100, timeout=30)
    assert load.failures == [], load.failures[:5]
    assert load.count(old.serial) >= 20
    assert load.count(new.serial) >= 40
    assert set(load.handshakes) == {old.serial, new.serial}
    # Whichever worker answers: the gauge is the earliest notAfter of live workers, both serve `new`.
    for _ in range(4):
        metrics = httpx.get(f"{proxy.url}{contract.METRICS_PATH}", verify=fleet.context, timeout=10).text
        assert scenario.metric_value(metrics, EXPIRY) == new.not_after.timestamp()
    assert proxy.stop() in proxy_process.GRACEFUL_EXIT_CODES
    assert proxy.log_text().count("serving a new TLS certificate") == 2  # each worker, once


def test_a_bad_renewal_keeps_the_served_certificate_and_degrades_readiness(
    fleet: TlsFleet,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    old = fleet.publish(days=30)
    proxy = start(fleet, make_config, proxy_factory, proxy_config.Server.UVICORN)
    other = fleet.ca.issue(NAMES)
    fleet.volume.write({certificates.CERT_FILE: other.cert_pem, certificates.KEY_FILE: old.key_pem})

    def ready() -> dict[str, object]:
        answer = httpx.get(f"{proxy.url}{contract.READINESS_PATH}", verify=fleet.context, timeout=10)
        tls: dict[str, object] = answer.json()["checks"]["tls"]
        return tls

    assert scenario.wait_until(lambda: ready()["ok"] is False, timeout=20)
    assert "listen.tls.keyFile" in str(ready()["error"])
    assert tls_clients.served_serial(proxy.port, fleet.context) == old.serial
    new = fleet.publish(days=60)
    assert scenario.wait_until(lambda: ready()["ok"] is True, timeout=20)
    assert tls_clients.served_serial(proxy.port, fleet.context) == new.serial
    # Files rewritten in place, the certificate first: its reload fails on the mismatch, the key's
    # succeeds and the pair is served, readiness whole again.
    newest = fleet.ca.issue(NAMES)
    data = fleet.volume.path / "..data"
    data.joinpath(certificates.CERT_FILE).write_text(newest.cert_pem)
    assert scenario.wait_until(lambda: ready()["ok"] is False, timeout=20)
    data.joinpath(certificates.KEY_FILE).write_text(newest.key_pem)
    assert scenario.wait_until(lambda: ready()["ok"] is True, timeout=20)
    assert tls_clients.served_serial(proxy.port, fleet.context) == newest.serial
    assert proxy.stop() in proxy_process.GRACEFUL_EXIT_CODES


def test_granian_serves_the_certificate_it_started_with_until_restarted(
    fleet: TlsFleet,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    old = fleet.publish(days=30)
    proxy = start(fleet, make_config, proxy_factory, proxy_config.Server.GRANIAN)
    new = fleet.publish(days=60)
    time.sleep(2.0)  # four polls of uvicorn's file watcher: granian has none for its certificate
    assert tls_clients.served_serial(proxy.port, fleet.context) == old.serial
    metrics = httpx.get(f"{proxy.url}{contract.METRICS_PATH}", verify=fleet.context, timeout=10).text
    assert scenario.metric_value(metrics, EXPIRY) == old.not_after.timestamp()
    assert proxy.stop() in proxy_process.GRACEFUL_EXIT_CODES
    proxy.start()  # what the operator's rollout does (a new pod reads the current files)
    assert tls_clients.served_serial(proxy.port, fleet.context) == new.serial
    assert proxy.stop() in proxy_process.GRACEFUL_EXIT_CODES


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda v: v.file(certificates.CERT_FILE).unlink(), "listen.tls.certFile: cannot read"),
        (lambda v: v.file(certificates.KEY_FILE).write_text("not a key\n"), "listen.tls.keyFile"),
    ],
    ids=["missing-certificate", "key-not-pem"],
)
def test_bad_files_stop_the_start_with_the_field_named(
    fleet: TlsFleet,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    break_it: object,
    message: str,
) -> None:
    fleet.publish(days=30)
    data = fleet.volume.path / "..data"
    for name in (certificates.CERT_FILE, certificates.KEY_FILE):  # plain files, to break one in place
        target = fleet.volume.file(name)
        text = target.read_text()
        target.unlink()
        target.write_text(text)
    assert data.is_symlink()
    assert callable(break_it)
    break_it(fleet.volume)
    cfg = make_config()
    cfg = cfg.model_copy(update={"listen": cfg.listen.model_copy(update={"tls": fleet.listen_tls})})
    proxy = proxy_factory(cfg, scenario.standard_keys(), ca_file=fleet.ca_file, start=False)
    proxy.start(wait=False)
    assert proxy.wait_exit(60) == 2
    assert message in proxy.log_text()
