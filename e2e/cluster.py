"""Helpers of the kind e2e suite: container engine detection, kubectl, waiting, HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from pytest_kind import KindCluster  # type: ignore[import-untyped]

T = TypeVar("T")

NO_ENGINE = "e2e: no container engine (docker info failed): kind cannot run here"


def container_engine_problem(docker: str | None = None) -> str | None:
    """Why kind cannot run here (one line), or None when `docker info` works."""
    docker = docker or shutil.which("docker")
    if docker is None:
        return "e2e: no container engine (docker not found): kind cannot run here"
    try:
        result = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return NO_ENGINE
    return None if result.returncode == 0 else NO_ENGINE


def docker_build(dockerfile: str, tag: str, context: str) -> None:
    subprocess.run(
        ["docker", "build", "--file", dockerfile, "--tag", tag, context],
        check=True,
        # BuildKit reads e2e/Dockerfile.emulator.dockerignore for the emulator's context.
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )


def kubectl_json(cluster: KindCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl(*args, "-o", "json"))


def apply(cluster: KindCluster, manifest: dict[str, Any] | list[dict[str, Any]]) -> None:
    items = manifest if isinstance(manifest, list) else [manifest]
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=document)


def eventually(check: Callable[[], T | None], timeout: float, what: str, interval: float = 2.0) -> T:
    """Poll ``check`` until it returns something other than None/False; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (subprocess.CalledProcessError, urllib.error.URLError, ConnectionError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
