"""The Secret holding a generated API key's plaintext (key ``apiKey``), owned by its ApiKey."""

from __future__ import annotations

import base64
from typing import Any

from weather_operator.render import names


def render_key_secret(apikey_name: str, secret_name: str, plaintext: str) -> dict[str, Any]:
    """The plaintext-key Secret; the caller sets the namespace and owner (it adopts the object)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name,
            "labels": {
                "app.kubernetes.io/name": names.APP_NAME,
                "app.kubernetes.io/instance": apikey_name,
                "app.kubernetes.io/component": names.API_KEY,
                "app.kubernetes.io/part-of": names.PART_OF,
                "app.kubernetes.io/managed-by": names.MANAGED_BY,
            },
        },
        "data": {names.APIKEY_SECRET_KEY: base64.b64encode(plaintext.encode("utf-8")).decode("ascii")},
    }
