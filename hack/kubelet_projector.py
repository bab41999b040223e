"""Project a ConfigMap or Secret into a local directory the way the kubelet does, and keep it current.

The kubelet writes a volume's files into a fresh timestamped directory, points a
``..data`` symlink at it with one atomic ``rename``, and exposes each key as a
top-level symlink ``name -> ..data/name`` (pkg/volume/util/atomic_writer.go). A
reader therefore sees either the old or the new set of files, never a mix, and a
file watcher sees ``..data`` change. The dev stack uses this to feed a proxy running
as a local process with the ConfigMap and Secret the operator rendered.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DATA_LINK = "..data"
Transform = Callable[[str, bytes], bytes]


class ProjectedVolume:
    """A directory holding a projected ConfigMap/Secret: ``..data`` swapped atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def current(self) -> dict[str, bytes]:
        """The files the volume holds now (empty before the first write)."""
        data = self.path / DATA_LINK
        if not data.is_dir():
            return {}
        return {p.name: p.read_bytes() for p in sorted(data.iterdir()) if p.is_file()}

    def write(self, files: Mapping[str, bytes]) -> bool:
        """Make the volume hold exactly ``files``; return False when it already did."""
        if self.current() == dict(files):
            return False
        self.path.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
        new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=self.path))
        for name, content in files.items():
            (new_dir / name).write_bytes(content)
            (new_dir / name).chmod(0o644)
        new_dir.chmod(0o755)
        old_target = os.readlink(self.path / DATA_LINK) if (self.path / DATA_LINK).is_symlink() else None
        tmp_link = self.path / "..data_tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp_link.unlink()
        tmp_link.symlink_to(new_dir.name)
        os.replace(tmp_link, self.path / DATA_LINK)  # the atomic step
        for name in files:
            link = self.path / name
            if not link.is_symlink():
                link.symlink_to(f"{DATA_LINK}/{name}")
        for entry in self.path.iterdir():
            stale_link = entry.is_symlink() and os.readlink(entry).startswith(f"{DATA_LINK}/")
            if stale_link and entry.name not in files:
                entry.unlink()
        if old_target and old_target != new_dir.name:
            shutil.rmtree(self.path / old_target, ignore_errors=True)
        return True


def object_files(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """The files a ConfigMap (``data``) or Secret (base64 ``data``) projects."""
    data = obj.get("data") or {}
    if obj.get("kind") == "Secret":
        return {k: base64.b64decode(v) for k, v in data.items()}
    return {k: str(v).encode() for k, v in data.items()}


class Projector:
    """Watch one ConfigMap or Secret and keep a :class:`ProjectedVolume` in step with it.

    Runs in a daemon thread with the official client's watch; the watch is re-opened
    every two seconds (server-side timeout) so :meth:`stop` takes effect promptly.
    A deleted object leaves the last files in place, as the kubelet does.
    """

    def __init__(
        self,
        api_client: Any,
        kind: str,
        namespace: str,
        name: str,
        volume: ProjectedVolume,
        *,
        transform: Transform | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        if kind not in ("ConfigMap", "Secret"):
            raise ValueError(f"kind: must be ConfigMap or Secret, got {kind!r}")
        self.kind, self.namespace, self.name, self.volume = kind, namespace, name, volume
        self._api_client = api_client
        self._transform = transform
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"project-{kind}-{name}", daemon=True)
        self.updates = 0
        self.error: BaseException | None = None

    def start(self) -> Projector:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; the thread ends at its watch's next server-side timeout (a daemon)."""
        self._stop.set()
        self._thread.join(timeout=0.5)

    def project(self, obj: Mapping[str, Any]) -> bool:
        files = object_files(obj)
        if self._transform is not None:
            files = {k: self._transform(k, v) for k, v in files.items()}
        changed = self.volume.write(files)
        if changed:
            self.updates += 1
            if self._on_change is not None:
                self._on_change(f"{self.kind}/{self.name}")
        return changed

    def _run(self) -> None:
        from kubernetes import client, watch

        core = client.CoreV1Api(self._api_client)
        lister = core.list_namespaced_config_map if self.kind == "ConfigMap" else core.list_namespaced_secret
        selector = f"metadata.name={self.name}"
        while not self._stop.is_set():
            try:
                listed = self._api_client.sanitize_for_serialization(
                    lister(self.namespace, field_selector=selector)
                )
                for item in listed.get("items") or []:
                    self.project({**item, "kind": self.kind})
                version = listed["metadata"]["resourceVersion"]
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    lister,
                    self.namespace,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=2,
                )
                for event in stream:
                    if self._stop.is_set():
                        break
                    if event["type"] in ("ADDED", "MODIFIED"):
                        raw = event["raw_object"]
                        self.project({**raw, "kind": self.kind})
            except Exception as exc:
                self.error = exc
                self._stop.wait(1.0)
