"""TLS clients for the tests and the benches: which leaf a handshake gets, and steady load across a renewal.

:func:`served_serial` opens one TLS connection and returns the serial number of the leaf the
server presented. :class:`SteadyLoad` runs, in threads until it is left, clients that keep one
connection alive (httpx) and clients that open a new TLS connection for every request: it counts
the requests that failed and records the leaf each new handshake got, in order, so a test or a
bench can swap a server's certificate under it and see who noticed.
"""

from __future__ import annotations

import socket
import ssl
import threading

import httpx
from cryptography import x509

SERVER_NAME = "localhost"


def served_serial(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> int:
    """The serial number of the leaf a new TLS handshake with ``host:port`` gets."""
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=SERVER_NAME) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the server presented no certificate")
    return x509.load_der_x509_certificate(der).serial_number


class SteadyLoad:
    """``clients`` keep-alive clients and ``clients`` new-connection clients on ``https://127.0.0.1:port``."""

    def __init__(self, port: int, context: ssl.SSLContext, path: str, clients: int = 3) -> None:
        self.port = port
        self.context = context
        self.path = path
        self.ok = 0
        self.failures: list[str] = []
        self.handshakes: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._keep_alive) for _ in range(clients)]
        self._threads += [threading.Thread(target=self._new_connections) for _ in range(clients)]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _record(self, failure: str | None = None, serial: int | None = None) -> None:
        with self._lock:
            if failure is not None:
                self.failures.append(failure)
                return
            self.ok += 1
            if serial is not None:
                self.handshakes.append(serial)

    def _keep_alive(self) -> None:
        url = f"https://127.0.0.1:{self.port}"
        with httpx.Client(base_url=url, verify=self.context, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    client.get(self.path).raise_for_status()
                except httpx.HTTPError as exc:
                    self._record(failure=f"keep-alive: {exc!r}")
                else:
                    self._record()

    def _new_connections(self) -> None:
        request = f"GET {self.path} HTTP/1.1\r\nHost: {SERVER_NAME}\r\nConnection: close\r\n\r\n".encode()
        while not self._stop.is_set():
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw,
                    self.context.wrap_socket(raw, server_hostname=SERVER_NAME) as conn,
                ):
                    der = conn.getpeercert(binary_form=True)
                    conn.sendall(request)
                    answer = b""
                    while chunk := conn.recv(65536):
                        answer += chunk
                if der is None or not answer.startswith(b"HTTP/1.1 200"):
                    raise OSError(f"answer {answer[:40]!r}")
            except OSError as exc:
                self._record(failure=f"new connection: {exc!r}")
            else:
                self._record(serial=x509.load_der_x509_certificate(der).serial_number)

    def count(self, serial: int) -> int:
        with self._lock:
            return self.handshakes.count(serial)

    def last(self, n: int) -> list[int]:
        with self._lock:
            return self.handshakes[-n:]
