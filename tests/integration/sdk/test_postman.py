"""The Postman collection (postman/): up to date with the OpenAPI document, and green in newman.

The collection is committed (so it can be imported without building anything) and a test
regenerates it from ``create_app(config).openapi()`` and compares, as for the CRDs: a change
to the API that is not carried into the collection fails here, with `make postman` as the fix.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from tests.integration.sdk import stack as sdk

pytestmark = pytest.mark.integration
POSTMAN = sdk.REPO / "postman"
COLLECTION = POSTMAN / "weather-proxy.postman_collection.json"
ENVIRONMENT = POSTMAN / "dev.postman_environment.json"


def test_the_committed_collection_is_generated_from_the_openapi_document() -> None:
    sdk.require_node_packages(POSTMAN)
    done = subprocess.run(
        [sys.executable, str(POSTMAN / "build.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_environment_names_the_collection_variables() -> None:
    values = {v["key"]: v["value"] for v in json.loads(ENVIRONMENT.read_text())["values"]}
    assert values == {"baseUrl": "http://127.0.0.1:8080", "apiKey": ""}
    variables = {v["key"] for v in json.loads(COLLECTION.read_text())["variable"]}
    assert set(values) <= variables


@pytest.mark.slow
def test_newman_runs_the_collection_green_against_a_real_proxy(
    weather_stack: sdk.SdkStack, tmp_path: pathlib.Path
) -> None:
    sdk.require_node_packages(POSTMAN)
    report = tmp_path / "newman.json"
    command = [
        str(POSTMAN / "node_modules" / ".bin" / "newman"),
        "run",
        str(COLLECTION),
        "--environment",
        str(ENVIRONMENT),
        "--env-var",
        f"baseUrl={weather_stack.url}",
        "--env-var",
        f"apiKey={weather_stack.key('main')}",
        "--reporters",
        "cli,json",
        "--reporter-json-export",
        str(report),
        "--color",
        "off",
        "--disable-unicode",
    ]
    sdk.run_suite(command, POSTMAN, {}, timeout=120)
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= 12
    assert stats["requests"]["failed"] == 0
    assert stats["requests"]["total"] == _request_count(json.loads(COLLECTION.read_text()))


def _request_count(node: dict[str, object]) -> int:
    """Requests in a collection (folders nest ``item`` lists)."""
    items = node.get("item")
    if not isinstance(items, list):
        return 1 if "request" in node else 0
    return sum(_request_count(item) for item in items)
