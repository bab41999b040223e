"""``weather-operator``: ``kopf run`` of the weather operator's handlers with production flags.

Flags: ``--all-namespaces`` (or ``--namespace`` from ``WEATHER_OPERATOR_WATCH_NAMESPACE``),
``--log-format``, ``--liveness``, and active/passive peering (``--peering``/``--priority``)
unless ``--standalone`` is given. Any other argument is passed through to ``kopf run``.
"""

from __future__ import annotations

import socket
import sys
import zlib
from collections.abc import Sequence

from weather_operator import settings

HANDLERS_MODULE = "weather_operator.handlers"
PRIORITY_RANGE = 1_000_000


def pod_priority(pod_name: str) -> int:
    """A stable peering priority in 1..PRIORITY_RANGE derived from the pod's name.

    Pods of one Deployment have distinct names, so they get distinct priorities: one is
    active and the others stand by, taking over when its peering record goes stale.
    """
    return 1 + zlib.crc32(pod_name.encode()) % PRIORITY_RANGE


def kopf_arguments(
    extra: Sequence[str], own: settings.OperatorSettings, pod_name: str | None = None
) -> list[str]:
    """The ``kopf`` command line for ``extra`` user arguments (``pod_name``: default the host name)."""
    extra = list(extra)
    args = ["run", "-m", HANDLERS_MODULE]
    if own.watch_namespace:
        args.append(f"--namespace={own.watch_namespace}")
    elif not any(a in {"-A", "--all-namespaces"} or a.startswith(("-n", "--namespace")) for a in extra):
        args.append("--all-namespaces")
    if not any(a.startswith("--log-format") for a in extra):
        args.append(f"--log-format={own.log_format}")
    if not any(a.startswith("--liveness") for a in extra):
        args.append(f"--liveness={own.liveness_endpoint}")
    if "--standalone" not in extra and not any(a.startswith("--peering") for a in extra):
        priority = own.peering_priority or pod_priority(pod_name or socket.gethostname())
        args += [f"--peering={own.peering_name}", f"--priority={priority}"]
    return args + extra


def main(argv: Sequence[str] | None = None) -> None:
    import kopf.cli  # deferred: building the command line needs no Kopf

    own = settings.OperatorSettings.from_env()
    kopf.cli.main(
        args=kopf_arguments(sys.argv[1:] if argv is None else argv, own), prog_name="weather-operator"
    )


if __name__ == "__main__":
    main()
