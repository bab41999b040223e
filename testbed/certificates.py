"""A certificate authority for the tests, the benches and ``make dev``: a CA and leaves it signs.

``TestCA()`` makes a self-signed CA as the operator makes a fleet's (ECDSA P-256);
``ca.issue(["localhost", "127.0.0.1"])`` a leaf for those DNS names / IP addresses, usable by a
server (serverAuth). ``Leaf.write(directory)`` writes ``tls.crt`` / ``tls.key`` / ``ca.crt`` as a
``kubernetes.io/tls`` Secret volume holds them. Made with the ``cryptography`` package; nothing
here is shipped with the proxy or the operator.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import pathlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from weather_operator import certificates as operator_certificates

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.crt"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A leaf certificate, its key and the CA that signed it, all PEM."""

    cert_pem: str
    key_pem: str
    ca_pem: str
    not_after: datetime.datetime
    serial: int

    def files(self) -> dict[str, str]:
        """The files of a ``kubernetes.io/tls`` Secret with ``ca.crt``."""
        return {CERT_FILE: self.cert_pem, KEY_FILE: self.key_pem, CA_FILE: self.ca_pem}

    def write(self, directory: pathlib.Path) -> dict[str, pathlib.Path]:
        """Write :meth:`files` into ``directory`` (made if missing); their paths by name."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, text in self.files().items():
            path = directory / name
            path.write_text(text, encoding="utf-8")
            paths[name] = path
        return paths


class TestCA:
    """A self-signed CA that issues server leaves."""

    __test__ = False  # not a pytest test class

    def __init__(self, common_name: str = "weather-proxy test CA") -> None:
        # The CA the operator makes for a fleet (spec.tls Managed), so the tests trust what it makes.
        pair = operator_certificates.new_ca(common_name, datetime.datetime.now(datetime.UTC))
        key = serialization.load_pem_private_key(pair.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key
        self.cert = x509.load_pem_x509_certificate(pair.cert_pem)
        self.cert_pem = pair.cert_pem.decode()

    def write_ca(self, path: pathlib.Path) -> pathlib.Path:
        """The CA certificate alone, as a client's trust file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.cert_pem, encoding="utf-8")
        return path

    def issue(
        self,
        names: Sequence[str],
        *,
        not_after: datetime.datetime | None = None,
        common_name: str | None = None,
    ) -> Leaf:
        """A server leaf for ``names`` (DNS names and IP addresses), valid until ``not_after`` (a day)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        until = not_after or now + datetime.timedelta(days=1)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name or names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(until)
            .add_extension(_san(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        return Leaf(
            cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            key_pem=_key_pem(key),
            ca_pem=self.cert_pem,
            not_after=until.replace(microsecond=0),
            serial=serial,
        )
