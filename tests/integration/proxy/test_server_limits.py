"""The HTTP server layer under uvicorn and granian alike: bounded, timed request heads; forwarded headers.

Request heads (request line and header lines) over ``http.maxHeaderBytes`` get 431 and a closed
connection; a client that stops, or dribbles, before its head is whole is dropped after
``http.headerTimeoutSeconds``; X-Forwarded-For picks the client's address (and so its anonymous
rate limit) only on connections from ``http.trustedProxies``.
"""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import orjson
import pytest

from testbed import proxy_process
from testbed import redis_server as redis_support
from tests.integration.proxy import scenario
from weather_proxy import config as proxy_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVERS = [proxy_config.Server.UVICORN, proxy_config.Server.GRANIAN]
# Long enough for a server to have closed a connection it meant to close; never reached when it does.
DEADLINE = 20.0
# http.maxHeaderBytes's documented default.
LIMIT = 16 * 1024


def _http(**fields: object) -> proxy_config.Http:
    return proxy_config.Http(request_timeout_seconds=30.0, **fields)


def _head(extra: bytes = b"", target: bytes = b"/health/live") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"


def _connect(proxy: proxy_process.ProxyProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=DEADLINE)
    sock.settimeout(DEADLINE)
    return sock


def _read_until_closed(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server sends, and whether it closed the connection (EOF or reset) in time."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return received, False
    except ConnectionResetError:
        pass  # closed with the client's bytes still unread: a reset, after the answer
    return received, True


def _exchange(proxy: proxy_process.ProxyProcess, request: bytes) -> tuple[bytes, bool]:
    with _connect(proxy) as sock:
        # Refused before it was all sent: what was answered is still readable.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return _read_until_closed(sock)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def _headers_and_body(response: bytes) -> tuple[dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode().strip().lower()] = value.decode().strip()
    return headers, body


@pytest.mark.parametrize("server", SERVERS)
def test_a_head_over_the_limit_gets_431_and_the_connection_is_closed(
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    server: proxy_config.Server,
) -> None:
    # The default limit (16 KiB): before it existed, uvicorn answered 200 to a 32 MiB header and
    # granian to anything under its ~400 KiB buffer.
    proxy = proxy_factory(make_config(server=server, workers=1))
    under = _head(b"X-Filler: " + b"a" * (LIMIT - 200) + b"\r\nConnection: close\r\n")
    answer, closed = _exchange(proxy, under)
    assert _status(answer) == 200, answer[:200]

    for request in (
        _head(b"X-Filler: " + b"a" * (LIMIT + 1024) + b"\r\n"),  # one large header
        _head(b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 100) for i in range(200))),  # many lines
        _head(target=b"/health/live?pad=" + b"a" * (LIMIT + 1024)),  # a long URL: 431 too, not 414
        _head(b"X-Filler: " + b"a" * (4 << 20)),  # 4 MiB and never finished: refused, not buffered
    ):
        answer, closed = _exchange(proxy, request)
        assert _status(answer) == 431, answer[:200]
        assert closed
        headers, body = _headers_and_body(answer)
        assert headers["connection"] == "close"
        if server is proxy_config.Server.UVICORN:
            # Granian's answer comes from its Rust server, with an empty body.
            assert headers["content-type"] == "application/problem+json"
            problem = orjson.loads(body)
            assert problem["status"] == 431
            assert problem["type"] == "https://weatherproxy.dev/problems/header-fields-too-large"
            assert str(LIMIT) in problem["detail"]
    assert httpx.get(f"{proxy.url}/health/live", timeout=10).status_code == 200


def test_a_head_is_measured_whole_however_it_arrives_under_uvicorn(
    make_config: scenario.ConfigBuilder, proxy_factory: proxy_process.ProxyFactory
) -> None:
    # In pieces, and pipelined behind a request in the same packet (granian: hyper's own parser).
    proxy = proxy_factory(make_config(workers=1, http=_http(max_header_bytes=8192)))
    with _connect(proxy) as sock:
        big = _head(b"X-Filler: " + b"a" * 9000 + b"\r\n")
        for start in range(0, len(big), 1000):
            sock.sendall(big[start : start + 1000])
            time.sleep(0.01)
        answer, closed = _read_until_closed(sock)
    assert _status(answer) == 431
    assert closed

    small = _head(b"X-Filler: " + b"a" * 4000 + b"\r\n")
    last = _head(b"X-Filler: " + b"a" * 4000 + b"\r\nConnection: close\r\n")
    answer, closed = _exchange(proxy, small + small + last)
    assert answer.count(b"HTTP/1.1 200 OK") == 3, answer[:300]
    assert closed
    answer, closed = _exchange(proxy, small + big)
    assert answer.count(b"HTTP/1.1 200 OK") == 1
    assert b"HTTP/1.1 431 " in answer
    assert closed


@pytest.mark.parametrize("how", ["stops", "dribbles", "sends nothing"])
@pytest.mark.parametrize("server", SERVERS)
def test_a_client_that_does_not_finish_its_head_is_dropped_after_the_header_timeout(
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    server: proxy_config.Server,
    how: str,
) -> None:
    if how == "sends nothing" and server is proxy_config.Server.GRANIAN:
        pytest.skip("granian times a head from its first byte: a connection that sends nothing stays open")
    proxy = proxy_factory(make_config(server=server, workers=1, http=_http(header_timeout_seconds=1)))
    partial = _head(b"X-Slow: 1\r\n")[:-2]  # the blank line that ends the head never comes
    with _connect(proxy) as sock:
        started = time.monotonic()
        if how == "stops":
            sock.sendall(partial)
            received, closed = _read_until_closed(sock)
        elif how == "sends nothing":
            received, closed = _read_until_closed(sock)
        else:
            received, closed = b"", False
            sock.settimeout(0.2)
            for byte in partial * 100:
                try:
                    sock.send(bytes([byte]))
                    if sock.recv(65536) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                if time.monotonic() - started > DEADLINE:
                    break
        elapsed = time.monotonic() - started
    assert closed, f"still open after {elapsed:.1f}s"
    assert received == b""  # dropped without an answer, by both servers
    # A client that keeps its head within the timeout is served as usual.
    assert httpx.get(f"{proxy.url}/health/live", timeout=10).status_code == 200


@pytest.mark.parametrize("server", SERVERS)
def test_configured_bounds_hold_in_every_worker_process(
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    server: proxy_config.Server,
) -> None:
    # Spawned workers read the config themselves (server.worker_app): the bounds must reach them.
    http = _http(max_header_bytes=8192, header_timeout_seconds=1)
    proxy = proxy_factory(make_config(server=server, workers=2, http=http))
    for _ in range(6):  # a connection of its own each: both workers are reached
        answer, closed = _exchange(proxy, _head(b"X-Filler: " + b"a" * 9000 + b"\r\n"))
        assert _status(answer) == 431, answer[:200]
        assert closed
        answer, closed = _exchange(proxy, _head(b"X-Filler: " + b"a" * 7000 + b"\r\nConnection: close\r\n"))
        assert _status(answer) == 200, answer[:200]
    for _ in range(2):
        answer, closed = _exchange(proxy, _head(b"X-Slow: 1\r\n")[:-2])
        assert closed
        assert answer == b""


@pytest.mark.parametrize("server", SERVERS)
def test_a_malformed_request_gets_400(
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    server: proxy_config.Server,
) -> None:
    proxy = proxy_factory(make_config(server=server, workers=1))
    for request in (
        _head(b"Bad Header: y\r\n"),  # a space in a header's name
        b"GET /health/live HTTP/9.9\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS spoken to the plain port
    ):
        answer, closed = _exchange(proxy, request)
        assert closed
        if server is proxy_config.Server.UVICORN:
            assert _status(answer) == 400, answer[:200]
            headers, body = _headers_and_body(answer)
            assert headers["content-type"] == "application/problem+json"
            problem = orjson.loads(body)
            assert problem["type"] == "https://weatherproxy.dev/problems/bad-request"
            assert problem["status"] == 400
            assert problem["title"] == "Bad request"
            assert problem["detail"]
        else:
            # Granian answers from its Rust server (400, empty body) or just closes: either way a
            # 4xx or no answer, never the app's.
            assert answer == b"" or 400 <= _status(answer) < 500, answer[:200]


@pytest.mark.parametrize("server", SERVERS)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    redis_server: redis_support.RedisServer,
    server: proxy_config.Server,
) -> None:
    # Anonymous callers are limited per client address: rotating X-Forwarded-For from one peer
    # must not buy a fresh bucket per request unless that peer is a trusted proxy.
    anonymous = proxy_config.Limit(requests_per_minute=1, burst=5)

    def admitted(http: proxy_config.Http) -> int:
        redis_server.flushall()  # every bucket full again
        cfg = make_config(
            server=server,
            workers=1,
            auth_required=False,
            rate_limit=proxy_config.RateLimit(anonymous=anonymous),
            http=http,
        )
        proxy = proxy_factory(cfg)
        statuses = []
        with httpx.Client(timeout=10) as client:
            for i in range(10):
                response = client.get(
                    f"{proxy.url}/v1/weather",
                    params={"city": "Paris"},
                    headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
                )
                statuses.append(response.status_code)
        proxy.stop()
        assert set(statuses) <= {200, 429}, statuses
        return statuses.count(200)

    assert admitted(_http()) == 5  # no trusted proxy: the default
    assert admitted(_http(trusted_proxies=["10.0.0.0/8"])) == 5  # the peer is not one of them
    assert admitted(_http(trusted_proxies=["127.0.0.1/32"])) == 10
