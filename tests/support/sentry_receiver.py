"""A Sentry-protocol receiver for tests: what an SDK sends, decoded, kept for assertions.

An HTTP server on 127.0.0.1 (a thread of the test process) that accepts what Sentry's ingestion
endpoints accept from an SDK: ``POST /api/<project>/envelope/`` (newline-delimited JSON: the
envelope's header, then each item's header and payload, a payload's ``length`` given or up to
the next newline) and the older ``POST /api/<project>/store/`` (one event as JSON). Bodies may
be gzip- or deflate-encoded (the Python SDK gzips; it would use brotli only with the ``brotli``
module installed, which the project does not install: such a body gets a 415). The project and
the public key of the
DSN are checked (``X-Sentry-Auth``, or ``sentry_key`` in the query), as Sentry does: a request
for another project or key is refused with 401 and kept nowhere.

``receiver.dsn`` is the DSN to give an SDK; ``receiver.events`` the events received (each
item of type ``event``, and every ``store`` body); ``receiver.bodies`` each request's decoded
body, whole, for assertions on everything that left the process (``client_report`` and
``session`` items included); ``receiver.wait_for_events(n)`` waits until ``n`` arrived.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import threading
import urllib.parse
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

PUBLIC_KEY = "0123456789abcdef0123456789abcdef"
PROJECT = "42"


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """An envelope's header and its items (item header, payload bytes)."""
    header_line, _, rest = body.partition(b"\n")
    header = json.loads(header_line) if header_line.strip() else {}
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        if not item_line.strip():
            continue
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:]
            rest = rest.removeprefix(b"\n")
        items.append((item_header, payload))
    return header, items


def decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}")


class UnsupportedEncoding(ValueError):
    pass


class SentryReceiver:
    """The server and what it received; ``start()``/``stop()`` or ``with``."""

    def __init__(self, public_key: str = PUBLIC_KEY, project: str = PROJECT) -> None:
        self.public_key = public_key
        self.project = project
        self.events: list[dict[str, Any]] = []
        self.envelopes: list[tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]] = []
        self.bodies: list[bytes] = []
        self.refused: list[str] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._receive(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sentry-receiver", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def dsn(self) -> str:
        return f"http://{self.public_key}@127.0.0.1:{self.port}/{self.project}"

    def start(self) -> SentryReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SentryReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The events once ``count`` arrived; AssertionError after ``timeout`` seconds."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.events) >= count, timeout=timeout)
            assert arrived, f"{len(self.events)} event(s) received, {count} expected"
            return list(self.events)

    def _authorised(self, handler: http.server.BaseHTTPRequestHandler, query: dict[str, list[str]]) -> bool:
        auth = handler.headers.get("X-Sentry-Auth", "")
        fields = dict(
            part.strip().split("=", 1) for part in auth.removeprefix("Sentry ").split(",") if "=" in part
        )
        key = fields.get("sentry_key") or (query.get("sentry_key") or [""])[0]
        return key == self.public_key

    def _receive(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if len(parts) != 3 or parts[0] != "api" or parts[2] not in ("envelope", "store"):
            self._answer(handler, 404, {"detail": "not an ingestion endpoint"})
            return
        if parts[1] != self.project or not self._authorised(handler, query):
            self.refused.append(handler.path)
            self._answer(handler, 401, {"detail": "unknown project or key"})
            return
        try:
            body = decode(raw, handler.headers.get("Content-Encoding", ""))
        except UnsupportedEncoding as exc:
            self._answer(handler, 415, {"detail": str(exc)})
            return
        except (OSError, EOFError, zlib.error) as exc:
            self._answer(handler, 400, {"detail": f"body not decodable: {exc}"})
            return
        try:
            events: list[dict[str, Any]] = []
            if parts[2] == "store":
                events.append(json.loads(body))
                envelope = None
            else:
                envelope = parse_envelope(body)
                events += [
                    json.loads(payload) for header, payload in envelope[1] if header.get("type") == "event"
                ]
        except ValueError as exc:  # JSON, or an item shorter than its length says
            self._answer(handler, 400, {"detail": str(exc)})
            return
        with self._changed:
            self.bodies.append(body)
            if envelope is not None:
                self.envelopes.append(envelope)
            self.events += events
            self._changed.notify_all()
        self._answer(handler, 200, {"id": events[0].get("event_id") if events else None})

    @staticmethod
    def _answer(handler: http.server.BaseHTTPRequestHandler, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@contextlib.contextmanager
def running() -> Iterator[SentryReceiver]:
    with SentryReceiver() as receiver:
        yield receiver


@pytest.fixture
def sentry_receiver() -> Iterator[SentryReceiver]:
    """A receiver on a free loopback port for the test's duration."""
    with running() as receiver:
        yield receiver
