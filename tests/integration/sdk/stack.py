"""A proxy (real process) in front of the Open-Meteo emulator, with one API key per SDK scenario.

The SDK suites of every language run against this stack: Python's in this process, the
TypeScript and Go ones as child processes reading :meth:`SdkStack.env` (``WEATHER_PROXY_URL``,
``WEATHER_PROXY_KEY`` and ``WEATHER_PROXY_KEY_<NAME>`` for each key below, and
``WEATHER_PROXY_EMULATOR``, the emulator's control URL for fault injection).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from typing import NoReturn

import pytest

from devcluster import openmeteo as om
from tests.integration.proxy import scenario
from tests.support import proxy_process
from weather_proxy import config as proxy_config

REPO = pathlib.Path(__file__).resolve().parents[3]
ENV_PREFIX = "WEATHER_PROXY_KEY"
DAILY_QUOTA_OF_ONE = proxy_config.Limit(
    requests_per_minute=10_000,
    burst=1000,
    quota=proxy_config.Quota(requests=1, period=proxy_config.QuotaPeriod.DAY),
)
# One token in the bucket, one more per second: the second request in a row is refused with
# Retry-After: 1, and a client that waits that long is then admitted.
ONE_PER_SECOND = proxy_config.Limit(requests_per_minute=60, burst=1)

# name -> (plaintext, keys.yaml fields). Each scenario that spends a key's tokens or quota has
# a key of its own, so the scenarios of one suite do not depend on their order.
KEYS: dict[str, tuple[str, dict[str, object]]] = {
    "main": ("wpk_sdk_main_4c1d2e3f40516273849a5b6c7d8e9f00", {}),
    "tiny": ("wpk_sdk_tiny_0f1e2d3c4b5a69788796a5b4c3d2e1f0", {"rate_limit": ONE_PER_SECOND}),
    "tiny_strict": ("wpk_sdk_tinystrict_9a8b7c6d5e4f30211203f4e5d6c7b8a9", {"rate_limit": ONE_PER_SECOND}),
    "quota": ("wpk_sdk_quota_5a4b3c2d1e0f11223344556677889900", {"rate_limit": DAILY_QUOTA_OF_ONE}),
    "usage_only": (
        "wpk_sdk_usageonly_aabbccddeeff00112233445566778899",
        {"scopes": [proxy_config.Scope.USAGE_READ]},
    ),
    "disabled": ("wpk_sdk_disabled_00998877665544332211ffeeddccbbaa", {"disabled": True}),
}
UNKNOWN_KEY = "wpk_sdk_unknown_11111111111111111111111111111111"


def keys_file(keys: dict[str, tuple[str, dict[str, object]]] = KEYS) -> proxy_config.KeysFile:
    return proxy_config.KeysFile(
        keys=[
            proxy_process.key_entry(f"sdk/{name}", plaintext, **fields)
            for name, (plaintext, fields) in keys.items()
        ]
    )


class SdkStack:
    """The emulator and one proxy process; :attr:`url`, :meth:`key`, :meth:`env`."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.emulator = om.OpenMeteoEmulator().start()
        config = scenario.build_config(self.emulator, None)
        self.proxy = proxy_process.ProxyProcess(workdir, config, keys_file())
        try:
            self.proxy.start()
        except RuntimeError:
            self.proxy.stop()
            self.emulator.stop()
            raise

    @property
    def url(self) -> str:
        return self.proxy.url

    def key(self, name: str) -> str:
        return KEYS[name][0]

    def env(self) -> dict[str, str]:
        """What a child test runner is told: the proxy's URL, the keys, the emulator's control URL."""
        env = {
            "WEATHER_PROXY_URL": self.url,
            ENV_PREFIX: self.key("main"),
            f"{ENV_PREFIX}_UNKNOWN": UNKNOWN_KEY,
            "WEATHER_PROXY_EMULATOR": self.emulator.base_url,
        }
        env.update({f"{ENV_PREFIX}_{name.upper()}": plaintext for name, (plaintext, _) in KEYS.items()})
        return env

    def stop(self) -> None:
        self.proxy.stop()
        self.emulator.stop()
        print(f"--- sdk proxy log tail ---\n{self.proxy.log_tail()}")


@pytest.fixture(scope="module")
def sdk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkStack]:
    """One stack per test module (each language's suite gets fresh buckets and quotas)."""
    stack = SdkStack(tmp_path_factory.mktemp("sdk-proxy"))
    try:
        yield stack
    finally:
        stack.stop()


def unavailable(message: str) -> NoReturn:
    """Skip, or under CI=true fail: in CI the SDK suites never skip silently."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: not skipped)", pytrace=False)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """The path of ``name`` on PATH (else :func:`unavailable`)."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} not found on PATH (the SDK suites need node, npm and go)")
    return found


def require_node_packages(package_dir: pathlib.Path) -> None:
    """``npm ci`` has run in ``package_dir`` (else :func:`unavailable`)."""
    require_tool("node")
    if not (package_dir / "node_modules" / ".package-lock.json").is_file():
        unavailable(f"{package_dir.relative_to(REPO)}: node packages not installed: run `make sdk-deps`")


def run_suite(command: list[str], cwd: pathlib.Path, env: dict[str, str], timeout: float = 240) -> str:
    """Run a child test runner; its output, or a failure that shows it."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(done.stdout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-6000:]}", pytrace=False)
    return done.stdout
