"""uvicorn's httptools protocol with a bounded request head, a deadline to receive it, and problem answers.

uvicorn bounds neither the size of a request head under httptools (a header is buffered whole
until its line ends: ten unfinished 32 MiB headers held 383 MiB) nor the time a client may take
to send it (slowloris connections stayed open for good). This protocol, uvicorn's ``http``
setting (see ``server.UVICORN_SETTINGS``), adds what granian's server does with its
``http1_settings`` (``server.granian``), with the same numbers (``http.maxHeaderBytes``,
``http.headerTimeoutSeconds``):

* a request head (request line and header lines, as sent) over ``max_header_bytes``, or with
  more than ``MAX_HEADERS`` header lines, is answered 431 and the connection closed. A long
  request line or URL counts in the same total, so it gets 431 too (never 414), as under granian;
* a connection that has not sent a whole head ``header_timeout_seconds`` after it opened, or
  after the first byte of its next request, is closed without an answer;
* requests the parser rejects get 400 as an RFC 9457 problem document instead of uvicorn's
  ``text/plain`` "Invalid HTTP request received."

The hit path pays a few integer operations and one ``loop.time()`` per request: the deadline is
one timer per connection that re-arms itself, since a timer per request (``call_later`` and
``cancel``) costs about 6 us on uvloop.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from weather_proxy import config as config_mod
from weather_proxy.http import problems

# hyper's bound (granian's HTTP/1 server), which granian does not let us change.
MAX_HEADERS = 100
# The request line's bytes besides its URL (method, spaces, version, CRLF) and the blank line's.
_HEAD_OVERHEAD = len(b"OPTIONS  HTTP/1.1\r\n\r\n")
_HEADER_LINE_OVERHEAD = len(b": \r\n")

# ``_head_bytes`` besides a count: no head is being read (its request is being answered or its
# body read); the next head has not begun; the head was refused.
_NO_HEAD = -1
_HEAD_NOT_BEGUN = -2
_HEAD_REFUSED = -3

# After a refusal, what the client still sends is read and dropped this long (the answer has gone
# out, then our FIN): closing with unread bytes would send a reset, which can destroy the answer
# before the client reads it.
LINGER_SECONDS = 2.0

_DEFAULTS = config_mod.Http()
TOO_LARGE_TITLE = "Request header fields too large"
TOO_LARGE_SLUG = "header-fields-too-large"


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head found too large."""


def configure(http: config_mod.Http) -> None:
    """Set this process's limits (read at start, before the server accepts connections)."""
    BoundedHttpToolsProtocol.max_header_bytes = http.max_header_bytes
    BoundedHttpToolsProtocol.header_timeout_seconds = http.header_timeout_seconds


def refusal(
    status: int, detail: str, *, title: str | None = None, slug: str | None = None, headers: bytes = b""
) -> bytes:
    """A whole HTTP/1.1 response carrying a problem document, which closes the connection.

    ``headers``: more header lines, each ending with CRLF (the server's date).
    """
    body = problems.body(status, detail, title=title, slug=slug)
    return b"".join(
        [
            STATUS_LINE[status],
            headers,
            b"content-type: ",
            problems.MEDIA_TYPE_BYTES,
            b"\r\ncontent-length: ",
            str(len(body)).encode("ascii"),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a bounded, timed request head; refusals as problem documents."""

    max_header_bytes: ClassVar[int] = _DEFAULTS.max_header_bytes
    header_timeout_seconds: ClassVar[float] = _DEFAULTS.header_timeout_seconds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bytes received since the current head began (an upper bound of its size), or a state.
        # Only whole chunks are counted: when a head begins inside a chunk, after the previous
        # request's end, its size is found exactly at the end of the head instead.
        self._head_bytes = _HEAD_NOT_BEGUN
        self._head_uncounted = False
        # When the head being waited for began; None while none is (a request being answered,
        # or an idle keep-alive connection, which uvicorn's keep-alive timeout closes).
        self._head_since: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        # A refusal waiting for the answers to the requests pipelined before the refused one.
        self._refusal: bytes | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is held to the same deadline as a slow head.
        self._head_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.header_timeout_seconds, self._check_head_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        counted = self._head_bytes
        if counted >= 0:
            self._head_bytes = counted + len(data)
        elif counted == _HEAD_NOT_BEGUN:
            self._head_bytes = len(data)
        elif counted == _HEAD_REFUSED:
            return  # what follows a refused head is dropped unparsed while the connection closes
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if self._head_bytes == _HEAD_REFUSED:
                self._refuse_too_large()
            else:
                # llhttp's reasons are fixed phrases; a failed callback's (uvicorn's URL parsing)
                # could quote the client's bytes, so it gets a phrase of ours.
                callback = isinstance(exc, httptools.HttpParserCallbackError)
                reason = "its request line or a header could not be parsed" if callback else str(exc)
                self.logger.warning("Invalid HTTP request received: %s", reason)
                self._refuse(400, f"The request is not valid HTTP/1.1: {reason}.")
            return
        if self._head_bytes > self.max_header_bytes:
            # Still unfinished, and already over: refused before the parser buffers more of it.
            self._refuse_too_large()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg)

    def on_message_begin(self) -> None:
        if self._head_bytes == _HEAD_NOT_BEGUN:
            # It began inside a chunk that also ended the previous request: not counted.
            self._head_bytes = 0
            self._head_uncounted = True
        if self._head_since is None:
            self._head_since = self.loop.time()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if (
            self._head_bytes > self.max_header_bytes or self._head_uncounted
        ) and self._head_size() > self.max_header_bytes:
            self._head_bytes = _HEAD_REFUSED
            raise _HeadTooLarge
        if len(self.headers) > MAX_HEADERS:
            self._head_bytes = _HEAD_REFUSED
            raise _HeadTooLarge
        self._head_bytes = _NO_HEAD
        self._head_uncounted = False
        self._head_since = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_bytes = _HEAD_NOT_BEGUN
        super().on_message_complete()

    def on_response_complete(self) -> None:
        refusal = self._refusal
        if refusal is None or self.pipeline:
            super().on_response_complete()
            return
        self.server_state.total_requests += 1
        self._refusal = None
        if not self.transport.is_closing():
            self.flow.resume_reading()
            self._send_and_close(refusal)

    def _head_size(self) -> int:
        """The head's size as sent, give or take the blanks around header values."""
        size = _HEAD_OVERHEAD + len(self.url)
        for name, value in self.headers:
            size += len(name) + len(value) + _HEADER_LINE_OVERHEAD
        return size

    def _check_head_deadline(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # closed, or handed over to a websocket protocol
        wait = self.header_timeout_seconds
        if self._head_since is not None:
            wait += self._head_since - self.loop.time()
            if wait <= 0:
                self.logger.debug(
                    "Closing a connection that sent no whole request head in %ss", self.header_timeout_seconds
                )
                self.transport.close()
                return
        self._head_timer = self.loop.call_later(wait, self._check_head_deadline)

    def _refuse_too_large(self) -> None:
        self.logger.warning(
            "Request head over %d bytes or %d lines refused", self.max_header_bytes, MAX_HEADERS
        )
        self._refuse(
            431,
            f"The request line and header fields must fit in {self.max_header_bytes} bytes "
            f"and {MAX_HEADERS} header lines.",
            title=TOO_LARGE_TITLE,
            slug=TOO_LARGE_SLUG,
        )

    def _refuse(self, status: int, detail: str, *, title: str | None = None, slug: str | None = None) -> None:
        self._head_bytes = _HEAD_REFUSED
        self._head_since = None
        headers = b"".join(b"%s: %s\r\n" % pair for pair in self.server_state.default_headers)
        response = refusal(status, detail, title=title, slug=slug, headers=headers)
        if self.cycle is not None and not self.cycle.response_complete:
            # Requests pipelined before this one are answered first, in order (on_response_complete).
            self._refusal = response
            self.flow.pause_reading()
            return
        self._send_and_close(response)

    def _send_and_close(self, response: bytes) -> None:
        transport = self.transport
        transport.write(response)
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()
