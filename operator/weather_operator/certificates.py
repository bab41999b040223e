"""A fleet's own certificate authority (``spec.tls``): one CA per fleet and the leaves it signs.

The CA (ECDSA P-256, 10 years) signs the proxies' serving certificate (``Managed``) and the
internal servers' (Redis, PostgreSQL); a leaf lives 90 days and is renewed once two thirds
of its life have passed (``due``). Pure apart from the keys it generates: the clock is a
parameter, nothing here reads or writes the cluster (``controller.certificates`` does).

What these functions return holds private keys: never log it, put it in an Event or a status.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import ipaddress
from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = datetime.timedelta(days=3650)
LEAF_LIFETIME = datetime.timedelta(days=90)
# Renewed after two thirds of its life: a month of margin for a 90-day leaf.
RENEW_FRACTION = 2 / 3
# Issued a little in the past, so a node whose clock lags by minutes accepts a new leaf.
BACKDATE = datetime.timedelta(minutes=5)


@dataclasses.dataclass(frozen=True, repr=False)
class Pair:
    """A certificate and its private key, both PEM (``repr`` left out: it would show the key)."""

    cert_pem: bytes
    key_pem: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8 unencrypted: what Redis, PostgreSQL, uvicorn and granian all read.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_ca(common_name: str, now: datetime.datetime) -> Pair:
    """A self-signed CA (path length 0: it signs leaves only)."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_leaf(
    ca: Pair,
    dns_names: Iterable[str],
    now: datetime.datetime,
    *,
    ip_addresses: Iterable[str] = (),
    lifetime: datetime.timedelta = LEAF_LIFETIME,
) -> Pair:
    """A server certificate for ``dns_names`` (the first is its common name), signed by ``ca``."""
    names = list(dict.fromkeys(dns_names))
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an ECDSA key")
    key = _key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + lifetime, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def load(cert_pem: bytes | None) -> x509.Certificate | None:
    """The first certificate of a PEM bundle; None when there is none or it does not parse."""
    if not cert_pem:
        return None
    try:
        return x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return None


def not_after(cert: x509.Certificate) -> datetime.datetime:
    return cert.not_valid_after_utc


def renew_at(cert: x509.Certificate) -> datetime.datetime:
    """When the certificate is due for renewal: two thirds into its life."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * RENEW_FRACTION


def dns_names_of(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(ext.value.get_values_for_type(x509.DNSName))


def signed_by(cert: x509.Certificate, ca_pem: bytes) -> bool:
    ca = load(ca_pem)
    if ca is None:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def due(cert_pem: bytes | None, ca_pem: bytes, dns_names: Iterable[str], now: datetime.datetime) -> bool:
    """Whether a leaf must be issued anew: missing or unreadable, two thirds through its life, for
    other names, or not signed by the fleet's current CA."""
    cert = load(cert_pem)
    if cert is None:
        return True
    return now >= renew_at(cert) or dns_names_of(cert) != set(dns_names) or not signed_by(cert, ca_pem)


def ca_usable(pair: Pair | None, now: datetime.datetime) -> bool:
    """A CA that parses, matches its key and is not past two thirds of its life."""
    if pair is None:
        return False
    cert = load(pair.cert_pem)
    if cert is None or now >= renew_at(cert):
        return False
    try:
        key = serialization.load_pem_private_key(pair.key_pem, password=None)
    except (ValueError, TypeError):
        return False
    own = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return own == theirs


def fingerprint(cert_pem: bytes) -> str:
    """sha256 of the PEM text: the pod-template annotation that rolls pods onto a new certificate."""
    return hashlib.sha256(cert_pem).hexdigest()
