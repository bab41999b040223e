"""``weather-operator``: ``kopf run`` of the weather operator's handlers with production flags.

Flags: ``--all-namespaces`` (or ``--namespace`` from ``WEATHER_OPERATOR_WATCH_NAMESPACE``),
``--log-format``, ``--liveness``, and active/passive peering (``--peering``/``--priority``)
unless ``--standalone`` is given. Any other argument is passed through to ``kopf run``.
``--help`` lists the ``WEATHER_OPERATOR_*`` settings; ``--version`` prints the version.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import socket
import sys
import textwrap
import zlib
from collections.abc import Sequence

from weather_operator import settings
from weather_proxy import version

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


def parser() -> argparse.ArgumentParser:
    """The options ``weather-operator`` answers itself; the others are ``kopf run``'s."""
    own = argparse.ArgumentParser(
        prog="weather-operator",
        usage="%(prog)s [--help] [--version] [KOPF-RUN-OPTION ...]",
        description="Runs the weather operator: `kopf run -m weather_operator.handlers` with "
        "--all-namespaces (or --namespace=$WEATHER_OPERATOR_WATCH_NAMESPACE), --log-format, "
        "--liveness and active/passive peering (--peering, --priority) unless --standalone is "
        "given. Every other option goes to `kopf run` as it is (`kopf run --help` lists them), "
        "e.g. --standalone, --verbose, --namespace=NS. Outside a cluster it uses $KUBECONFIG.",
        epilog="settings (environment variables; a blank one keeps the default):\n"
        + settings.describe_settings(),
        formatter_class=_Formatter,
        add_help=False,
        allow_abbrev=False,  # a prefix of one of ours may be a whole option of kopf's
    )
    own.add_argument("-h", "--help", action="help", help="show this help and exit")
    own.add_argument("--version", action="version", version=version_line(), help="show the version and exit")
    return own


def version_line() -> str:
    """``weather-operator 0.1.0 (kopf 1.45.2)``."""
    try:
        kopf = importlib.metadata.version("kopf")
    except importlib.metadata.PackageNotFoundError:
        kopf = "not installed"
    return f"weather-operator {version.VERSION} (kopf {kopf})"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps the description, keeps the settings' epilog as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("settings"):
            return text
        # Not argparse's own filling: that breaks option names such as --all-namespaces at the hyphen.
        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )


def main(argv: Sequence[str] | None = None) -> None:
    _, extra = parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    import kopf.cli  # deferred: building the command line needs no Kopf

    try:
        own = settings.OperatorSettings.from_env()
    except settings.SettingsError as exc:
        print(f"weather-operator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    kopf.cli.main(args=kopf_arguments(extra, own), prog_name="weather-operator")


if __name__ == "__main__":
    main()
