"""Where the key ring comes from: the keys Secrets watched through the API server, and the mounted file.

The ring is the merge, in ``auth.kubernetes.secretNames`` order, of one ``KeysFile`` per
Secret, swapped into the runtime in one step whenever a part changes. The mounted file
(``auth.keysFile``) is the kubelet's copy of the first Secret, which lags behind the API
server by up to a minute or more. It seeds that Secret's part at start; afterwards it
replaces the part only when it is newer than what the watch delivered: a higher
``revision`` (which the operator raises with every change), or, for unversioned content,
only while the watch is down. So the two sources never flap, and a file projected late
never brings back a key the watch already revoked.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from weather_proxy import config as config_mod
from weather_proxy.auth import keys as keys_mod

log = logging.getLogger(__name__)

FILE, WATCH = "file", "watch"


@dataclasses.dataclass(frozen=True)
class Part:
    """One Secret's keys as last accepted, and which source delivered them."""

    keys: config_mod.KeysFile
    origin: str  # FILE | WATCH
    present: bool = True  # False: the watch saw no such Secret (it holds no keys then)


class KeySources:
    """The parts of the key ring and the rule that decides which source's version is in force."""

    def __init__(
        self,
        secret_names: Sequence[str],
        apply: Callable[[config_mod.KeysFile], None],
        watch_connected: Callable[[], bool],
        apply_ring: Callable[[keys_mod.KeyRing], None] | None = None,
    ) -> None:
        """``apply`` gets the merged keys file; with ``apply_ring`` the merged ring is built from one
        ring per Secret instead, so a change rebuilds only its Secret's ring (a sharded fleet of
        50,000 keys: one shard's few thousand entries, then a union of dicts).
        """
        if not secret_names:
            raise ValueError("secret_names: at least one Secret")
        self.secret_names = tuple(secret_names)
        self._apply = apply
        self._apply_ring = apply_ring
        self._watch_connected = watch_connected
        self.parts: dict[str, Part] = {}
        self._rings: dict[str, keys_mod.KeyRing] = {}

    @property
    def file_secret(self) -> str:
        """The Secret ``auth.keysFile`` is a copy of."""
        return self.secret_names[0]

    def offer_file(self, keys: config_mod.KeysFile, secret: str | None = None) -> None:
        """A mounted copy of ``secret`` (default: the first) changed, or was read at start.

        It is used if it is the newest version known of that Secret.
        """
        name = secret or self.file_secret
        current = self.parts.get(name)
        if current is not None and not self._file_wins(keys, current):
            log.info(
                "keys file (revision %d) not applied: the watch delivered Secret %s at revision %d",
                keys.revision,
                name,
                current.keys.revision,
            )
            return
        self._set(name, Part(keys, FILE))

    def _file_wins(self, keys: config_mod.KeysFile, current: Part) -> bool:
        if current.origin == FILE:
            return True  # the file replacing its own earlier version, as without a watch
        if keys.revision or current.keys.revision:
            return keys.revision > current.keys.revision
        return not self._watch_connected()  # unversioned: the watch is fresher whenever it is up

    def offer_watch(self, name: str, keys: config_mod.KeysFile | None) -> None:
        """The API server's current content of Secret ``name`` (None: no such Secret): always in force.

        A deleted Secret keeps the revision it had, so that its lagging file cannot bring its keys back.
        """
        if keys is None:
            previous = self.parts.get(name)
            revision = previous.keys.revision if previous is not None else 0
            self._set(name, Part(config_mod.KeysFile(revision=revision), WATCH, present=False))
            return
        self._set(name, Part(keys, WATCH))

    def _set(self, name: str, part: Part) -> None:
        self.parts[name] = part
        if self._apply_ring is None:
            self._apply(self.merged())
            return
        self._rings[name] = keys_mod.KeyRing(part.keys)
        self._apply_ring(
            keys_mod.KeyRing.union(self._rings[n] for n in self.secret_names if n in self._rings)
        )

    def merged(self) -> config_mod.KeysFile:
        """Every part's entries, in ``secret_names`` order; the highest revision among them."""
        parts = [self.parts[name] for name in self.secret_names if name in self.parts]
        return config_mod.KeysFile(
            revision=max((part.keys.revision for part in parts), default=0),
            keys=[entry for part in parts for entry in part.keys.keys],
        )

    def as_json(self) -> dict[str, Any]:
        """Per Secret: where its keys came from, their revision and count (for readiness)."""
        out: dict[str, Any] = {}
        for name in self.secret_names:
            part = self.parts.get(name)
            out[name] = (
                None
                if part is None
                else {
                    "source": part.origin,
                    "revision": part.keys.revision,
                    "count": len(part.keys.keys),
                    "present": part.present,
                }
            )
        return out
