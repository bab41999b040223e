"""A bounded schemathesis run against the proxy's own OpenAPI schema, with every check on.

Both generation modes: schema-valid requests must be accepted (positive data acceptance: not
400 or 422; 404, 429... are fine), and requests the schema forbids must be refused (negative
data rejection: a 4xx), so the document and the parser agree in both directions. Every other
check of schemathesis runs too (no 5xx, status codes, content types, response schemas and
the documented headers, methods the path does not have, authentication not ignored).

The proxy runs for real (uvicorn, in-process) with the emulator as upstream and
memory-only caching; every generated request carries a valid key. Bounded: a fixed
number of examples per operation and mode, no deadline, explicit phases (no shrinking).
"""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis import checks
from schemathesis.config._auth import AuthConfig

from devcluster import openmeteo as om
from testbed import proxy_process
from tests.integration.proxy import scenario

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
    # The key is the API's security scheme: schemathesis sends it as credentials (and checks that
    # requests without them are refused), instead of generating the header as data.
    schema.config.auth = AuthConfig(openapi={"APIKeyHeader": {"api_key": scenario.KEY_ALPHA}})
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis.pytest.from_fixture breaks on pytest 9 (it reads the removed Item._nodeid), so the
# operations are walked here, one bounded hypothesis run each, instead of @schema.parametrize().
@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda mode: mode.value)
def test_every_check_in_both_modes(
    running_proxy: proxy_process.InProcessProxy, mode: schemathesis.GenerationMode
) -> None:
    operations = _operations(running_proxy.url)
    assert {op.path for op in operations} >= {"/v1/weather", "/v1/usage", "/health/ready"}
    checks.load_all_checks()
    every_check = checks.CHECKS.get_all()
    statuses: dict[str, list[int]] = {}
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=running_proxy.url, checks=every_check)
            statuses.setdefault(case.operation.path, []).append(response.status_code)

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            # Nothing to get wrong: an operation without parameters has no negative request.
            assert mode is schemathesis.GenerationMode.NEGATIVE
            assert not operation.definition.raw.get("parameters"), operation.path
    # The run exercised every operation; in positive mode weather requests got through, not only 4xx.
    assert set(statuses) <= {op.path for op in operations}
    if mode is schemathesis.GenerationMode.POSITIVE:
        assert set(statuses) == {op.path for op in operations}
        assert 200 in statuses["/v1/weather"]
    else:
        assert 400 in statuses["/v1/weather"]
