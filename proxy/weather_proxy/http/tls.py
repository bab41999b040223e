"""HTTPS: the serving certificate's files, checked at start and reloaded into the live SSL context.

``listen.tls`` names a PEM chain and key (a ``kubernetes.io/tls`` Secret's volume). ``check``
reads and matches them, with an error naming the field; the process refuses to start on one.

Renewal (docs/http-server.md, TLS): under uvicorn the SSL context is ours (``uvicorn_context``,
its ``ssl_context_factory``) and registered here; the app's file watcher notices a new pair (a
Secret volume swaps its ``..data`` symlink) and ``install`` calls ``load_cert_chain`` on that same
context, on the event loop: new handshakes get the new leaf, open connections go on (as kserve
does since kserve#6093). Under granian the Rust worker loads the files once and offers no reload;
its pods are rolled instead, and the expiry gauge reports the leaf the worker loaded at start.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from weather_proxy import config as config_mod

log = logging.getLogger(__name__)

CERT_FIELD = "listen.tls.certFile"
KEY_FIELD = "listen.tls.keyFile"
# The app's file watches of the pair (weather_proxy.reload), in the reload metrics' ``file`` label.
WATCH_LABELS = ("tls-certificate", "tls-key")


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A checked certificate and key: where they were read (symlinks resolved) and what they hold."""

    cert_path: str
    key_path: str
    not_after: datetime.datetime
    sha256: str  # of the leaf's DER: what a client sees
    subject: str

    def describe(self) -> str:
        return f"{self.subject}, notAfter {self.not_after.isoformat()}, sha256 {self.sha256[:16]}"


def _read(path: str, field: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise config_mod.ConfigError(f"{field}: cannot read {path}: {exc.strerror or exc}") from exc


def check(tls: config_mod.ServingTls) -> Leaf:
    """Read and match ``tls``'s files; ConfigError names the field and what is wrong.

    Both paths are resolved first: the pair read is one version of a Secret volume (its
    timestamped directory), never a certificate of one version and a key of the next.
    """
    cert_path, key_path = os.path.realpath(tls.cert_file), os.path.realpath(tls.key_file)
    cert_pem, key_pem = _read(cert_path, CERT_FIELD), _read(key_path, KEY_FIELD)
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise config_mod.ConfigError(
            f"{CERT_FIELD}: {tls.cert_file} is not a PEM certificate chain (-----BEGIN CERTIFICATE-----)"
        ) from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise config_mod.ConfigError(
            f"{KEY_FIELD}: {tls.key_file} is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)"
        ) from exc
    leaf = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.PEM, public) != leaf.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ):
        raise config_mod.ConfigError(
            f"{KEY_FIELD}: {tls.key_file} is not the key of the certificate in {CERT_FIELD} "
            f"({tls.cert_file}, the first certificate of the file is the leaf)"
        )
    return Leaf(
        cert_path=cert_path,
        key_path=key_path,
        not_after=leaf.not_valid_after_utc,
        sha256=hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest(),
        subject=leaf.subject.rfc4514_string(),
    )


def server_context(leaf: Leaf) -> ssl.SSLContext:
    """A server context serving ``leaf``: TLS 1.2 or later, no client certificate asked."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(leaf.cert_path, leaf.key_path)
    return context


class ServingContexts:
    """The SSL contexts this process serves with (one per uvicorn server), and the leaf they hold."""

    def __init__(self) -> None:
        self.contexts: list[ssl.SSLContext] = []
        self.leaf: Leaf | None = None

    def add(self, context: ssl.SSLContext, leaf: Leaf) -> None:
        self.contexts.append(context)
        self.leaf = leaf

    @property
    def reloadable(self) -> bool:
        return bool(self.contexts)

    def install(self, leaf: Leaf) -> None:
        """Serve ``leaf`` from the next handshake on; on failure the previous leaf stays served.

        Called on the event loop, where the handshakes start: a context is never changed under
        one. A context is changed only after a scratch one took the same files.
        """
        if leaf == self.leaf:
            return
        try:
            server_context(leaf)
            for context in self.contexts:
                context.load_cert_chain(leaf.cert_path, leaf.key_path)
        except (OSError, ssl.SSLError) as exc:
            if self.leaf is not None:
                for context in self.contexts:
                    context.load_cert_chain(self.leaf.cert_path, self.leaf.key_path)
            raise config_mod.ConfigError(f"{CERT_FIELD}: cannot load the new certificate: {exc}") from exc
        log.info("serving a new TLS certificate: %s", leaf.describe())
        self.leaf = leaf


# This process's serving contexts: filled by ``uvicorn_context`` when uvicorn loads its config
# (before it builds the app), read by the app's lifespan. Empty under granian.
SERVING = ServingContexts()


def uvicorn_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: our context for its ``ssl_certfile``/``ssl_keyfile``, kept
    for reloads. Runs in each worker process (a module-level function: spawned workers import it)."""
    del default_factory  # uvicorn's own allows TLS 1.0 ciphers and cannot be reloaded from here
    leaf = check(config_mod.ServingTls(cert_file=str(config.ssl_certfile), key_file=str(config.ssl_keyfile)))
    context = server_context(leaf)
    SERVING.add(context, leaf)
    return context
