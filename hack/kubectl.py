"""A thin ``kubectl`` runner bound to one kubeconfig, plus CRD installation and polling.

Shared by the dev stack (``hack.dev``), the measurement scripts and the operator
integration tests, so all of them talk to the API server the same way.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess  # nosec B404 - kubectl is run with argument lists, never a shell
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CRDS_DIR = REPO_ROOT / "crds"

T = TypeVar("T")


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message carries its stderr."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"kubectl {' '.join(args)} exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


class Timeout(AssertionError):
    """A condition polled by :func:`wait_until` did not hold in time."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns something truthy; return that, or raise :class:`Timeout`.

    Exceptions raised by ``probe`` count as "not yet" and are reported on timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # polled until the deadline
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise Timeout(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


@dataclasses.dataclass(frozen=True)
class Kubectl:
    """``kubectl --kubeconfig=...`` with JSON in and out."""

    kubeconfig: Path
    binary: str = dataclasses.field(default_factory=lambda: shutil.which("kubectl") or "/usr/bin/kubectl")

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        """Run kubectl; return stdout. Raises :class:`KubectlError` when ``check`` and it fails."""
        cmd = [self.binary, f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(  # noqa: S603 - argument list built here, no shell
            cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise KubectlError(args, proc.returncode, proc.stderr)
        return proc.stdout if proc.returncode == 0 else proc.stdout + proc.stderr

    def apply(self, *objects: dict[str, Any], field_manager: str = "weather-dev") -> str:
        """Server-side apply of in-memory objects (forcing conflicts, as a person would)."""
        docs = yaml.safe_dump_all(list(objects), sort_keys=False)
        return self.run(
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={field_manager}",
            "-f",
            "-",
            stdin=docs,
        )

    def get(self, kind: str, name: str | None = None, *, namespace: str | None = None) -> Any:
        """``kubectl get -o json``; a list (dict with items) when ``name`` is None."""
        args = ["get", kind, *([name] if name else []), "-o", "json", "--show-managed-fields"]
        if namespace:
            args += ["-n", namespace]
        return json.loads(self.run(*args))

    def exists(self, kind: str, name: str, *, namespace: str | None = None) -> bool:
        args = ["get", kind, name, "--ignore-not-found", "-o", "name"]
        if namespace:
            args += ["-n", namespace]
        return bool(self.run(*args).strip())

    def install_crds(self, path: Path = CRDS_DIR, *, timeout: float = 60) -> list[str]:
        """Apply every CRD under ``path`` (server-side) and wait until each is Established."""
        source = ["-k", str(path)] if (path / "kustomization.yaml").is_file() else ["-f", str(path)]
        out = self.run("apply", "--server-side", "--force-conflicts", *source, "-o", "name")
        names = [line.split("/", 1)[1] for line in out.split() if line.startswith("customresourcedefinition")]
        if names:
            self.run(
                "wait",
                "--for=condition=Established",
                f"--timeout={int(timeout)}s",
                *[f"crd/{n}" for n in names],
                timeout=timeout + 10,
            )
        return names

    def uninstall_crds(self, path: Path, *, timeout: float = 60) -> None:
        """Delete the CRDs under ``path`` and wait until they are gone."""
        source = ["-k", str(path)] if (path / "kustomization.yaml").is_file() else ["-f", str(path)]
        self.run(
            "delete",
            *source,
            "--ignore-not-found",
            "--wait=true",
            f"--timeout={int(timeout)}s",
            timeout=timeout + 10,
        )
