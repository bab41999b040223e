"""A scripted stand-in for the API server's Secret list and watch, on a loopback socket.

Speaks just enough HTTP/1.1 for the proxy's keys watch: ``GET /api/v1/namespaces/<ns>/secrets``
with ``fieldSelector=metadata.name=<name>`` answers a SecretList; with ``watch=1`` it streams
the events the test pushes, one JSON object per line, until the test ends the stream. It
records every request (path, query, Authorization header) and can answer a given status
instead. The real API server is exercised by the integration tests; this one lets unit
tests script what a real one does rarely (410 Gone, a malformed event, a 401).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import urllib.parse
from typing import Any


def secret(name: str, text: str, resource_version: str, namespace: str = "weather") -> dict[str, Any]:
    """A Secret object holding ``keys.yaml``."""
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
        "data": {"keys.yaml": base64.b64encode(text.encode()).decode()},
    }


@dataclasses.dataclass
class Request:
    path: str
    query: dict[str, str]
    authorization: str | None

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") == "1"


class ScriptedApiServer:
    """``async with ScriptedApiServer() as api``: serves at ``api.url``; see ``secrets`` and ``push``."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}
        self.list_version = "100"
        self.requests: list[Request] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []  # next requests answered with these instead
        self._watches: list[tuple[str, asyncio.Queue[dict[str, Any] | None]]] = []  # (Secret name, queue)
        self._server: asyncio.Server | None = None
        self.url = ""
        self.watching = asyncio.Event()

    async def __aenter__(self) -> ScriptedApiServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.end_watches()
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def push(self, event: dict[str, Any]) -> None:
        """Send ``event`` on the open watches of its object's name (every watch when it has none)."""
        name = ((event.get("object") or {}).get("metadata") or {}).get("name")
        for watched, queue in self._watches:
            if name is None or event.get("type") in ("BOOKMARK", "ERROR") or watched == name:
                await queue.put(event)

    def end_watches(self) -> None:
        """End every open watch stream cleanly (as at the server-side timeout)."""
        for _, queue in self._watches:
            queue.put_nowait(None)

    def watching_count(self) -> int:
        return len(self._watches)

    def watches(self) -> list[Request]:
        return [r for r in self.requests if r.is_watch]

    def lists(self) -> list[Request]:
        return [r for r in self.requests if not r.is_watch]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode().split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        parsed = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        request = Request(parsed.path, query, headers.get("authorization"))
        self.requests.append(request)
        try:
            if self.answers:
                status, body = self.answers.pop(0)
                await self._reply(writer, status, body)
            elif request.is_watch:
                await self._stream(writer, query.get("fieldSelector", "").removeprefix("metadata.name="))
            else:
                name = query.get("fieldSelector", "").removeprefix("metadata.name=")
                items = [self.secrets[name]] if name in self.secrets else []
                listing = {
                    "kind": "SecretList",
                    "metadata": {"resourceVersion": self.list_version},
                    "items": items,
                }
                await self._reply(writer, 200, listing)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, name: str) -> None:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._watches.append((name, queue))
        self.watching.set()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        await writer.drain()
        try:
            while (event := await queue.get()) is not None:
                line = json.dumps(event).encode() + b"\n"
                writer.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            self._watches.remove((name, queue))
            if not self._watches:
                self.watching.clear()
