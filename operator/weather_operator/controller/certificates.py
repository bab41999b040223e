"""A fleet's certificates on the API server (``spec.tls``), kept before each render.

* ``Managed``, or any mode with ``internal``: the fleet's CA in ``<proxy>-tls-ca``, made when
  missing or unusable (its key never leaves that Secret but for signing here).
* ``Managed``: the proxies' leaf ``<proxy>-tls``; ``internal``: Redis's and PostgreSQL's
  (``<proxy>-redis-tls``, ``<proxy>-postgres-tls``). Each is issued when missing, unreadable,
  two thirds through its life, for other names, or not signed by the current CA; a deleted
  one comes back on the reconcile its watch event asks for.
* ``CertManager``: cert-manager's CRDs served (else ``CertManagerMissing``), the issuer
  present, and the Secret its Certificate fills. ``Secret``: the user's Secret, with ``tls.crt``.

A leaf known good is not read again until it is due, unless its Secret (or the CA's) changed
or went away (the Secret's watch event drops it from ``ChildMemory``), or the drift repair
runs. The result is the render's fingerprints and TLSReady's observation. Nothing read here
is logged: the Secrets hold private keys.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from weather_operator import apply, certificates, status
from weather_operator.api import effective
from weather_operator.controller import children, connection
from weather_operator.render import names, tls

# The user's or cert-manager's Secret is not watched (not the operator's): looked at again this often.
RECHECK_SECONDS = 300.0
# What ``ChildMemory.applied`` holds for a certificate Secret known good (it is never rendered).
KNOWN = "certificate"


@dataclasses.dataclass(frozen=True)
class Leaf:
    """What is remembered of a leaf (no key material)."""

    fingerprint: str
    not_after: datetime.datetime
    renew_at: datetime.datetime
    dns_names: tuple[str, ...]


@dataclasses.dataclass
class TlsMemory:
    """The leaves this process issued or checked, by Secret name."""

    leaves: dict[str, Leaf] = dataclasses.field(default_factory=dict)
    # TLSReady as last observed (kept for a status written after a failed reconcile).
    ready: status.Observed | None = None


@dataclasses.dataclass(frozen=True)
class TlsState:
    """What the render and the status need: fingerprints, TLSReady, when to look again."""

    fingerprints: tls.Fingerprints
    ready: status.Observed | None
    recheck_after: float | None  # seconds
    issued: tuple[str, ...] = ()


def _data(secret: Mapping[str, Any] | None, key: str) -> bytes | None:
    value = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(value) if isinstance(value, str) else None


def _leaf(cert_pem: bytes, dns_names: tuple[str, ...]) -> Leaf:
    cert = certificates.load(cert_pem)
    assert cert is not None  # issued here or checked by the caller
    return Leaf(
        fingerprint=certificates.fingerprint(cert_pem),
        not_after=certificates.not_after(cert),
        renew_at=certificates.renew_at(cert),
        dns_names=dns_names,
    )


@dataclasses.dataclass(frozen=True)
class _Wanted:
    secret: str
    component: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...] = ()


class Certificates:
    """Keeps one fleet's certificates per call of ``ensure``."""

    def __init__(self, connection_: connection.Connection) -> None:
        self.connection = connection_

    async def ensure(
        self,
        owner: Mapping[str, Any],
        spec: effective.EffectiveSpec,
        memory: TlsMemory,
        child_memory: children.ChildMemory,
        now: datetime.datetime,
        *,
        full: bool = False,
    ) -> TlsState:
        namespace, name = owner["metadata"]["namespace"], owner["metadata"]["name"]
        spec_tls = spec.tls
        if not spec_tls.enabled:
            memory.leaves.clear()
            memory.ready = status.tls_ready(spec_tls, None, None)
            return TlsState(tls.Fingerprints(), memory.ready, None)
        wanted = self._wanted(name, namespace, spec)
        issued: list[str] = []
        ca_child = f"Secret/{names.tls_ca_secret_name(name)}"
        ca_known = not full and child_memory.applied.get(ca_child) == KNOWN
        ca: certificates.Pair | None = None
        leaves: dict[str, Leaf] = {}
        for item in wanted:
            child = f"Secret/{item.secret}"
            known = memory.leaves.get(item.secret)
            if (
                ca_known
                and known is not None
                and known.dns_names == item.dns_names
                and now < known.renew_at
                and child_memory.applied.get(child) == KNOWN
            ):
                leaves[item.secret] = known
                continue
            if ca is None:
                ca, made = await self._ca(owner, namespace, name, now)
                child_memory.applied[ca_child] = KNOWN
                child_memory.absent.discard(ca_child)
                if made:
                    issued.append(names.tls_ca_secret_name(name))
            secret = await self.connection.api.get(apply.SECRET, namespace, item.secret)
            cert_pem = _data(secret, names.TLS_CERT_KEY)
            if (
                _data(secret, names.TLS_KEY_KEY) is None
                or _data(secret, names.CA_CERT_KEY) != ca.cert_pem
                or certificates.due(cert_pem, ca.cert_pem, item.dns_names, now)
            ):
                pair = certificates.issue_leaf(ca, item.dns_names, now, ip_addresses=item.ip_addresses)
                body = tls.render_leaf_secret(
                    item.secret, name, namespace, item.component, pair.cert_pem, pair.key_pem, ca.cert_pem
                )
                await self.connection.api.apply(apply.adopt(body, owner))
                cert_pem = pair.cert_pem
                issued.append(item.secret)
            assert cert_pem is not None
            leaves[item.secret] = memory.leaves[item.secret] = _leaf(cert_pem, item.dns_names)
            child_memory.applied[child] = KNOWN
            child_memory.absent.discard(child)
        for gone in set(memory.leaves) - {item.secret for item in wanted}:
            del memory.leaves[gone]

        def fingerprint(secret: str) -> str | None:
            leaf = leaves.get(secret)
            return leaf.fingerprint if leaf is not None else None

        renewals = [(leaf.renew_at - now).total_seconds() for leaf in leaves.values()]
        recheck = min(renewals) if renewals else None
        proxy_print: str | None
        if spec_tls.mode is effective.TlsMode.MANAGED:
            proxy = leaves[names.tls_secret_name(name)]
            ready = status.tls_ready(spec_tls, proxy.not_after, None)
            proxy_print = proxy.fingerprint
        else:
            proxy_print, ready = await self._served(namespace, name, spec_tls)
            recheck = min(recheck or RECHECK_SECONDS, RECHECK_SECONDS)
        prints = tls.Fingerprints(
            proxy=proxy_print,
            redis=fingerprint(names.redis_tls_secret_name(name)),
            postgres=fingerprint(names.postgres_tls_secret_name(name)),
        )
        memory.ready = ready
        return TlsState(prints, ready, max(1.0, recheck) if recheck is not None else None, tuple(issued))

    @staticmethod
    def _wanted(name: str, namespace: str, spec: effective.EffectiveSpec) -> list[_Wanted]:
        wanted: list[_Wanted] = []
        if spec.tls.mode is effective.TlsMode.MANAGED:
            dns = tuple(tls.proxy_dns_names(name, namespace, spec.tls))
            wanted.append(_Wanted(names.tls_secret_name(name), names.PROXY, dns))
        if spec.tls.internal and spec.redis.managed:
            dns = tuple(tls.redis_dns_names(name, namespace))
            wanted.append(_Wanted(names.redis_tls_secret_name(name), names.REDIS, dns, (tls.LOOPBACK_IP,)))
        if spec.tls.internal and spec.analytics.enabled and spec.analytics.managed:
            dns = tuple(tls.postgres_dns_names(name, namespace))
            wanted.append(
                _Wanted(names.postgres_tls_secret_name(name), names.POSTGRES, dns, (tls.LOOPBACK_IP,))
            )
        return wanted

    async def _ca(
        self, owner: Mapping[str, Any], namespace: str, name: str, now: datetime.datetime
    ) -> tuple[certificates.Pair, bool]:
        """The fleet's CA, made (and written) when missing or unusable; True when made."""
        secret = await self.connection.api.get(apply.SECRET, namespace, names.tls_ca_secret_name(name))
        cert_pem, key_pem = _data(secret, names.CA_CERT_KEY), _data(secret, names.CA_KEY_KEY)
        if cert_pem is not None and key_pem is not None:
            pair = certificates.Pair(cert_pem, key_pem)
            if certificates.ca_usable(pair, now):
                return pair, False
        pair = certificates.new_ca(f"{name}.{namespace} weather-proxy fleet CA", now)
        body = tls.render_ca_secret(name, namespace, pair.cert_pem, pair.key_pem)
        await self.connection.api.apply(apply.adopt(body, owner))
        return pair, True

    async def _served(
        self, namespace: str, name: str, spec_tls: effective.EffectiveTls
    ) -> tuple[str | None, status.Observed]:
        """The proxies' certificate from cert-manager or the user: its fingerprint and TLSReady."""
        if spec_tls.mode is effective.TlsMode.CERT_MANAGER:
            if not await self.connection.cert_manager.available():
                return None, status.tls_ready(spec_tls, None, status.TLS_CERT_MANAGER_MISSING)
            issuer = (
                apply.CLUSTER_ISSUER
                if spec_tls.issuer_kind is effective.IssuerKind.CLUSTER_ISSUER
                else apply.ISSUER
            )
            assert spec_tls.issuer_name is not None  # guaranteed by TlsSpec validation
            if await self.connection.api.get(issuer, namespace, spec_tls.issuer_name) is None:
                return None, status.tls_ready(
                    spec_tls, None, status.TLS_ISSUER_NOT_FOUND, namespace=namespace
                )
        secret_name = tls.proxy_secret_name(name, spec_tls)
        secret = await self.connection.api.get(apply.SECRET, namespace, secret_name)
        cert_pem = _data(secret, names.TLS_CERT_KEY)
        cert = certificates.load(cert_pem)
        if secret is None:
            return None, status.tls_ready(spec_tls, None, status.TLS_SECRET_NOT_FOUND, secret=secret_name)
        if cert is None or cert_pem is None or _data(secret, names.TLS_KEY_KEY) is None:
            return None, status.tls_ready(spec_tls, None, status.TLS_SECRET_INVALID, secret=secret_name)
        return certificates.fingerprint(cert_pem), status.tls_ready(
            spec_tls, certificates.not_after(cert), None
        )
