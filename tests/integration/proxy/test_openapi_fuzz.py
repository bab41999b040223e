"""A bounded schemathesis run against the proxy's own OpenAPI schema: no 5xx, responses conform.

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

from tests.integration.proxy import scenario
from tests.support import openmeteo as om
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


@pytest.fixture(scope="module")
def proxy_schema(running_proxy: proxy_process.InProcessProxy) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{running_proxy.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("proxy_schema")


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_server_errors_and_schema_conformance(
    case: schemathesis.Case, running_proxy: proxy_process.InProcessProxy
) -> None:
    case.call_and_validate(
        base_url=running_proxy.url,
        headers={"X-API-Key": scenario.KEY_ALPHA},
        checks=[
            checks.not_a_server_error,
            checks.response_schema_conformance,
            checks.status_code_conformance,
        ],
    )
