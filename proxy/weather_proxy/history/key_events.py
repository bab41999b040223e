"""The key lifecycle audit: issued, rotated, disabled, enabled, expired, deleted, from keys.yaml.

Every proxy of a fleet sees the same keys.yaml changes (its keys Secrets, through the watch or
the mounted files). When its key ring changes, :func:`record` compares its view with the
fleet's last known state of each key (``key_states``) and writes what changed as rows of
``key_events``, in one transaction under an advisory lock so the fleet's processes take turns:
the first to see a change records it, the others find nothing new. A row's ``time`` is when
that first process saw the change (within a second of the operator's write, with the watch).

What tells a change from a process lagging behind is the revision the operator raises with
every write of a keys Secret (``KeysFile.revision``, per Secret): a view of a key older than the
one recorded is ignored; a key missing from the view counts as gone only when the view of the
Secret it was recorded from is at least as new as the record. A key moving to another Secret
(resharding) is neither deleted nor issued. A key version (its hash) once recorded never comes
back as a rotation. Unversioned files (revision 0, hand-written) are taken as they come.

No key and no hash is stored: a version is told apart by a fingerprint, 16 hex digits of the
SHA-256 of the key's SHA-256. The entries of a rotation's grace (``id#previous``) are not keys
of their own, and a probe key (the operator's smoke key) is no consumer's.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
from collections.abc import Mapping

import psycopg

from weather_proxy import config as config_mod
from weather_proxy import contract
from weather_proxy.history import migrations

log = logging.getLogger(__name__)

PREVIOUS_SUFFIX = contract.GRACE_ENTRY_SUFFIX  # the operator's entry for a rotated key's grace period
EVENTS = ("issued", "rotated", "disabled", "enabled", "expired", "deleted")


def fingerprint(sha256_hex: str) -> str:
    """A key version's fingerprint: neither the key nor its hash."""
    return hashlib.sha256(sha256_hex.encode("ascii")).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Seen:
    """One key as a process's view holds it."""

    key_id: str
    source: str
    revision: int
    fingerprint: str
    disabled: bool
    expires_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class Recorded:
    """A row of ``key_states``."""

    key_id: str
    source: str
    revision: int
    fingerprint: str
    disabled: bool
    expires_at: datetime.datetime | None
    present: bool


@dataclasses.dataclass(frozen=True)
class Event:
    key_id: str
    event: str
    instance: str  # with key_id and event, what makes this occurrence unique (idempotent inserts)
    time: datetime.datetime
    source: str
    revision: int
    fingerprint: str


def view(parts: Mapping[str, config_mod.KeysFile]) -> tuple[dict[str, Seen], dict[str, int]]:
    """The keys of a process's sources (source name -> its keys file), and each source's revision."""
    seen: dict[str, Seen] = {}
    for source, keys in parts.items():
        for entry in keys.keys:
            if entry.probe or entry.id.endswith(PREVIOUS_SUFFIX):
                continue
            seen[entry.id] = Seen(
                entry.id,
                source,
                keys.revision,
                fingerprint(entry.sha256),
                entry.disabled,
                entry.expires_at,
            )
    return seen, {source: keys.revision for source, keys in parts.items()}


def _occurrence(fp: str, source: str, revision: int) -> str:
    return f"{fp}@{source}:{revision}"


def changes(
    seen: Mapping[str, Seen],
    revisions: Mapping[str, int],
    recorded: Mapping[str, Recorded],
    versions: Mapping[str, set[str]],
    now: datetime.datetime,
) -> tuple[list[Event], list[Recorded]]:
    """The events between the recorded state and a view, and the states to record; pure.

    ``versions``: per key id, the fingerprints already recorded as issued or rotated.
    """
    events: list[Event] = []
    states: list[Recorded] = []

    def event(s: Seen | Recorded, name: str, instance: str, revision: int) -> None:
        events.append(Event(s.key_id, name, instance, now, s.source, revision, s.fingerprint))

    for key_id, s in sorted(seen.items()):
        before = recorded.get(key_id)
        if before is not None and before.source == s.source and s.revision < before.revision:
            continue  # this process lags behind the one that recorded the key
        known = versions.get(key_id, set())
        if before is None or not before.present:
            if before is not None and s.fingerprint in known and s.revision == before.revision:
                continue  # the view the key was deleted from, or older: nothing new
            instance = (
                s.fingerprint
                if s.fingerprint not in known
                else _occurrence(s.fingerprint, s.source, s.revision)
            )
            event(s, "issued", instance, s.revision)
        elif s.fingerprint != before.fingerprint:
            if s.fingerprint in known:
                continue  # an older version: a lagging view, never a rotation back
            event(s, "rotated", s.fingerprint, s.revision)
        if before is not None and before.present and s.disabled != before.disabled:
            event(
                s,
                "disabled" if s.disabled else "enabled",
                _occurrence(s.fingerprint, s.source, s.revision),
                s.revision,
            )
        elif (before is None or not before.present) and s.disabled:
            event(s, "disabled", _occurrence(s.fingerprint, s.source, s.revision), s.revision)
        state = Recorded(key_id, s.source, s.revision, s.fingerprint, s.disabled, s.expires_at, True)
        if before is None or dataclasses.replace(before, revision=s.revision) != state:
            # Only what changed is written: a key keeps the revision of its last change, which is
            # what a lagging view is compared with (50,000 unchanged keys cost no writes).
            states.append(state)

    for key_id, before in sorted(recorded.items()):
        if not before.present or key_id in seen:
            continue
        view_revision = revisions.get(before.source)
        if view_revision is None or view_revision < before.revision:
            continue  # this process does not see that Secret, or an older copy of it
        expired = before.expires_at is not None and before.expires_at <= now
        name = "expired" if expired else "deleted"
        event(before, name, _occurrence(before.fingerprint, before.source, view_revision), view_revision)
        states.append(dataclasses.replace(before, revision=view_revision, present=False))
    return events, states


Connection = psycopg.AsyncConnection[tuple[object, ...]]


async def record(
    conn: Connection, parts: Mapping[str, config_mod.KeysFile], now: datetime.datetime
) -> list[Event]:
    """Write what changed since the fleet's last record; returns the events this call wrote."""
    seen, revisions = view(parts)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.KEY_EVENTS_LOCK,))
        cur = await conn.execute(
            "SELECT key_id, source, revision, fingerprint, disabled, expires_at, present FROM key_states"
        )
        recorded = {
            str(row[0]): Recorded(
                str(row[0]),
                str(row[1]),
                int(str(row[2])),
                str(row[3]),
                bool(row[4]),
                row[5] if isinstance(row[5], datetime.datetime) else None,
                bool(row[6]),
            )
            for row in await cur.fetchall()
        }
        cur = await conn.execute(
            "SELECT key_id, instance FROM key_events WHERE event IN ('issued', 'rotated')"
        )
        versions: dict[str, set[str]] = {}
        for key_id, instance in await cur.fetchall():
            versions.setdefault(str(key_id), set()).add(str(instance).split("@", 1)[0])
        events, states = changes(seen, revisions, recorded, versions, now)
        written: list[Event] = []
        for e in events:
            cur = await conn.execute(
                "INSERT INTO key_events (key_id, event, instance, time, source, revision, fingerprint)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (e.key_id, e.event, e.instance, e.time, e.source, e.revision, e.fingerprint),
            )
            if cur.rowcount:
                written.append(e)
        for st in states:
            await conn.execute(
                "INSERT INTO key_states"
                " (key_id, source, revision, fingerprint, disabled, expires_at, present, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (key_id) DO UPDATE SET source = EXCLUDED.source, revision = EXCLUDED.revision,"
                " fingerprint = EXCLUDED.fingerprint, disabled = EXCLUDED.disabled,"
                " expires_at = EXCLUDED.expires_at, present = EXCLUDED.present,"
                " updated_at = EXCLUDED.updated_at",
                (
                    st.key_id,
                    st.source,
                    st.revision,
                    st.fingerprint,
                    st.disabled,
                    st.expires_at,
                    st.present,
                    now,
                ),
            )
    if written:
        log.info(
            "key lifecycle recorded",
            extra={"keyEvents": [f"{e.event} {e.key_id}" for e in written][:50], "count": len(written)},
        )
    return written
