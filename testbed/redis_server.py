"""A real ``redis-server`` for the tests, the benches and ``make dev``, from the Debian package.

One process on a free 127.0.0.1 port with its own temp dir, no persistence
(``--save ''``, ``--appendonly no``) and an optional password. Tests may kill it
and restart it on the same port (Redis outage scenarios).

With ``tls_dir`` (``tls.crt``, ``tls.key``, ``ca.crt``, e.g. a :class:`testbed.certificates.Leaf`
written there) it speaks TLS only, as a fleet's Redis with internal TLS: ``--port 0`` and
``--tls-port``, no client certificate asked (``--tls-auth-clients no``); ``.url`` is then
``rediss://``.

Fixtures:

``redis_server`` (session scope)
    The running server: ``.url``, ``.port``, ``.password``, ``.kill()``,
    ``.restart()``, ``.is_running()``.
``redis_url`` (function scope)
    The server's URL after ``FLUSHALL`` (and a restart if an earlier test left it
    down): every test starts from an empty Redis.

When ``redis-server`` is not installed the fixtures skip with a reason, except when
``CI=true``: then a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from devcluster.processes import free_port
from testbed import installed

REDIS_BINARY_ENV = "WPF_REDIS_SERVER"


def find_redis_server() -> str | None:
    """Path of the redis-server binary (``$WPF_REDIS_SERVER`` overrides the PATH lookup)."""
    return os.environ.get(REDIS_BINARY_ENV) or shutil.which("redis-server")


class RedisServer:
    """One redis-server process; ``restart()`` brings it back on the same port."""

    def __init__(
        self,
        binary: str,
        *,
        password: str | None = None,
        port: int | None = None,
        tls_dir: pathlib.Path | None = None,
    ) -> None:
        self.binary = binary
        self.password = password
        self.port = port or free_port()
        self.tls_dir = tls_dir
        self._dir = pathlib.Path(tempfile.mkdtemp(prefix="wpf-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self._dir / "redis.log"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls_dir else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.tls_dir is None:
            ports = ["--port", str(self.port)]
        else:
            ports = [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls_dir / "tls.crt"),
                "--tls-key-file", str(self.tls_dir / "tls.key"),
                "--tls-ca-cert-file", str(self.tls_dir / "ca.crt"),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        args = [
            self.binary,
            *ports,
            "--bind", "127.0.0.1",
            "--dir", str(self._dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(self._log),
            "--maxclients", "10000",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}: {self.log_tail()}")
            if self.ping():
                return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer PING within {timeout}s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def command(self, *words: str, timeout: float = 2.0) -> bytes:
        """Send one command (inline RESP) and return the raw first reply line."""
        with contextlib.ExitStack() as stack:
            s = stack.enter_context(socket.create_connection(("127.0.0.1", self.port), timeout=timeout))
            if self.tls_dir is not None:
                context = ssl.create_default_context(cafile=str(self.tls_dir / "ca.crt"))
                context.check_hostname = False  # the test's own check that it answers, not the client's
                s = stack.enter_context(context.wrap_socket(s))
            payload = b""
            if self.password:
                payload += _resp("AUTH", self.password)
            payload += _resp(*words)
            s.sendall(payload)
            replies = b""
            want = 2 if self.password else 1
            while replies.count(b"\r\n") < want:
                chunk = s.recv(65536)
                if not chunk:
                    break
                replies += chunk
            return replies.split(b"\r\n")[want - 1]

    def ping(self) -> bool:
        try:
            return self.command("PING", timeout=0.5) == b"+PONG"
        except OSError:
            return False

    def flushall(self) -> None:
        reply = self.command("FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, like a crashed or evicted Redis pod; its port stops answering."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def restart(self) -> None:
        """Kill if running, then start again on the same port (empty: nothing persisted)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        shutil.rmtree(self._dir, ignore_errors=True)


def _resp(*words: str) -> bytes:
    out = f"*{len(words)}\r\n".encode()
    for word in words:
        data = word.encode()
        out += f"${len(data)}\r\n".encode() + data + b"\r\n"
    return out


def require_redis_server() -> str:
    """The binary, or skip (locally) / fail (CI=true) with a clear reason."""
    return installed.require(
        find_redis_server(),
        "redis-server is not installed (apt-get install redis-server, or set WPF_REDIS_SERVER)",
    )


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A session-wide redis-server on a free loopback port."""
    server = RedisServer(require_redis_server()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server, running and empty."""
    if not redis_server.is_running() or not redis_server.ping():
        redis_server.restart()
    redis_server.flushall()
    return redis_server.url
