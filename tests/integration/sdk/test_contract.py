"""Each SDK against the proxy's OpenAPI document: routes, query and header parameters, models.

See ``contract.py`` for what is compared and how each SDK's surface is derived: a driver of its
language calls every public method of its client against a fake transport serving documents
made from the response schemas; its requests and (Python, Go) decoded answers are checked
against the document, and TypeScript's model types by tsc against generated assertions. A
method the driver does not call fails too (the client's methods are listed by reflection), so
a new method cannot escape the check. No proxy is started.
"""

from __future__ import annotations

import datetime
import inspect
import json
import os
import pathlib
import re
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.sdk import contract
from tests.integration.sdk import stack as sdk
from weather_proxy_client import AsyncWeatherClient, DateRange, WeatherClient

pytestmark = pytest.mark.integration
DRIVERS = pathlib.Path(__file__).parent / "contract_drivers"
TYPESCRIPT = sdk.REPO / "sdk" / "typescript"
GO_SDK = sdk.REPO / "sdk" / "go"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return contract.openapi_document()


@pytest.fixture(scope="module")
def ops(document: dict[str, Any]) -> dict[str, contract.Operation]:
    return contract.operations(document)


@pytest.fixture(scope="module")
def samples_file(
    document: dict[str, Any], ops: dict[str, contract.Operation], tmp_path_factory: pytest.TempPathFactory
) -> pathlib.Path:
    path = tmp_path_factory.mktemp("contract") / "documents.json"
    path.write_text(json.dumps(contract.samples(document, ops)))
    return path


def test_the_api_is_what_the_sdks_are_checked_against(ops: dict[str, contract.Operation]) -> None:
    """The document parsed as the checks read it: a change of shape here is a change to the contract."""
    assert sorted(ops) == [
        "GET /v1/analytics/cache",
        "GET /v1/analytics/countries",
        "GET /v1/analytics/peak-hours",
        "GET /v1/analytics/top-cities",
        "GET /v1/analytics/upstream",
        "GET /v1/usage",
        "GET /v1/weather",
    ]
    assert sorted(ops["GET /v1/weather"].query) == ["city", "country", "lat", "lon"]
    assert sorted(ops["GET /v1/usage"].query) == ["from", "granularity", "to"]
    assert sorted(ops["GET /v1/analytics/top-cities"].query) == ["from", "limit", "to"]
    assert sorted(ops["GET /v1/analytics/cache"].query) == ["from", "granularity", "to"]
    assert ops["GET /v1/weather"].headers == {"x-api-key", "if-none-match"}


# --- Python --------------------------------------------------------------------------------------

WEEK = DateRange(datetime.date(2026, 11, 23), datetime.date(2026, 11, 29))
# Every public method of the client, with every argument it has: (method, args, kwargs).
PYTHON_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("weather", ("Paris",), {"country": "FR"}),
    ("weather", (), {"lat": 48.85, "lon": 2.35}),
    ("usage", (), {}),
    ("usage_history", (WEEK,), {"granularity": "hour"}),
    ("top_cities", (WEEK,), {"limit": 5}),
    ("countries", (WEEK,), {}),
    ("peak_hours", (WEEK,), {}),
    ("cache_efficiency", (WEEK,), {"granularity": "hour"}),
    ("upstream_calls", (WEEK,), {"granularity": "day"}),
]
LIFECYCLE = {"close", "aclose"}


def api_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in LIFECYCLE
    }


class FakeProxy:
    """An httpx transport answering each path with its documents in turn, with an ETag."""

    def __init__(self, documents: dict[str, list[Any]]) -> None:
        self.documents = documents
        self.served: dict[str, int] = {}
        self.requests: list[httpx.Request] = []
        self.answers: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        docs = self.documents.get(request.url.path)
        if docs is None:
            return httpx.Response(404, json={"type": "about:blank", "title": "Not found", "status": 404})
        n = self.served.get(request.url.path, 0)
        self.served[request.url.path] = n + 1
        self.answers.append(docs[n % len(docs)])
        return httpx.Response(200, json=self.answers[-1], headers={"ETag": contract.ETAG})


def drive_python(documents: dict[str, list[Any]]) -> Iterator[tuple[str, httpx.Request, Any, Any]]:
    """(method, request, document served, model returned) of each call, each call made twice."""
    fake = FakeProxy(documents)
    with (
        httpx.Client(transport=httpx.MockTransport(fake)) as http,
        WeatherClient("http://proxy.test", "wpk_contract", http_client=http) as client,
    ):
        for name, args, kwargs in PYTHON_CALLS:
            method: Callable[..., Any] = getattr(client, name)
            for _ in range(2):  # the second time with If-None-Match, answered with the nulls document
                model = method(*args, **kwargs)
                yield name, fake.requests[-1], fake.answers[-1], model


def test_the_python_client_calls_every_method_the_driver_knows(ops: dict[str, contract.Operation]) -> None:
    sync, asynchronous = api_methods(WeatherClient), api_methods(AsyncWeatherClient)
    assert sorted(sync) == sorted({name for name, _, _ in PYTHON_CALLS})
    assert asynchronous == sync  # same names, same parameters


def test_the_python_client_matches_the_document(
    document: dict[str, Any], ops: dict[str, contract.Operation]
) -> None:
    requests, problems = [], []
    for name, request, sent, model in drive_python(contract.samples(document, ops)):
        requests.append(
            contract.Request(
                call=name,
                method=request.method,
                path=request.url.path,
                query={key: request.url.params.get_list(key) for key in request.url.params},
                headers=frozenset(key.lower() for key in request.headers),
            )
        )
        op = ops.get(f"{request.method} {request.url.path}")
        if op is not None:
            problems += contract.check_python_model(document, op.response, sent, model, name, top=True)
    assert_none(contract.check_requests(ops, requests) + problems)


# --- Go ------------------------------------------------------------------------------------------


def test_the_go_client_matches_the_document(
    document: dict[str, Any], ops: dict[str, contract.Operation], samples_file: pathlib.Path
) -> None:
    go = sdk.require_tool("go")
    done = subprocess.run(
        [go, "run", ".", str(samples_file)],
        cwd=DRIVERS / "go",
        env={**os.environ, "GOTOOLCHAIN": "local"},  # the driver needs nothing but the SDK
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    called = {r["call"] for r in report["requests"]}
    assert sorted(report["methods"]) == sorted(called | {a["call"] for a in report["answers"]})
    requests = [
        contract.Request(r["call"], r["method"], r["path"], r["query"], frozenset(r["headers"]))
        for r in report["requests"]
    ]
    problems = contract.check_requests(ops, requests)
    documents = contract.samples(document, ops)
    served: dict[str, int] = {}
    for answer in report["answers"]:
        if answer.get("error"):
            problems.append(f"{answer['call']}: {answer['error']}")
            continue
        op = ops.get(f"GET {answer['path']}")
        if op is None:
            continue
        n = served.get(op.path, 0)
        served[op.path] = n + 1
        sent = documents[op.path][n % 2]
        problems += contract.check_decoded(document, op.response, sent, answer["decoded"], answer["call"])
    assert_none(problems)


# --- TypeScript ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def typescript_build(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The SDK compiled by its own tsconfig into a directory of the test's (dist/ is left alone)."""
    sdk.require_node_packages(TYPESCRIPT)
    out = tmp_path_factory.mktemp("typescript-sdk")
    tsc = TYPESCRIPT / "node_modules" / ".bin" / "tsc"
    done = subprocess.run(
        [str(tsc), "-p", ".", "--outDir", str(out)],
        cwd=TYPESCRIPT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_typescript_client_sends_what_the_document_describes(
    ops: dict[str, contract.Operation], samples_file: pathlib.Path, typescript_build: pathlib.Path
) -> None:
    report = record_typescript(samples_file, typescript_build)
    assert report["errors"] == []
    assert sorted(report["methods"]) == sorted({r["call"] for r in report["requests"]})
    requests = [
        contract.Request(r["call"], r["method"], r["path"], r["query"], frozenset(r["headers"]))
        for r in report["requests"]
    ]
    assert_none(contract.check_requests(ops, requests))


def test_the_typescript_models_are_the_documents_schemas(
    document: dict[str, Any],
    ops: dict[str, contract.Operation],
    samples_file: pathlib.Path,
    typescript_build: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    report = record_typescript(samples_file, typescript_build)
    calls = {r["call"]: f"{r['method']} {r['path']}" for r in report["requests"]}
    assert set(calls.values()) <= set(ops)
    source, assertions = contract.typescript_assertions(
        document, ops, calls, str(TYPESCRIPT / "src" / "index.js")
    )
    (tmp_path / "contract.ts").write_text(source)
    config = {
        "compilerOptions": {
            "target": "ES2022",
            "lib": ["ES2022", "DOM"],
            "module": "NodeNext",
            "moduleResolution": "NodeNext",
            "types": [],
            "strict": True,
            "exactOptionalPropertyTypes": True,
            "noEmit": True,
        },
        "files": ["contract.ts"],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    tsc = TYPESCRIPT / "node_modules" / ".bin" / "tsc"
    done = subprocess.run(
        [str(tsc), "-p", str(tmp_path), "--pretty", "false"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    failed = {int(m.group(1)) for m in re.finditer(r"contract\.ts\((\d+),\d+\): error", output)}
    other = [line for line in output.splitlines() if "error" in line and "contract.ts(" not in line]
    assert other == [], output  # the SDK itself must compile under these options
    assert failed <= {a.line for a in assertions}, output
    alternatives = {call: len(contract.alternatives(ops[key].response)) for call, key in calls.items()}
    assert_none(contract.typescript_problems(assertions, failed, alternatives))
    assert len(assertions) > 100  # every model's members, not a handful


def assert_none(findings: list[str]) -> None:
    """Pass on no findings; else fail listing every one (the SDK has drifted from the document)."""
    assert not findings, f"{len(findings)} differences from the OpenAPI document:\n" + "\n".join(findings)


def record_typescript(samples_file: pathlib.Path, build: pathlib.Path) -> dict[str, Any]:
    node = sdk.require_tool("node")
    done = subprocess.run(
        [
            node,
            str(DRIVERS / "typescript" / "record.mjs"),
            str(build / "src" / "index.js"),
            str(samples_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report
