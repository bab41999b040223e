"""The weather operator as a local subprocess: started, killed, restarted, its log kept in a file.

Used by the dev stack and by the operator integration tests. A subprocess (not a thread)
is what production runs, and it can be SIGKILLed to prove nothing is lost on a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess  # nosec B404 - the operator is run with an argument list, never a shell
import sys
import time
from collections.abc import Mapping
from pathlib import Path

# `kopf run` with the handlers module: the documented way to run the operator outside a pod.
# WPF_OPERATOR_MODULE runs another module (one that imports the handlers and adds to them).
HANDLERS_MODULE = "weather_operator.handlers"
MODULE_ENV = "WPF_OPERATOR_MODULE"


METRICS_PORT_ENV = "WEATHER_OPERATOR_METRICS_PORT"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def operator_command() -> list[str]:
    module = os.environ.get(MODULE_ENV) or HANDLERS_MODULE
    return [sys.executable, "-m", "kopf", "run", "--all-namespaces", "--standalone", "-m", module]


@dataclasses.dataclass
class OperatorProcess:
    """``kopf run -A --standalone -m weather_operator.handlers`` against one kubeconfig."""

    kubeconfig: Path
    log_path: Path
    settings: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Extra environment, e.g. ``WEATHER_OPERATOR_DRIFT_INTERVAL_SECONDS``."""

    command: list[str] = dataclasses.field(default_factory=operator_command)
    """The command line; default ``kopf run -A --standalone -m weather_operator.handlers``."""

    proc: subprocess.Popen[bytes] | None = dataclasses.field(default=None, init=False)
    starts: int = dataclasses.field(default=0, init=False)
    metrics_port: int = dataclasses.field(default=0, init=False)
    """The port of this process's ``/metrics`` (a free one, so several operators run side by side)."""

    def start(self) -> OperatorProcess:
        """Start the operator (in its own process group); its output is appended to ``log_path``."""
        if self.running:
            return self
        if not self.metrics_port:
            self.metrics_port = int(self.settings.get(METRICS_PORT_ENV) or _free_port())
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "WEATHER_OPERATOR_LOG_FORMAT": "plain",
            METRICS_PORT_ENV: str(self.metrics_port),
            **self.settings,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"---- operator start #{self.starts} ----\n".encode())
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argument list
                self.command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill(self) -> None:
        """SIGKILL the operator's process group: a crash, no graceful shutdown."""
        self._signal(signal.SIGKILL)
        self._reap(10.0)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Kopf shuts down gracefully), then SIGKILL after ``timeout``. Idempotent."""
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        if not self._reap(timeout):
            self.kill()
        self.proc = None

    def restart(self) -> OperatorProcess:
        self.stop()
        return self.start()

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no operator log)"

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def _reap(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return True
            time.sleep(0.05)
        return False
