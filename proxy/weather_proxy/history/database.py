"""The analytics database: how to connect, whether it answers, and a few reusable connections.

Connections are psycopg 3 ``AsyncConnection`` objects in autocommit mode, in the UTC time zone,
with a server-side ``statement_timeout``; every wait on the database (connecting included) is also
bounded on our side, because a database that is stopped (not refusing, just silent) enforces
nothing. A connection that failed, timed out or was left inside a transaction is closed, never
reused. The password comes from the environment and never appears in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator

import psycopg
import psycopg.conninfo
from psycopg import pq

from weather_proxy import config as config_mod
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

ERRORS: tuple[type[BaseException], ...] = (psycopg.Error, OSError, TimeoutError)
MAX_IDLE = 4
APPLICATION_NAME = "weather-proxy"


class DatabaseUnavailable(Exception):
    """The analytics database could not be reached or did not answer in time."""


def conninfo(cfg: config_mod.AnalyticsDatabase, password: str | None) -> str:
    """libpq connection string: the URL, the password, timeouts, UTC, and TLS with ``cfg.tls``."""
    statement_ms = int(cfg.statement_timeout_seconds * 1000)
    extra: dict[str, str | int] = {
        # libpq reads connect_timeout in whole seconds, at least 2.
        "connect_timeout": max(2, math.ceil(cfg.connect_timeout_seconds)),
        "options": f"-c TimeZone=UTC -c statement_timeout={statement_ms}",
        "application_name": APPLICATION_NAME,
    }
    if cfg.tls is not None:
        # The server's certificate must chain to the CA and name the URL's host (no plaintext fallback).
        extra["sslmode"] = "verify-full"
        extra["sslrootcert"] = cfg.tls.ca_file
    if password:
        extra["password"] = password
    return psycopg.conninfo.make_conninfo(cfg.url, **extra)


def describe(exc: BaseException) -> str:
    """One line about a failure, without connection parameters (psycopg's text carries none)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Database:
    """Connects to the analytics database; remembers whether it answered last time."""

    def __init__(
        self,
        cfg: config_mod.AnalyticsDatabase,
        password: str | None,
        metrics: metrics_mod.Metrics,
        max_connections: int = MAX_IDLE,
    ) -> None:
        self.cfg = cfg
        self._conninfo = conninfo(cfg, password)
        self.metrics = metrics
        self.up = False
        self.last_error: str | None = "not connected yet"
        self._idle: list[psycopg.AsyncConnection[tuple[object, ...]]] = []
        self._slots = asyncio.Semaphore(max_connections)
        metrics.analytics_database_up.set(0)

    @property
    def wait_seconds(self) -> float:
        """Our own bound on one statement: the server's, plus a margin for the round trip."""
        return self.cfg.statement_timeout_seconds + 2.0

    def ok(self) -> None:
        if not self.up:
            log.info("analytics database is up")
        self.up = True
        self.last_error = None
        self.metrics.analytics_database_up.set(1)

    def failed(self, exc: BaseException) -> None:
        self.last_error = describe(exc)
        if self.up:
            log.warning("analytics database is down: %s", self.last_error)
        self.up = False
        self.metrics.analytics_database_up.set(0)

    async def connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        """A new connection (raises one of ``ERRORS``)."""
        async with asyncio.timeout(self.cfg.connect_timeout_seconds + 1.0):
            return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
        """A connection for a short piece of work; raises DatabaseUnavailable when there is none.

        Errors of the database (and timeouts) inside the block become DatabaseUnavailable too;
        the connection is then closed.
        """
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            try:
                if conn is None or conn.closed:
                    conn = await self.connect()
                yield conn
            except ERRORS as exc:
                self.failed(exc)
                if conn is not None:
                    await close_quietly(conn)
                raise DatabaseUnavailable(self.last_error or "unavailable") from exc
            except BaseException:
                if conn is not None:
                    await close_quietly(conn)
                raise
            else:
                self.ok()
                if conn.info.transaction_status == pq.TransactionStatus.IDLE and len(self._idle) < MAX_IDLE:
                    self._idle.append(conn)
                else:
                    await close_quietly(conn)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await close_quietly(conn)


async def close_quietly(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    """Close without waiting on the server (a stopped one would not answer a goodbye)."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()
    with contextlib.suppress(Exception):
        await conn.close()
