"""A real PostgreSQL server for the tests, the benches and ``make dev``, from the Debian package.

``initdb`` into a temp dir (superuser ``weather`` with a random password, scram-sha-256 over
TCP), then ``postgres`` on a free 127.0.0.1 port with its socket in the same dir and
``fsync`` and ``full_page_writes`` off (a test database needs speed, not to survive a power cut).
``synchronous_commit`` stays on: a committed row survives the server's own crash (``stop``).
PostgreSQL refuses to run as root: as root the server runs
as the ``postgres`` user (``runuser``), which the Debian package creates.
With ``tls_dir`` (``tls.crt`` and ``tls.key``, e.g. a :class:`testbed.certificates.Leaf` written
there) it also serves TLS (``ssl=on``, ``ssl_cert_file``/``ssl_key_file``, copied next to the data
with the owner and mode PostgreSQL demands of a key).

Fixtures:

``postgres_server`` (session scope)
    The running server: ``.port``, ``.user``, ``.password``, ``.url(db)``, ``.create_database()``,
    ``.stop()`` (immediate shutdown: the connections break), ``.start()`` (same port and data),
    ``.pause()`` / ``.resume()`` (SIGSTOP / SIGCONT of every server process: it stops answering
    without refusing, the slow or hung database), ``.is_running()``.
``analytics_database`` (function scope)
    A new empty database on the running server (restarted or resumed if an earlier test left
    it down): ``AnalyticsDatabase(url, password)``; dropped at the end of the test.

When PostgreSQL is not installed the fixtures skip with a reason, except when ``CI=true``:
then a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import psycopg
import pytest

from devcluster.processes import free_port
from testbed import installed

BIN_DIR_ENV = "WPF_POSTGRES_BIN_DIR"
UNPRIVILEGED_USER = "postgres"
SUPERUSER = "weather"
_database_names = itertools.count(1)


def find_bin_dir() -> pathlib.Path | None:
    """The directory of ``initdb`` and ``postgres``: ``$WPF_POSTGRES_BIN_DIR``, PATH, or Debian's."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return pathlib.Path(override)
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return pathlib.Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return pathlib.Path(versions[-1]).parent if versions else None


def require_bin_dir() -> pathlib.Path:
    """The binaries' directory, or skip (locally) / fail (CI=true) with a clear reason."""
    return installed.require(
        find_bin_dir(),
        "PostgreSQL is not installed (apt-get install postgresql, or set WPF_POSTGRES_BIN_DIR)",
    )


@dataclasses.dataclass(frozen=True)
class AnalyticsDatabase:
    """A database of the test server: its URL (no password in it) and the password."""

    url: str
    password: str
    name: str


class PostgresServer:
    """One ``postgres`` process on a loopback port; ``stop``/``start``, ``pause``/``resume``."""

    def __init__(self, bin_dir: pathlib.Path, *, tls_dir: pathlib.Path | None = None) -> None:
        self.bin_dir = bin_dir
        self.tls_dir = tls_dir
        self.port = free_port()
        self.user = SUPERUSER
        self.password = secrets.token_hex(12)
        self._dir = pathlib.Path(tempfile.mkdtemp(prefix="wpf-postgres-"))
        self.data_dir = self._dir / "data"
        self.log_path = self._dir / "postgres.log"
        self._as: list[str] = []
        self._owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._owner = pwd.getpwnam(UNPRIVILEGED_USER)
            except KeyError:
                pytest.fail(
                    f"running as root and there is no {UNPRIVILEGED_USER!r} user to run PostgreSQL as"
                )
            self._as = ["runuser", "-u", UNPRIVILEGED_USER, "--"]
            os.chown(self._dir, self._owner.pw_uid, self._owner.pw_gid)
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} password={self.password} dbname=postgres"

    def _owned(self, path: pathlib.Path) -> None:
        if self._owner is not None:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def init(self) -> PostgresServer:
        pwfile = self._dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._owned(pwfile)
        subprocess.run(
            [
                *self._as,
                str(self.bin_dir / "initdb"),
                "-D", str(self.data_dir),
                "-U", self.user,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self._dir,
        )  # fmt: skip
        pwfile.unlink()
        return self

    def start(self, timeout: float = 30.0) -> PostgresServer:
        args = [
            *self._as,
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self._dir),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
            "-c", "log_min_messages=warning",
        ]  # fmt: skip
        args += self._tls_args()
        log = self.log_path.open("ab")
        # A session of its own: a hung stop() can SIGKILL the whole group.
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self._dir,
        )
        log.close()
        self._paused = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self._proc.returncode}: {self.log_tail()}")
            if self.answers():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not answer within {timeout}s: {self.log_tail()}")

    def _tls_args(self) -> list[str]:
        if self.tls_dir is None:
            return []
        files = []
        for name in ("tls.crt", "tls.key"):
            copy = self._dir / name
            shutil.copyfile(self.tls_dir / name, copy)
            copy.chmod(0o600)
            self._owned(copy)
            files.append(str(copy))
        return ["-c", "ssl=on", "-c", f"ssl_cert_file={files[0]}", "-c", f"ssl_key_file={files[1]}"]

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.conninfo, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _signal_all(self, sig: int) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def _server_pids(self) -> list[int]:
        """The postmaster and its children (backends, walwriter, ...): they may leave our session."""
        postmaster = self._postmaster_pid()
        pids = [postmaster]
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    pids.append(int(stat.parent.name))
        return pids

    def pause(self) -> None:
        """SIGSTOP every server process: connections stay open, nothing answers."""
        for pid in self._server_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        for pid in self._server_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._paused = False

    def stop(self, timeout: float = 30.0) -> None:
        """Immediate shutdown (SIGQUIT to the postmaster): every connection breaks, like a crash."""
        if self._proc is None or self._proc.poll() is not None:
            return
        if self._paused:
            self.resume()
        postmaster = self._postmaster_pid()
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, signal.SIGQUIT)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_all(signal.SIGKILL)
            self._proc.wait(10)

    def _postmaster_pid(self) -> int:
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pid_file.read_text().splitlines()[0])
        assert self._proc is not None
        return self._proc.pid

    def ensure_running(self) -> None:
        if self._paused:
            self.resume()
        if not self.is_running():
            self.start()

    def create_database(self) -> AnalyticsDatabase:
        name = f"analytics_{os.getpid()}_{next(_database_names)}"
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return AnalyticsDatabase(self.url(name), self.password, name)

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A session-wide PostgreSQL on a free loopback port."""
    server = PostgresServer(require_bin_dir()).init().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def analytics_database(postgres_server: PostgresServer) -> Iterator[AnalyticsDatabase]:
    """A new, empty database on the running server; dropped after the test."""
    postgres_server.ensure_running()
    database = postgres_server.create_database()
    try:
        yield database
    finally:
        postgres_server.ensure_running()
        postgres_server.drop_database(database.name)
