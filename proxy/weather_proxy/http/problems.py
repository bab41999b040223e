"""RFC 9457 problem details: the one shape of every error response."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from weather_proxy.observability import logging as logs

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
MEDIA_TYPE_BYTES = MEDIA_TYPE.encode()
TYPE_BASE = "https://weatherproxy.dev/problems/"

# A whole answer on raw ASGI data: (status, headers, body), what pure ASGI code sends.
RawResponse = tuple[int, list[tuple[bytes, bytes]], bytes]

TITLES = {
    400: "Bad request",
    401: "Missing API key",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Upstream unavailable",
    504: "Request deadline exceeded",
}
SLUGS = {
    400: "bad-request",
    401: "missing-api-key",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    429: "rate-limited",
    500: "internal-error",
    502: "bad-gateway",
    503: "upstream-unavailable",
    504: "deadline-exceeded",
}


class ProblemError(Exception):
    """Raise from anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        slug: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.slug = slug or SLUGS.get(status, "error")
        self.headers = dict(headers or {})


def body(status: int, detail: str, *, title: str | None = None, slug: str | None = None) -> bytes:
    doc: dict[str, Any] = {
        "type": TYPE_BASE + (slug or SLUGS.get(status, "error")),
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": logs.request_id_var.get() or "",
    }
    return orjson.dumps(doc)


def response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        body(status, detail, title=title, slug=slug),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def raw(exc: ProblemError) -> RawResponse:
    """A problem as raw ASGI parts (status, headers, body), for pure ASGI code."""
    headers = [(b"content-type", MEDIA_TYPE_BYTES)]
    headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in exc.headers.items()
    )
    return exc.status, headers, body(exc.status, exc.detail, title=exc.title, slug=exc.slug)


def deadline_exceeded(seconds: float) -> ProblemError:
    """504: the request's deadline (``http.requestTimeoutSeconds``) passed before an answer."""
    return ProblemError(504, f"No answer within {seconds:g} seconds.")


def from_error(exc: ProblemError) -> Response:
    return response(exc.status, exc.detail, title=exc.title, slug=exc.slug, headers=exc.headers)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "body", "header", "path")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return from_error(exc)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return response(400, _validation_detail(exc))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(status, "Error")
    if status == 404 and detail == "Not Found":
        detail = f"No route for {request.url.path}"
    if status == 405:
        detail = f"Method {request.method} is not allowed on {request.url.path}"
    return response(status, detail, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Route every error the framework produces through problem documents."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
