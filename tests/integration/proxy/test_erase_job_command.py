"""The erasure Job the operator renders does erase: its command, config and env, run here.

``render.postgres.render_erase_job`` gives the container's command and env; the fleet's
config.yaml (``analytics_config``) is what the Job mounts. Both are used as rendered, the
Secrets' values resolved the way the kubelet would (an External database: the URL from one
Secret key, the password from another), against a real PostgreSQL with rows of two keys.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import psycopg
import pytest
import yaml

from testbed.postgres_server import AnalyticsDatabase
from tests.support import history
from weather_operator.api import analytics as analytics_api
from weather_operator.render import configmap, names, postgres
from weather_proxy import config
from weather_proxy.history import maintenance, migrations

pytestmark = [pytest.mark.integration]

DELETED, KEPT = "weather/team-a", "weather/team-b"
URL_SECRET = {"name": "history-db", "key": "url"}
PASSWORD_SECRET = {"name": "history-db", "key": "password"}


async def _rows(database: AnalyticsDatabase) -> None:
    conninfo = psycopg.conninfo.make_conninfo(database.url, password=database.password)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await migrations.apply(conn)
        await maintenance.run_once(conn, 90, datetime.datetime.now(datetime.UTC))
        for key_id, n in ((DELETED, 3), (KEPT, 2)):
            for _ in range(n):
                await conn.execute(
                    "INSERT INTO requests (time, key_id, route, status, latency_ms)"
                    " VALUES (now(), %s, %s, 200, 1)",
                    (key_id, "/v1/weather"),
                )


def _run_job(
    job: dict[str, Any], config_path: pathlib.Path, secrets: dict[tuple[str, str], str]
) -> dict[str, Any]:
    [container] = job["spec"]["template"]["spec"]["containers"]
    command = list(container["command"])
    assert command[:1] == ["python"]
    command[0] = sys.executable
    command[command.index("--config") + 1] = str(config_path)  # where the Job mounts the ConfigMap
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEATHER_PROXY_", "ANALYTICS_"))}
    for var in container["env"]:
        ref = var["valueFrom"]["secretKeyRef"]
        env[var["name"]] = secrets[ref["name"], ref["key"]]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


async def test_the_rendered_job_erases_the_deleted_keys_rows_and_only_them(
    analytics_database: AnalyticsDatabase, tmp_path: pathlib.Path
) -> None:
    await _rows(analytics_database)
    spec = analytics_api.AnalyticsSpec.model_validate(
        {
            "database": {
                "mode": "External",
                "external": {"urlSecretRef": URL_SECRET, "passwordSecretRef": PASSWORD_SECRET},
            }
        }
    )
    analytics = analytics_api.resolve(spec, config.Environment.PRODUCTION)
    # The fleet's config.yaml as the ConfigMap holds it, with the analytics section rendered.
    cfg = config.ProxyConfig(analytics=postgres.analytics_config("paris", analytics, cnpg=False))
    config_path = tmp_path / names.CONFIG_KEY
    config_path.write_text(configmap.config_yaml(cfg))
    assert "password" not in config_path.read_text()
    job = postgres.render_erase_job("paris", "weather", DELETED, "uid-of-the-key", "proxy:test", analytics)
    assert job is not None
    secrets = {
        (URL_SECRET["name"], URL_SECRET["key"]): analytics_database.url,
        (PASSWORD_SECRET["name"], PASSWORD_SECRET["key"]): analytics_database.password,
    }
    assert _run_job(job, config_path, secrets) == {"keyId": DELETED, "rowsErased": 3}
    left = history.query(analytics_database, "SELECT key_id, count(*) FROM requests GROUP BY 1")
    assert left == [(KEPT, 2)]
    # A retried Job (the pod ran twice) erases nothing more and still succeeds.
    assert _run_job(job, config_path, secrets) == {"keyId": DELETED, "rowsErased": 0}
    assert yaml.safe_load(config_path.read_text())["analytics"]["database"]["url"] == (
        postgres.EXTERNAL_PLACEHOLDER_URL
    )
