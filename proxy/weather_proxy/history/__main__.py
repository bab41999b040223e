"""``python -m weather_proxy.history --config PATH {migrate,maintain,erase KEY_ID}``.

The history's operations outside a serving proxy, with the proxy's own ``config.yaml``
(its ``analytics`` section) and the password from env ``ANALYTICS_DATABASE_PASSWORD``:
``migrate`` applies the schema, ``maintain`` creates partitions ahead and applies retention
(``--now`` moves the clock, for a test or a late run), ``erase`` deletes one key id's rows
(the operator's part of ``eraseOnKeyDelete``). Exit status 0 on success, 1 when the database
failed, 2 on a bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys

import orjson

from weather_proxy import config as config_mod
from weather_proxy import settings
from weather_proxy.history import database, service
from weather_proxy.observability import metrics as metrics_mod


def _parser(env: settings.ProxySettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m weather_proxy.history", description=__doc__)
    parser.add_argument("--config", default=env.config_path, help="config.yaml")
    parser.add_argument("--now", help="ISO 8601 instant taken as now (maintain)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the schema's missing migrations")
    sub.add_parser("maintain", help="create partitions for today and tomorrow, drop those past retention")
    erase = sub.add_parser("erase", help="delete every row of one key id")
    erase.add_argument("key_id", help="namespace/name of the ApiKey")
    return parser


async def _run(
    args: argparse.Namespace, cfg: config_mod.Analytics, env: settings.ProxySettings
) -> dict[str, object]:
    clock = None
    if args.now:
        moment = datetime.datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        clock = moment.timestamp
    history = service.UsageHistory(
        cfg,
        env.secret("analytics_database_password"),
        metrics_mod.Metrics(),
        **({"clock": clock} if clock else {}),
    )
    try:
        if not await history.prepare():
            raise database.DatabaseUnavailable(history.db.last_error or "unavailable")
        if args.command == "migrate":
            return {"migrated": True}
        if args.command == "maintain":
            report = await history.maintain_once()
            return {"ran": report.ran, "created": list(report.created), "dropped": list(report.dropped)}
        return {"keyId": args.key_id, "rowsErased": await history.erase_key(args.key_id)}
    finally:
        await history.aclose()


def main(argv: list[str] | None = None) -> int:
    try:
        env = settings.ProxySettings.from_env()
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    args = _parser(env).parse_args(argv)
    try:
        cfg = env.apply(config_mod.load_config(args.config) if args.config else config_mod.ProxyConfig())
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if cfg.analytics is None:
        print("the config has no analytics section", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_run(args, cfg.analytics, env))
    except database.DatabaseUnavailable as exc:
        print(f"analytics database unavailable: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
