"""spec.tls on a real API server: the fleet's CA and leaves (Managed), the user's Secret, cert-manager.

cert-manager's controller cannot be built here: its CRDs (copied from the Go module, in
cert-manager-crds/) are installed, and ``_issue_as_cert_manager_would`` stands in for its CA
issuer (it signs the Certificate's names with a test CA and writes tls.crt, tls.key and ca.crt
into the Certificate's Secret). The CRDs are removed again at the end of the module.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from hack import kubectl as kubectl_
from tests.integration.operator import fleet
from weather_operator import certificates
from weather_operator.render import names

pytestmark = [pytest.mark.controlplane, pytest.mark.integration, pytest.mark.usefixtures("operator")]

PROXY = "paris"
CERT_MANAGER_CRDS = Path(__file__).parent / "cert-manager-crds"


def _pem(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def _cert(secret: dict[str, Any]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_pem(secret, names.TLS_CERT_KEY))


def _tls_ready(cluster: fleet.Cluster, status: str, reason: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        cond = cluster.condition("wp", PROXY, "TLSReady")
        return cond if cond and (cond["status"], cond["reason"]) == (status, reason) else None

    found: dict[str, Any] = cluster.wait(probe, f"condition TLSReady={status} ({reason})")
    return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_managed_issues_a_ca_and_leaves_and_reissues_a_deleted_or_due_leaf(cluster: fleet.Cluster) -> None:
    cluster.apply(
        fleet.weather_proxy(
            PROXY, cluster.namespace, environment="staging", tls={"dnsNames": ["w.example.com"]}
        )
    )
    ca_secret = cluster.wait_for("secret", names.tls_ca_secret_name(PROXY))
    leaf_secret = cluster.wait_for("secret", names.tls_secret_name(PROXY))
    redis_secret = cluster.wait_for("secret", names.redis_tls_secret_name(PROXY))
    postgres_secret = cluster.wait_for("secret", names.postgres_tls_secret_name(PROXY))

    ca_pem = _pem(ca_secret, names.CA_CERT_KEY)
    assert leaf_secret["type"] == "kubernetes.io/tls"
    ns = cluster.namespace
    for secret, service in (
        (leaf_secret, PROXY),
        (redis_secret, names.redis_service_name(PROXY)),
        (postgres_secret, names.postgres_name(PROXY)),
    ):
        cert = _cert(secret)
        assert certificates.signed_by(cert, ca_pem)
        assert _pem(secret, names.CA_CERT_KEY) == ca_pem
        assert {service, f"{service}.{ns}", f"{service}.{ns}.svc", f"{service}.{ns}.svc.cluster.local"} <= (
            certificates.dns_names_of(cert)
        )
        assert secret["metadata"]["ownerReferences"][0]["name"] == PROXY
    leaf = _cert(leaf_secret)
    assert "w.example.com" in certificates.dns_names_of(leaf)
    # Managed leaves live 90 days; the CA's key stays in its own Secret.
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= datetime.timedelta(days=91)
    assert names.CA_KEY_KEY not in leaf_secret["data"]

    cond = _tls_ready(cluster, "True", "CertificateReady")
    assert leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ") in cond["message"]
    assert cluster.get("wp", PROXY)["status"]["endpoint"] == f"https://{PROXY}.{ns}.svc"
    deployment = cluster.get("deployment", names.deployment_name(PROXY))
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == names.tls_secret_name(PROXY)
    assert volumes["internal-ca"]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert cluster.config(PROXY)["redis"]["url"].startswith("rediss://")

    # Deleted: issued again (a new certificate of the same CA).
    serial = leaf.serial_number
    cluster.delete("secret", names.tls_secret_name(PROXY))

    def reissued() -> x509.Certificate | None:
        secret = cluster.get_or_none("secret", names.tls_secret_name(PROXY))
        return _cert(secret) if secret is not None and _cert(secret).serial_number != serial else None

    again = cluster.wait(reissued, "the deleted leaf issued again")
    assert certificates.signed_by(again, ca_pem)

    # Two thirds through its life (a leaf issued 61 days ago, put there by someone else): renewed.
    ca = certificates.Pair(ca_pem, _pem(ca_secret, names.CA_KEY_KEY))
    old_now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=61)
    old = certificates.issue_leaf(ca, certificates.dns_names_of(again), old_now)
    due = x509.load_pem_x509_certificate(old.cert_pem)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": names.tls_secret_name(PROXY), "namespace": ns},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": _b64(old.cert_pem), "tls.key": _b64(old.key_pem), "ca.crt": _b64(ca_pem)},
        }
    )

    def renewed() -> x509.Certificate | None:
        cert = _cert(cluster.get("secret", names.tls_secret_name(PROXY)))
        return cert if cert.serial_number not in {due.serial_number, again.serial_number} else None

    fresh = cluster.wait(renewed, "the leaf past two thirds of its life renewed")
    assert fresh.not_valid_after_utc > due.not_valid_after_utc


def test_secret_mode_names_the_field_until_the_users_secret_is_there(cluster: fleet.Cluster) -> None:
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, tls={"mode": "Secret", "secretName": "mine"}))
    cond = _tls_ready(cluster, "False", "SecretNotFound")
    assert "spec.tls.secretName" in cond["message"]
    assert "'mine'" in cond["message"]
    # The rest of the fleet is there; the proxies serve the user's Secret, the internal hops the fleet's CA.
    deployment = cluster.wait_for("deployment", names.deployment_name(PROXY))
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "mine"
    cluster.wait_for("secret", names.redis_tls_secret_name(PROXY))

    # Without tls.crt (a kubernetes.io/tls Secret must have it: an Opaque one).
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mine", "namespace": cluster.namespace},
            "type": "Opaque",
            "data": {"tls.key": _b64(b"not a key")},
        }
    )
    cond = _tls_ready(cluster, "False", "SecretInvalid")
    assert "spec.tls.secretName" in cond["message"]
    assert "tls.crt" in cond["message"]

    now = datetime.datetime.now(datetime.UTC)
    ca = certificates.new_ca("the user's CA", now)
    leaf = certificates.issue_leaf(ca, [f"{PROXY}.{cluster.namespace}.svc"], now)
    cluster.delete("secret", "mine", wait=True)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "mine", "namespace": cluster.namespace},
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": _b64(leaf.cert_pem),
                "tls.key": _b64(leaf.key_pem),
                "ca.crt": _b64(ca.cert_pem),
            },
        }
    )
    # The user's Secret is not watched: the next look finds it (the drift repair here; every 5 minutes).
    cond = _tls_ready(cluster, "True", "CertificateReady")
    assert (
        x509.load_pem_x509_certificate(leaf.cert_pem).not_valid_after_utc.strftime("%Y-%m-%d")
        in cond["message"]
    )


@pytest.fixture
def cert_manager_crds(kubectl: kubectl_.Kubectl) -> Iterator[None]:
    yield
    kubectl.uninstall_crds(CERT_MANAGER_CRDS)


def _issue_as_cert_manager_would(cluster: fleet.Cluster, certificate: dict[str, Any]) -> None:
    """A stand-in for cert-manager's CA issuer (its controller is not run here): sign the
    Certificate's dnsNames with a CA and write tls.crt, tls.key and ca.crt into its secretName."""
    now = datetime.datetime.now(datetime.UTC)
    ca = certificates.new_ca("stand-in cert-manager CA issuer", now)
    leaf = certificates.issue_leaf(ca, certificate["spec"]["dnsNames"], now)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": certificate["spec"]["secretName"],
                "namespace": cluster.namespace,
                "annotations": {"cert-manager.io/certificate-name": certificate["metadata"]["name"]},
            },
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": _b64(leaf.cert_pem),
                "tls.key": _b64(leaf.key_pem),
                "ca.crt": _b64(ca.cert_pem),
            },
        }
    )


def test_cert_manager_missing_then_an_absent_issuer_then_issued(
    cluster: fleet.Cluster, kubectl: kubectl_.Kubectl, cert_manager_crds: None
) -> None:
    spec = {"mode": "CertManager", "issuerRef": {"name": "fleet-ca"}}
    cluster.apply(fleet.weather_proxy(PROXY, cluster.namespace, tls=spec))
    cond = _tls_ready(cluster, "False", "CertManagerMissing")
    assert "cert-manager" in cond["message"]
    # Nothing else is held back.
    for kind, name in (
        ("deployment", names.deployment_name(PROXY)),
        ("service", names.service_name(PROXY)),
        ("configmap", names.config_map_name(PROXY)),
        ("statefulset", names.redis_name(PROXY)),
        ("secret", names.redis_tls_secret_name(PROXY)),
    ):
        cluster.wait_for(kind, name)

    kubectl.install_crds(CERT_MANAGER_CRDS)
    certificate = cluster.wait_for("certificates.cert-manager.io", names.tls_secret_name(PROXY))
    assert certificate["spec"]["issuerRef"] == {
        "name": "fleet-ca",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    assert f"{PROXY}.{cluster.namespace}.svc" in certificate["spec"]["dnsNames"]
    cond = _tls_ready(cluster, "False", "IssuerNotFound")
    assert "spec.tls.issuerRef" in cond["message"]
    assert "'fleet-ca'" in cond["message"]

    cluster.apply(
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": {"name": "fleet-ca", "namespace": cluster.namespace},
            "spec": {"ca": {"secretName": "fleet-ca-key-pair"}},
        }
    )
    cond = _tls_ready(cluster, "False", "CertificatePending")
    assert names.tls_secret_name(PROXY) in cond["message"]

    _issue_as_cert_manager_would(cluster, certificate)
    cond = _tls_ready(cluster, "True", "CertificateReady")
    volumes = cluster.get("deployment", names.deployment_name(PROXY))["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "tls",
        "secret": {"secretName": names.tls_secret_name(PROXY), "defaultMode": 0o440},
    } in volumes
