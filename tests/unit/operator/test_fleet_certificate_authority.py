"""The fleet's CA and its leaves (spec.tls Managed): what is issued, and when a leaf is due again."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from weather_operator import certificates

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)
NAMES = ["paris", "paris.weather", "paris.weather.svc", "paris.weather.svc.cluster.local"]


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def test_a_leaf_is_a_server_certificate_for_its_names_signed_by_the_fleets_ca() -> None:
    ca = certificates.new_ca("paris.weather fleet CA", NOW)
    leaf = certificates.issue_leaf(ca, [*NAMES, "w.example.com"], NOW, ip_addresses=["127.0.0.1"])
    cert = _cert(leaf.cert_pem)
    assert certificates.signed_by(cert, ca.cert_pem)
    assert certificates.dns_names_of(cert) == {*NAMES, "w.example.com"}
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc - NOW == certificates.LEAF_LIFETIME
    ca_cert = _cert(ca.cert_pem)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    # Another CA's leaf is not the fleet's.
    assert not certificates.signed_by(cert, certificates.new_ca("other", NOW).cert_pem)


def test_a_leaf_is_due_two_thirds_into_its_life_not_before() -> None:
    ca = certificates.new_ca("fleet CA", NOW)
    leaf = certificates.issue_leaf(ca, NAMES, NOW)
    renew_at = certificates.renew_at(_cert(leaf.cert_pem))
    start = NOW - certificates.BACKDATE
    assert renew_at == start + (certificates.LEAF_LIFETIME + certificates.BACKDATE) * 2 / 3
    assert not certificates.due(leaf.cert_pem, ca.cert_pem, NAMES, renew_at - datetime.timedelta(seconds=1))
    assert certificates.due(leaf.cert_pem, ca.cert_pem, NAMES, renew_at)


def test_a_leaf_is_due_when_missing_unreadable_for_other_names_or_of_another_ca() -> None:
    ca = certificates.new_ca("fleet CA", NOW)
    leaf = certificates.issue_leaf(ca, NAMES, NOW)
    assert not certificates.due(leaf.cert_pem, ca.cert_pem, NAMES, NOW)
    assert certificates.due(None, ca.cert_pem, NAMES, NOW)
    assert certificates.due(
        b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n", ca.cert_pem, NAMES, NOW
    )
    assert certificates.due(leaf.cert_pem, ca.cert_pem, [*NAMES, "w.example.com"], NOW)
    assert certificates.due(leaf.cert_pem, certificates.new_ca("replaced CA", NOW).cert_pem, NAMES, NOW)


def test_a_ca_is_usable_until_two_thirds_of_its_life_with_its_own_key() -> None:
    ca = certificates.new_ca("fleet CA", NOW)
    other = certificates.new_ca("other CA", NOW)
    assert certificates.ca_usable(ca, NOW)
    assert not certificates.ca_usable(None, NOW)
    assert not certificates.ca_usable(certificates.Pair(ca.cert_pem, other.key_pem), NOW)
    assert not certificates.ca_usable(certificates.Pair(b"garbage", ca.key_pem), NOW)
    assert not certificates.ca_usable(ca, NOW + certificates.CA_LIFETIME * 2 / 3)
    # A leaf never outlives its CA.
    late = NOW + certificates.CA_LIFETIME - datetime.timedelta(days=10)
    leaf = certificates.issue_leaf(ca, NAMES, late)
    assert _cert(leaf.cert_pem).not_valid_after_utc == _cert(ca.cert_pem).not_valid_after_utc


def test_a_pair_never_shows_its_key() -> None:
    pair = certificates.new_ca("fleet CA", NOW)
    assert b"PRIVATE KEY" in pair.key_pem
    assert "PRIVATE" not in repr(pair)
    assert "PRIVATE" not in str(pair)
    assert certificates.fingerprint(pair.cert_pem) == certificates.fingerprint(pair.cert_pem)
    assert len(certificates.fingerprint(pair.cert_pem)) == 64
