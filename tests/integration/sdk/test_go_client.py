"""The Go SDK (sdk/go): ``go vet``, then ``go test`` against a real proxy.

The Go tests read the proxy's URL, the keys and the emulator's control URL from environment
variables; run alone (no variables) they skip, so here the output must show none skipped.
"""

from __future__ import annotations

import pytest

from tests.integration.sdk import stack as sdk

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MODULE = sdk.REPO / "sdk" / "go"


def test_the_go_client_against_a_real_proxy(sdk_stack: sdk.SdkStack) -> None:
    go = sdk.require_tool("go")
    # The module has no dependencies; GOTOOLCHAIN=local keeps go from fetching another toolchain.
    env = {**sdk_stack.env(), "GOTOOLCHAIN": "local"}
    sdk.run_suite([go, "vet", "./..."], MODULE, env)
    output = sdk.run_suite([go, "test", "-count=1", "-v", "./..."], MODULE, env)
    assert "--- SKIP" not in output
    assert "--- PASS: TestTheSecondCallRevalidatesWithTheETagAndGets304" in output
    assert output.rstrip().splitlines()[-1].startswith("ok")
