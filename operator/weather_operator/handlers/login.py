"""Authentication: in-cluster service account, else the kubeconfig (``$KUBECONFIG`` honoured).

One login feeds both clients: Kopf's own (watching, events) gets a
``kopf.ConnectionInfo``; the operator's API client (``apply.Cluster``, aiohttp too)
gets the very same credentials. Kopf calls this again when the API
server answers 401, and the apply client is rebuilt with the fresh credentials.
"""

from __future__ import annotations

import os
from typing import Any

import kopf
import kubernetes.client
import kubernetes.config

from weather_operator.controller import runtime


def load_configuration(environ: dict[str, str] | None = None) -> kubernetes.client.Configuration:
    """Client configuration: in-cluster first, then ``$KUBECONFIG`` (read now, not at import)."""
    environ = dict(os.environ) if environ is None else environ
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=environ.get("KUBECONFIG") or None, client_configuration=configuration
            )
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise kopf.LoginError(f"no in-cluster service account and no usable kubeconfig: {exc}") from exc
    return configuration


def connection_info(configuration: kubernetes.client.Configuration) -> kopf.ConnectionInfo:
    """Kopf's view of the same credentials (as ``kopf.login_via_client`` builds it)."""
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (
        (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    )
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


@kopf.on.login()
async def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    configuration = load_configuration()
    controller = memo.get(runtime.MEMO_KEY) if hasattr(memo, "get") else None
    if not isinstance(controller, runtime.Controller):
        raise kopf.TemporaryError("operator state not initialised yet", delay=1)
    controller.connection.connect(configuration)
    return connection_info(configuration)
