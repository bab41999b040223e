"""The managed StatefulSet's start script, run with Debian's PostgreSQL binaries as the pod would.

The container of ``render.postgres.render_statefulset`` runs ``sh -c START_SCRIPT`` with the env
the render gives it. Here the same command and env (the data and socket dirs moved to a temp dir,
the port through ``PGPORT``) run on this machine: the first start initialises the volume with the
owner's password, the proxy's migrations apply over TCP with that password, a restart keeps the
data and does not initialise again, and a wrong password is refused.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import psycopg
import pytest

from devcluster.processes import free_port
from testbed import postgres_server
from weather_operator.api import analytics as analytics_api
from weather_operator.controller import fleets
from weather_operator.render import names, postgres
from weather_proxy import config

pytestmark = [pytest.mark.integration]

INITDB_SAYS = "The files belonging to this database system will be owned by user"


def _pod_env(
    proxy: str, data: pathlib.Path, sockets: pathlib.Path, port: int, password: str
) -> dict[str, str]:
    analytics = analytics_api.resolve(None, config.Environment.PRODUCTION)
    [container] = postgres.render_statefulset(proxy, "weather", analytics)["spec"]["template"]["spec"][
        "containers"
    ]
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:  # the Secret's password, as the kubelet would resolve the secretKeyRef
            assert var["valueFrom"]["secretKeyRef"]["name"] == names.postgres_secret_name(proxy)
            env[var["name"]] = password
    assert env["PGDATA"].startswith(postgres.DATA_DIR + "/")
    env["PGDATA"] = str(data / env["PGDATA"].removeprefix(postgres.DATA_DIR + "/"))
    env[postgres.SOCKET_DIR_ENV] = str(sockets)
    env["PGPORT"] = str(port)
    return env


class Pod:
    """The container's command as a process; as the postgres user when the tests run as root."""

    def __init__(self, bin_dir: pathlib.Path, root: pathlib.Path, password: str) -> None:
        self.port = free_port()
        self.password = password
        self.data = root / "volume"
        self.sockets = root / "tmp"
        for path in (self.data, self.sockets):
            path.mkdir()
        self.log = root / "postgres.log"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam(postgres_server.UNPRIVILEGED_USER)
            for path in (root, self.data, self.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self.prefix = ["runuser", "-u", postgres_server.UNPRIVILEGED_USER, "--"]
        self.env = {
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            **_pod_env("paris", self.data, self.sockets, self.port, password),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        analytics = analytics_api.resolve(None, config.Environment.PRODUCTION)
        container = postgres.render_statefulset("paris", "weather", analytics)["spec"]["template"]["spec"][
            "containers"
        ][0]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, *container["command"]],
                env=self.env,
                cwd=self.sockets,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the start script exited {self.proc.returncode}:\n{self.log.read_text()}"
                )
            try:
                with psycopg.connect(self.conninfo(self.password), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise AssertionError(f"PostgreSQL did not answer within {timeout}s:\n{self.log.read_text()}")

    def conninfo(self, password: str) -> str:
        return (
            f"host=127.0.0.1 port={self.port} user={names.POSTGRES_USER} dbname={names.POSTGRES_DATABASE} "
            f"password={password}"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # what the kubelet sends
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def pod() -> Iterator[Pod]:
    bin_dir = postgres_server.require_bin_dir()
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    root = pathlib.Path(tempfile.mkdtemp(prefix="wpf-postgres-pod-"))
    the_pod = Pod(bin_dir, root, fleets.new_password())
    try:
        yield the_pod
    finally:
        the_pod.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _migrate(pod: Pod) -> list[int]:
    from weather_proxy.history import migrations

    conn = await psycopg.AsyncConnection.connect(pod.conninfo(pod.password), autocommit=True)
    async with conn:
        return await migrations.apply(conn)


async def test_first_start_initialises_restart_keeps_data_wrong_password_refused(pod: Pod) -> None:
    pod.start()
    assert INITDB_SAYS in pod.log.read_text(errors="replace"), "initdb ran on the empty volume"
    applied = await _migrate(pod)
    assert applied, "the proxy's migrations apply on the fresh database"
    with psycopg.connect(pod.conninfo(pod.password)) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert owner == (names.POSTGRES_USER,)
        encrypted = conn.execute("SHOW password_encryption").fetchone()
        assert encrypted == ("scram-sha-256",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pod.conninfo("not-the-password"), connect_timeout=5).close()

    pod.stop()
    assert (pod.data / "pgdata" / "PG_VERSION").is_file()
    size_before = pod.log.stat().st_size
    pod.start()
    assert INITDB_SAYS not in pod.log.read_text(errors="replace")[size_before:], "initdb ran again"
    assert await _migrate(pod) == [], "the schema survived the restart"
    assert not list(pod.sockets.glob(".initdb-password")), "the password file is removed after initdb"
