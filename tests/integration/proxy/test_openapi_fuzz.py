"""A bounded schemathesis run against the proxy's own OpenAPI schema: no 5xx, responses conform.

Positive data acceptance is on: every request schemathesis generates from the schema is
schema-valid, and the proxy must not answer it 400 or 422 (it may answer 404, 429...; the
check's defaults). The documented response headers (ETag, RateLimit-*, Retry-After...) are
checked on every response that documents them.

The proxy runs for real (uvicorn, in-process) with the emulator as upstream and
memory-only caching; every generated request carries a valid key. Bounded: a fixed
number of examples per operation, no deadline, explicit phases (no shrinking).
"""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from schemathesis import checks

from devcluster import openmeteo as om
from tests.integration.proxy import scenario
from tests.support import proxy_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def running_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[proxy_process.InProcessProxy]:
    keys = proxy_process.KubeVolume(tmp_path_factory.mktemp("fuzz-keys"))
    keys.write({"keys.yaml": proxy_process.to_yaml(scenario.standard_keys())})
    with om.OpenMeteoEmulator(synthetic_cities=True) as emulator:
        config = scenario.build_config(emulator, None)
        config = config.model_copy(
            update={"auth": config.auth.model_copy(update={"keys_file": str(keys.file("keys.yaml"))})}
        )
        proxy = proxy_process.InProcessProxy(config).start()
        try:
            yield proxy
        finally:
            proxy.stop()


def _operations(base_url: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis.pytest.from_fixture breaks on pytest 9 (it reads the removed Item._nodeid), so the
# operations are walked here, one bounded hypothesis run each, instead of @schema.parametrize().
def test_no_server_errors_and_schema_conformance(running_proxy: proxy_process.InProcessProxy) -> None:
    operations = _operations(running_proxy.url)
    assert {op.path for op in operations} >= {"/v1/weather", "/v1/usage", "/health/ready"}
    statuses: dict[str, list[int]] = {}
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                base_url=running_proxy.url,
                headers={"X-API-Key": scenario.KEY_ALPHA},
                checks=[
                    checks.not_a_server_error,
                    checks.response_schema_conformance,
                    checks.status_code_conformance,
                    checks.response_headers_conformance,
                    checks.positive_data_acceptance,
                ],
            )

            statuses.setdefault(case.operation.path, []).append(response.status_code)

        check()
    # The run exercised every operation, and weather requests got through, not only 4xx.
    assert set(statuses) == {op.path for op in operations}
    assert 200 in statuses["/v1/weather"]
