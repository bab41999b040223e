"""Hot reload of mounted files: poll, validate, swap atomically, keep the last good version.

Kubernetes updates a mounted ConfigMap/Secret by swapping the ``..data``
symlink, so the file's own mtime may not change: each poll stats the resolved
path (device, inode, size, mtime) and its realpath. A bad file is reported in
logs, in ``weather_proxy_config_reload_total{result="failure"}`` /
``weather_proxy_config_reload_success`` and in readiness; the previous version
keeps serving. An empty keys file is such a bad file (``config.parse_keys``), and a
file is read only once it has stopped changing, so a rewrite in place is never read
half-written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from weather_proxy import config as config_mod
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

T = TypeVar("T")
POLL_SECONDS = 0.5
# A file modified this recently may still be being written; the poll after next reads it.
SETTLE_SECONDS = 0.2


def fingerprint(path: pathlib.Path) -> tuple[Any, ...] | None:
    """What changes when the file (or the symlink chain to it) changes; None when missing."""
    try:
        st = os.stat(path)  # follows symlinks: the target's identity
    except OSError:
        return None
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclasses.dataclass
class FileState:
    """What readiness reports about one watched file."""

    path: str
    ok: bool = False
    loaded: bool = False
    error: str | None = None
    last_reload: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "loaded": self.loaded,
            "error": self.error,
            "lastReload": self.last_reload,
        }


class WatchedFile(Generic[T]):
    """One file: load with ``loader``, hand good versions to ``apply``."""

    def __init__(
        self,
        label: str,
        path: pathlib.Path,
        loader: Callable[[pathlib.Path], T],
        apply: Callable[[T], None],
        metrics: metrics_mod.Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.label = label
        self.path = path
        self.loader = loader
        self.apply = apply
        self.metrics = metrics
        # Epoch seconds, as file mtimes are: a file's age (``settle``) and the reload stamps read it.
        self.clock = clock
        self.state = FileState(str(path))
        self._seen: tuple[Any, ...] | None = None

    def mark_loaded(self) -> None:
        """Record that the current file was loaded at start (by the caller)."""
        self._seen = fingerprint(self.path)
        self.state.ok = self.state.loaded = True
        self.state.last_reload = _stamp(self.clock())
        self.metrics.config_reload_ok.labels(self.label).set(1)

    async def check(self, *, settle: float = 0.0) -> bool | None:
        """Reload when changed: True on success, False on failure, None when unchanged (or not yet).

        The file is parsed in a thread (a large keys file must not stall the loop);
        the new version is applied on the loop, in one step. A file modified less than
        ``settle`` seconds ago, or modified while it was read, is left for a later check:
        a file rewritten in place (not swapped like a volume) is read whole, not half-written.
        """
        seen = fingerprint(self.path)
        if seen == self._seen:
            return None
        if settle and seen is not None and self.clock() - seen[-1] / 1e9 < settle:
            return None
        try:
            value = await asyncio.to_thread(self.loader, self.path)
            if fingerprint(self.path) != seen:
                return None  # changed while it was read: the next check reads it again
            self._seen = seen
            self.apply(value)
        except (config_mod.ConfigError, ValueError) as exc:
            self._seen = seen
            self.state.ok = False
            self.state.error = str(exc)
            self.metrics.config_reloads.labels(self.label, "failure").inc()
            self.metrics.config_reload_ok.labels(self.label).set(0)
            log.error("reload of %s failed, keeping the last good version: %s", self.path, exc)
            return False
        self.state.ok = self.state.loaded = True
        self.state.error = None
        self.state.last_reload = _stamp(self.clock())
        self.metrics.config_reloads.labels(self.label, "success").inc()
        self.metrics.config_reload_ok.labels(self.label).set(1)
        log.info("reloaded %s", self.path)
        return True


def _stamp(now: float) -> str:
    return datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="seconds")


class Reloader:
    """Polls a set of watched files."""

    def __init__(self) -> None:
        self.files: dict[str, WatchedFile[Any]] = {}

    def add(self, watched: WatchedFile[Any]) -> None:
        self.files[watched.label] = watched

    async def check_all(self, *, settle: float = 0.0) -> None:
        for watched in list(self.files.values()):
            await watched.check(settle=settle)

    async def run(self, interval: float = POLL_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.check_all(settle=SETTLE_SECONDS)
