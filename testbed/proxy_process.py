"""Real weather-proxy processes for integration tests and benchmarks.

* :class:`KubeVolume` writes files the way the kubelet updates a ConfigMap or Secret
  volume: a timestamped directory, a ``..data`` symlink to it, and per-file symlinks
  ``keys.yaml -> ..data/keys.yaml``. An update writes a new directory and renames a
  temporary symlink over ``..data`` (one atomic swap), then removes the old directory.
* :class:`ProxyProcess` runs ``python -m weather_proxy --config <config.yaml>`` on a
  free loopback port (the environment passes through, so coverage and REDIS_PASSWORD
  reach the child), waits for ``/health/live``, captures stdout+stderr to a log file,
  and stops it with SIGTERM, reporting the exit code.
* :class:`InProcessProxy` serves ``weather_proxy.app.create_app(config)`` with uvicorn
  in a thread of the test process (same contract, cheaper, and measured by coverage).
* Fixtures: ``proxy_factory`` starts processes (all stopped at teardown).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import pathlib
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
import yaml

from devcluster.processes import free_port
from weather_proxy import config as proxy_config

CONFIG_FILE = "config.yaml"
# uvicorn re-raises SIGTERM after its graceful shutdown, so a clean stop ends "killed by SIGTERM".
GRACEFUL_EXIT_CODES = (0, -signal.SIGTERM)
# How long a new process may take to answer /health/live. Seconds on an idle machine; generous
# because `make test` runs four xdist workers, a kube-apiserver and their proxies on two cores.
LIVE_TIMEOUT = 60.0
KEYS_FILE = "keys.yaml"


def sha256_hex(plaintext: str) -> str:
    """What keys.yaml holds for a plaintext API key."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_entry(key_id: str, plaintext: str, **fields: Any) -> proxy_config.KeyEntry:
    """A keys.yaml entry for ``plaintext`` (fields: rate_limit, expires_at, disabled)."""
    return proxy_config.KeyEntry(id=key_id, sha256=sha256_hex(plaintext), **fields)


def to_yaml(document: proxy_config.ConfigModel | Mapping[str, Any] | str) -> str:
    """A model (camelCase), a plain dict, or text passed through as is (bad files on purpose)."""
    if isinstance(document, str):
        return document
    data = document.to_camel_dict() if isinstance(document, proxy_config.ConfigModel) else dict(document)
    return yaml.safe_dump(data, sort_keys=False)


class KubeVolume:
    """A directory updated like a kubelet-projected ConfigMap/Secret volume."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self._generation = 0

    def file(self, name: str) -> pathlib.Path:
        return self.path / name

    def write(self, files: Mapping[str, str]) -> None:
        """Publish a new set of files with one atomic ``..data`` symlink swap."""
        self._generation += 1
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y_%m_%d_%H_%M_%S")
        new_dir = self.path / f"..{stamp}.{os.getpid()}.{self._generation}"
        new_dir.mkdir()
        for name, text in files.items():
            (new_dir / name).write_text(text, encoding="utf-8")
        data_link = self.path / "..data"
        old_target = os.readlink(data_link) if data_link.is_symlink() else None
        tmp_link = self.path / "..data_tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp_link.unlink()
        tmp_link.symlink_to(new_dir.name)
        os.replace(tmp_link, data_link)
        for name in files:
            visible = self.path / name
            if not visible.is_symlink():
                visible.symlink_to(f"..data/{name}")
        if old_target is not None and old_target != new_dir.name:
            shutil.rmtree(self.path / old_target, ignore_errors=True)


class ProxyProcess:
    """One ``python -m weather_proxy`` process, with its own config and keys volumes."""

    def __init__(
        self,
        workdir: pathlib.Path,
        config: proxy_config.ProxyConfig,
        keys: proxy_config.KeysFile | str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        ca_file: pathlib.Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config_volume = KubeVolume(workdir / "config")
        self.keys_volume = KubeVolume(workdir / "keys")
        self.config_path = self.config_volume.file(CONFIG_FILE)
        self.keys_path = self.keys_volume.file(KEYS_FILE)
        self.log_path = workdir / "proxy.log"
        self.env = {**os.environ, **(env or {})}
        # With listen.tls: what this side trusts (the CA of the proxy's certificate).
        self.verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        )
        self.config = self.with_files(config)
        self.keys_volume.write({KEYS_FILE: to_yaml(keys if keys is not None else proxy_config.KeysFile())})
        self.config_volume.write({CONFIG_FILE: to_yaml(self.config)})
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def with_files(self, config: proxy_config.ProxyConfig) -> proxy_config.ProxyConfig:
        """``config`` listening on this process's port and reading this process's keys file."""
        return config.model_copy(
            update={
                "listen": config.listen.model_copy(update={"host": "127.0.0.1", "port": self.port}),
                "auth": config.auth.model_copy(update={"keys_file": str(self.keys_path)}),
            }
        )

    @property
    def url(self) -> str:
        scheme = "https" if self.config.listen.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self, *, wait: bool = True, timeout: float = LIVE_TIMEOUT) -> ProxyProcess:
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "weather_proxy", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.workdir,
        )
        if wait:
            self.wait_live(timeout)
        return self

    def wait_live(self, timeout: float = LIVE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(
                    f"proxy exited with {self._proc.returncode} before it was live:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/live", timeout=1, verify=self.verify).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"proxy was not live after {timeout}s:\n{self.log_tail()}")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Wait for the process to end by itself; its exit code."""
        assert self._proc is not None
        code = self._proc.wait(timeout)
        self._close_log()
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` (SIGTERM: graceful) and wait; the exit code (SIGKILL after ``timeout``)."""
        if self._proc is None:
            return 0
        if self._proc.poll() is None:
            self._proc.send_signal(sig)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._close_log()
        return self._proc.returncode

    def signal(self, sig: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(sig)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def write_keys(self, keys: proxy_config.KeysFile | str) -> None:
        """Hot-swap keys.yaml through the ``..data`` symlink, as the kubelet does."""
        self.keys_volume.write({KEYS_FILE: to_yaml(keys)})

    def write_config(self, config: proxy_config.ProxyConfig | str) -> None:
        """Hot-swap config.yaml (a model keeps this process's port and keys path)."""
        text = to_yaml(self.with_files(config)) if isinstance(config, proxy_config.ProxyConfig) else config
        self.config_volume.write({CONFIG_FILE: text})


class InProcessProxy:
    """``create_app(config)`` served by uvicorn on a loopback port, in a thread of this process."""

    def __init__(self, config: proxy_config.ProxyConfig, *, port: int | None = None) -> None:
        import uvicorn

        from weather_proxy import app as proxy_app

        self.port = port or free_port()
        self.config = config.model_copy(
            update={"listen": proxy_config.Listen(host="127.0.0.1", port=self.port)}
        )
        self.app = proxy_app.create_app(self.config)
        uv_config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", access_log=False
        )
        self.server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(target=self.server.run, name=f"proxy-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> InProcessProxy:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("in-process proxy did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)


ProxyFactory = Callable[..., ProxyProcess]


@pytest.fixture
def proxy_factory(tmp_path: pathlib.Path) -> Iterator[ProxyFactory]:
    """``proxy_factory(config, keys=None, env=None, start=True, ca_file=None)`` -> a started ProxyProcess.

    Every process is stopped at teardown; the tail of its log is printed when a test fails.
    """
    started: list[ProxyProcess] = []

    def make(
        config: proxy_config.ProxyConfig,
        keys: proxy_config.KeysFile | str | None = None,
        env: Mapping[str, str] | None = None,
        start: bool = True,
        ca_file: pathlib.Path | None = None,
    ) -> ProxyProcess:
        proc = ProxyProcess(tmp_path / f"proxy-{len(started)}", config, keys, env=env, ca_file=ca_file)
        started.append(proc)
        return proc.start() if start else proc

    try:
        yield make
    finally:
        for proc in started:
            proc.stop()
            print(f"--- {proc.workdir.name} log tail ---\n{proc.log_tail()}")
