"""API keys: generation, hashing, and the aggregation of a fleet's ApiKeys into ``keys.yaml``.

Pure functions; the clock is a parameter. A plaintext key exists only in the
ApiKey's own Secret and in the local variables of the handler that reads it.

Where the hashes live: the ApiKey handler reads the Secret, hashes the key and
stores the SHA-256 in annotations of the ApiKey (``weatherproxy.dev/key-sha256``,
plus the previous hash and its end of grace after a rotation). The Kopf index
``apikeys_by_proxy`` is built from these annotations, so it survives operator
restarts without reading any Secret, and it never holds a plaintext. The hash of
a generated key (256 random bits) reveals nothing usable; ``keys.yaml`` holds the
same hash. A user-chosen weak key would be guessable from its hash by anyone who
can read ApiKeys: the README tells users to let the operator generate keys.
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from weather_operator.api import apikey, constants
from weather_proxy import config, contract

KEY_PREFIX = "wpk_"
PREFIX_LENGTH = 8
# A key shorter than this (one of your own) shows no prefix: 8 characters would be too much of it.
PREFIXED_KEY_MIN_LENGTH = 32
# The data key name in the Secret, not a secret.
SECRET_KEY = contract.APIKEY_SECRET_KEY

SHA256_ANNOTATION = f"{constants.GROUP}/key-sha256"
PREVIOUS_SHA256_ANNOTATION = f"{constants.GROUP}/previous-key-sha256"
PREVIOUS_EXPIRES_ANNOTATION = f"{constants.GROUP}/previous-key-expires-at"
# On a generated Secret: the spec.rotation its key was generated for.
ROTATION_ANNOTATION = f"{constants.GROUP}/rotation"

PREVIOUS_SUFFIX = contract.GRACE_ENTRY_SUFFIX


def generate_key() -> str:
    """A new high-entropy key (256 random bits), recognisable by its ``wpk_`` prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def sha256_hex(plaintext: str) -> str:
    """What keys.yaml and the proxy compare: hex SHA-256 of the UTF-8 key (``contract.key_sha256``)."""
    return contract.key_sha256(plaintext)


def key_prefix(plaintext: str) -> str | None:
    """Enough of a key to recognise it (e.g. ``wpk_3fa9``), never enough to use it; None for a short key."""
    if len(plaintext) < PREFIXED_KEY_MIN_LENGTH:
        return None
    return plaintext[:PREFIX_LENGTH]


def key_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Kubernetes writes times."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime.datetime | None:
    """An RFC 3339 time, or None when absent or unreadable (a bad annotation is ignored)."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    """What the index holds for one ApiKey: hashes, limits, expiry, scopes; never a plaintext."""

    id: str
    proxy: str
    sha256: str | None
    rate_limit: config.Limit | None = None
    expires_at: datetime.datetime | None = None
    disabled: bool = False
    previous_sha256: str | None = None
    previous_expires_at: datetime.datetime | None = None
    scopes: tuple[config.Scope, ...] = config.DEFAULT_SCOPES

    def is_expired(self, now: datetime.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def entries(self, now: datetime.datetime) -> list[config.KeyEntry]:
        """The keys.yaml entries of this key at ``now``: current and, in its grace, previous."""
        out: list[config.KeyEntry] = []
        if self.sha256 is not None and not self.is_expired(now):
            out.append(
                config.KeyEntry(
                    id=self.id,
                    sha256=self.sha256,
                    rate_limit=self.rate_limit,
                    expires_at=self.expires_at,
                    disabled=self.disabled,
                    scopes=list(self.scopes),
                )
            )
        if (
            self.previous_sha256 is not None
            and self.previous_sha256 != self.sha256
            and self.previous_expires_at is not None
            and self.previous_expires_at > now
        ):
            previous_expiry = self.previous_expires_at
            if self.expires_at is not None:
                previous_expiry = min(previous_expiry, self.expires_at)
            if previous_expiry > now:
                out.append(
                    config.KeyEntry(
                        id=self.id + PREVIOUS_SUFFIX,
                        sha256=self.previous_sha256,
                        rate_limit=self.rate_limit,
                        expires_at=previous_expiry,
                        disabled=self.disabled,
                        scopes=list(self.scopes),
                    )
                )
        return out

    def transitions(self) -> list[datetime.datetime]:
        """The moments at which this key's entries change by themselves."""
        return [moment for moment in (self.expires_at, self.previous_expires_at) if moment is not None]


def record_from_body(body: Mapping[str, Any]) -> KeyRecord | None:
    """The index value of an ApiKey object, or None when its spec is unusable."""
    metadata = body.get("metadata", {})
    try:
        spec = apikey.ApiKeySpec.model_validate(body.get("spec", {}))
    except ValueError:
        return None
    annotations = metadata.get("annotations") or {}
    return KeyRecord(
        id=key_id(metadata.get("namespace", ""), metadata.get("name", "")),
        proxy=spec.proxy_ref.name,
        sha256=annotations.get(SHA256_ANNOTATION) or None,
        rate_limit=spec.rate_limit,
        expires_at=to_utc(spec.expires_at),
        disabled=bool(spec.disabled),
        previous_sha256=annotations.get(PREVIOUS_SHA256_ANNOTATION) or None,
        previous_expires_at=parse_time(annotations.get(PREVIOUS_EXPIRES_ANNOTATION)),
        scopes=canonical_scopes(spec.scopes),
    )


def canonical_scopes(scopes: Iterable[config.Scope] | None) -> tuple[config.Scope, ...]:
    """A key's scopes in the enum's order, the defaults when unset.

    Reordering the list in a spec then leaves keys.yaml, and the Secret's content, unchanged.
    """
    if scopes is None:
        return config.DEFAULT_SCOPES
    chosen = set(scopes)
    return tuple(scope for scope in config.Scope if scope in chosen)


# A record's entries only change when ``now`` passes one of its transitions, so they are kept by
# (record, which transitions are past): a fleet of 50,000 keys is re-rendered from cached entries.
_ENTRIES: dict[tuple[KeyRecord, tuple[bool, ...]], tuple[config.KeyEntry, ...]] = {}
_ENTRIES_MAX = 1 << 18


def _entries(record: KeyRecord, now: datetime.datetime) -> tuple[config.KeyEntry, ...]:
    phase = (record, tuple(moment <= now for moment in record.transitions()))
    found = _ENTRIES.get(phase)
    if found is None:
        if len(_ENTRIES) >= _ENTRIES_MAX:
            _ENTRIES.clear()
        found = _ENTRIES[phase] = tuple(record.entries(now))
    return found


def keys_file(
    records: Iterable[KeyRecord], now: datetime.datetime, extra: Iterable[config.KeyEntry] = ()
) -> config.KeysFile:
    """keys.yaml of a fleet at ``now`` (with the operator's own ``extra`` entries), sorted by id."""
    entries = [entry for record in records for entry in _entries(record, now)]
    entries.extend(extra)
    entries.sort(key=lambda entry: entry.id)
    return config.KeysFile.model_construct(revision=0, keys=entries)


# The id of a fleet's smoke key: no ApiKey has it (an ApiKey's id is ``<namespace>/<name>``, and a
# Kubernetes name has no colon).
SMOKE_ID_SUFFIX = ":smoke"


def smoke_entry(namespace: str, proxy: str, plaintext: str) -> config.KeyEntry:
    """The keys.yaml entry of a BlueGreen fleet's smoke key: a probe key (weather:read, counts nowhere)."""
    return config.KeyEntry(
        id=key_id(namespace, proxy) + SMOKE_ID_SUFFIX, sha256=sha256_hex(plaintext), probe=True
    )


def next_transition(records: Iterable[KeyRecord], now: datetime.datetime) -> datetime.datetime | None:
    """The next moment keys.yaml changes without any object changing (an expiry), if any."""
    future = [moment for record in records for moment in record.transitions() if moment > now]
    return min(future, default=None)


@dataclasses.dataclass(frozen=True)
class HashAnnotations:
    """The annotations to write on an ApiKey after reading its key."""

    sha256: str
    previous_sha256: str | None
    previous_expires_at: datetime.datetime | None

    def to_patch(self) -> dict[str, str | None]:
        """A merge-patch of metadata.annotations (None deletes an annotation)."""
        return {
            SHA256_ANNOTATION: self.sha256,
            PREVIOUS_SHA256_ANNOTATION: self.previous_sha256,
            PREVIOUS_EXPIRES_ANNOTATION: (
                format_time(self.previous_expires_at) if self.previous_expires_at is not None else None
            ),
        }


def next_hashes(
    annotations: Mapping[str, str],
    current_sha256: str,
    grace: datetime.timedelta,
    now: datetime.datetime,
) -> HashAnnotations:
    """The hash annotations once the key read from the Secret hashes to ``current_sha256``.

    A different hash than the recorded one is a rotation: the recorded one becomes the
    previous key, valid until ``now + grace``. An unchanged hash keeps the previous key
    as it was (its grace is not extended by re-reading the Secret).
    """
    recorded = annotations.get(SHA256_ANNOTATION) or None
    previous = annotations.get(PREVIOUS_SHA256_ANNOTATION) or None
    previous_expires = parse_time(annotations.get(PREVIOUS_EXPIRES_ANNOTATION))
    if recorded is not None and recorded != current_sha256:
        if grace.total_seconds() > 0:
            return HashAnnotations(current_sha256, recorded, now + grace)
        return HashAnnotations(current_sha256, None, None)
    if previous_expires is not None and previous_expires <= now:
        return HashAnnotations(current_sha256, None, None)  # grace over: forget the old hash
    return HashAnnotations(current_sha256, previous, previous_expires)


def to_utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
