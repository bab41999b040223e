"""The key ring: API keys looked up by the SHA-256 of the presented key.

The plaintext is hashed once per request and never stored or logged; the
matching entry is confirmed with ``hmac.compare_digest``. A refusal is a domain
error (``Refused`` and its kinds), which the route layer answers as a problem:
a missing key (when required) 401; unknown, expired or disabled 403. A key
presented while auth is optional is still checked: a wrong key is refused, not
silently anonymous. Each route needs one scope; a caller without it gets
``InsufficientScope`` from ``require_scope`` (403 ``insufficient-scope``). A probe key (keys.yaml
``probe``, the operator's smoke key) may call the weather routes only, and its identity says so:
the route layer then spends no limit or quota and records no usage. The contract:
docs/contracts.md, Keys, limits, quotas and scopes.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import math
import time
from collections.abc import Iterable

import cachetools

from weather_proxy import config as config_mod
from weather_proxy import contract

# What an anonymous caller (auth not required, no key) may do: what a key may by default.
ANONYMOUS_SCOPES = frozenset(config_mod.DEFAULT_SCOPES)
# The problem type of a caller lacking a route's scope: TYPE_BASE + this.
INSUFFICIENT_SCOPE = "insufficient-scope"


class Refused(Exception):
    """The caller may not call: its message is the detail a client may read (never the key)."""


class MissingKey(Refused):
    """No X-API-Key where the API requires one."""


class UnknownKey(Refused):
    """A key no entry of the ring has."""


class DisabledKey(Refused):
    """A key whose entry is disabled."""


class ExpiredKey(Refused):
    """A key past its ``expiresAt`` (or a rotated key's old hash past its grace)."""


class InsufficientScope(Refused):
    """A key (or an anonymous caller) without the scope the route needs."""

    def __init__(self, detail: str, scope: config_mod.Scope) -> None:
        super().__init__(detail)
        self.scope = scope


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: a key (by id) or an anonymous client (by address), and what it may call."""

    key_id: str | None
    limit: config_mod.Limit
    limiter_id: str  # the rate-limit bucket: "key:<id>" or "anon:<hash of the address>"
    scopes: frozenset[config_mod.Scope] = ANONYMOUS_SCOPES
    # A probe key (keys.yaml ``probe``): no limit, no quota, no usage history, analytics or counters.
    probe: bool = False


def require_scope(identity: Identity, scope: config_mod.Scope) -> None:
    """Refuse (``InsufficientScope``) a caller whose key lacks the route's ``scope``."""
    if scope in identity.scopes:
        return
    if identity.key_id is None:
        detail = f"This route needs the scope {scope}; send an X-API-Key whose key has it."
    else:
        held = ", ".join(sorted(identity.scopes)) or "none"
        detail = f"The API key lacks the scope {scope}, which this route needs (it has: {held})."
    raise InsufficientScope(detail, scope)


def _epoch(moment: datetime.datetime | None) -> float:
    if moment is None:
        return math.inf
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


# An anonymous caller's bucket is named by a hash of its address, never the address: the name is
# a Redis key the fleet shares, seen by whoever reads Redis. The hash is the same in every replica
# (their buckets must agree), keyed by ``use_anonymous_secret`` (the app passes the fleet's Redis
# password); unkeyed (no Redis, no password), an IPv4 address is found again by trying all 2**32,
# so it is then a pseudonym, not anonymity. A caller's next requests find its id remembered
# rather than hash again.
_ANONYMOUS_PERSON = b"wp-anon-limiter"
_anonymous_key = b""
MAX_ANONYMOUS_IDS = 10_000
_anonymous_ids: cachetools.LRUCache[str, str] = cachetools.LRUCache(MAX_ANONYMOUS_IDS)


def use_anonymous_secret(secret: str | None) -> None:
    """Key the anonymous callers' ids with a secret every replica of the fleet holds (None: unkeyed)."""
    global _anonymous_key
    key = hashlib.blake2b(secret.encode(), digest_size=32).digest() if secret else b""
    if key != _anonymous_key:
        _anonymous_key = key
        _anonymous_ids.clear()


def anonymous_limiter_id(address: str) -> str:
    """The rate-limit id of an anonymous caller at ``address``: ``anon:`` and 32 hex digits."""
    found = _anonymous_ids.get(address)
    if found is None:
        digest = hashlib.blake2b(
            address.encode(), digest_size=16, key=_anonymous_key, person=_ANONYMOUS_PERSON
        ).hexdigest()
        found = _anonymous_ids[address] = "anon:" + digest
    return found


# The contract's hash: the operator writes what this compares (weather_proxy.contract).
hash_key = contract.key_sha256
# All a probe key may call, whatever its entry says.
PROBE_SCOPES = frozenset({config_mod.Scope.WEATHER_READ})


@dataclasses.dataclass(frozen=True, slots=True)
class _Key:
    """What the ring keeps of one keys.yaml entry: slotted, its limit and scopes shared with equal ones."""

    id: str
    sha256: str
    limit: config_mod.Limit | None
    expires: float  # epoch seconds; inf when never
    disabled: bool
    scopes: frozenset[config_mod.Scope]
    limiter_id: str
    probe: bool


class KeyRing:
    """An immutable index of a keys file by SHA-256; swapped whole on reload.

    Lookup is one hash and one dict probe whatever the number of keys. Entries are kept as
    slotted records whose limits and scope sets are shared between keys that have equal ones
    (most keys have the fleet default and the default scopes): 50,000 keys cost a few tens of
    MiB (bench/keys.py), not the hundreds their parsed models would.
    """

    def __init__(self, keys: config_mod.KeysFile) -> None:
        limits: dict[config_mod.Limit, config_mod.Limit] = {}
        scopes: dict[frozenset[config_mod.Scope], frozenset[config_mod.Scope]] = {}
        self._by_hash: dict[str, _Key] = {}
        # sha256 -> the Identity last given for it (rebuilt when its limit changes with the config)
        self._identities: dict[str, Identity] = {}
        for entry in keys.keys:
            limit = limits.setdefault(entry.rate_limit, entry.rate_limit) if entry.rate_limit else None
            granted = PROBE_SCOPES if entry.probe else frozenset(entry.scopes)
            # A rotated key's previous hash (its grace entry) is the same consumer: its requests
            # take from the key's own bucket and quota and are recorded under the key's id.
            owner = entry.id.removesuffix(contract.GRACE_ENTRY_SUFFIX)
            self._by_hash[entry.sha256] = _Key(
                owner,
                entry.sha256,
                limit,
                _epoch(entry.expires_at),
                entry.disabled,
                scopes.setdefault(granted, granted),
                "key:" + owner,
                entry.probe,
            )

    @classmethod
    def union(cls, rings: Iterable[KeyRing]) -> KeyRing:
        """One ring of several (a later ring's entry wins for a hash in two), without rebuilding entries."""
        ring = cls(config_mod.KeysFile())
        for part in rings:
            ring._by_hash.update(part._by_hash)
        return ring

    def __len__(self) -> int:
        return len(self._by_hash)

    def lookup(self, plaintext: str) -> _Key | None:
        digest = hash_key(plaintext)
        found = self._by_hash.get(digest)
        if found is None or not hmac.compare_digest(found.sha256, digest):
            return None
        return found

    def authenticate(
        self,
        presented: str | None,
        *,
        required: bool,
        limits: config_mod.RateLimit,
        client_address: str,
        now: float | None = None,
    ) -> Identity:
        """The caller's identity; raises a ``Refused`` (MissingKey, UnknownKey, DisabledKey, ExpiredKey)."""
        if not presented:
            if required:
                raise MissingKey("This API needs an X-API-Key header.")
            return Identity(None, limits.anonymous, anonymous_limiter_id(client_address))
        found = self.lookup(presented)
        if found is None:
            raise UnknownKey("The API key is not valid.")
        if found.disabled:
            raise DisabledKey("The API key is disabled.")
        if (time.time() if now is None else now) >= found.expires:
            raise ExpiredKey("The API key has expired.")
        limit = found.limit or limits.default
        identity = self._identities.get(found.sha256)
        if identity is None or identity.limit is not limit:
            identity = Identity(found.id, limit, found.limiter_id, found.scopes, found.probe)
            self._identities[found.sha256] = identity
        return identity
