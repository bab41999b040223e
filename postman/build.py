"""Writes the Postman collection from the proxy's OpenAPI document (``make postman``).

    python postman/build.py           # regenerate weather-proxy.postman_collection.json
    python postman/build.py --check   # exit 1 when the committed collection is out of date

The document is the app's own (``create_app(config).openapi()``, no server started);
``generate.mjs`` converts it with openapi-to-postmanv2 (``npm ci`` in postman/ first).
"""

from __future__ import annotations

import argparse
import difflib
import json
import pathlib
import shutil
import subprocess  # nosec B404 - runs node with an argument list, never a shell
import sys
from typing import Any

from weather_proxy import app as proxy_app
from weather_proxy import config as proxy_config

HERE = pathlib.Path(__file__).resolve().parent
COLLECTION = HERE / "weather-proxy.postman_collection.json"
GENERATOR = HERE / "generate.mjs"


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the proxy serves at /openapi.json (built-in defaults)."""
    return proxy_app.create_app(proxy_config.ProxyConfig()).openapi()


def collection_text() -> str:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node not found on PATH: the converter is an npm package (see postman/README.md)")
    if not (HERE / "node_modules" / "openapi-to-postmanv2").is_dir():
        raise SystemExit("postman/node_modules is missing: run `make sdk-deps` (npm ci in postman/)")
    done = subprocess.run(  # noqa: S603 - a fixed command: node and our script
        [node, str(GENERATOR)],
        input=json.dumps(openapi_document()),
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{GENERATOR.name} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args(argv)
    text = collection_text()
    if not args.check:
        COLLECTION.write_text(text, encoding="utf-8")
        print(f"wrote {COLLECTION.relative_to(HERE.parent)}")
        return 0
    committed = COLLECTION.read_text(encoding="utf-8") if COLLECTION.exists() else ""
    if committed == text:
        return 0
    diff = difflib.unified_diff(
        committed.splitlines(), text.splitlines(), "committed", "from the OpenAPI document", lineterm="", n=2
    )
    print("\n".join(list(diff)[:80]))
    print(f"{COLLECTION.name} is out of date with the proxy's OpenAPI document: run `make postman`")
    return 1


if __name__ == "__main__":
    sys.exit(main())
