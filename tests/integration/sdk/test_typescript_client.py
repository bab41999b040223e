"""The TypeScript SDK (sdk/typescript): ``tsc --noEmit``, then ``npm test`` against a real proxy.

``npm test`` compiles with tsc and runs node's test runner (sdk/typescript/test), told the
proxy's URL, the keys and the emulator's control URL through environment variables.
"""

from __future__ import annotations

import pytest

from tests.integration.sdk import stack as sdk

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PACKAGE = sdk.REPO / "sdk" / "typescript"


def test_the_typescript_client_against_a_real_proxy(sdk_stack: sdk.SdkStack) -> None:
    sdk.require_node_packages(PACKAGE)
    npm = sdk.require_tool("npm")
    output = sdk.run_suite([npm, "test", "--silent"], PACKAGE, sdk_stack.env())
    assert "# fail 0" in output
    assert "# skipped 0" in output
