"""The cached "is CloudNativePG's Cluster served?" answer: the monitoring discovery, another API."""

from __future__ import annotations

import pytest

from weather_operator import discovery


class Server:
    def __init__(self, served: dict[str, set[str]]) -> None:
        self.served = served
        self.asked: list[str] = []
        self.fail = False

    async def served_kinds(self, api_version: str) -> set[str]:
        self.asked.append(api_version)
        if self.fail:
            raise ConnectionError("API server unreachable")
        return set(self.served.get(api_version, set()))


async def test_asks_about_postgresql_cnpg_io_and_caches_the_answer() -> None:
    now = [0.0]
    server = Server({"monitoring.coreos.com/v1": {"ServiceMonitor", "PrometheusRule"}})
    cnpg = discovery.CnpgDiscovery(server.served_kinds, ttl=60, clock=lambda: now[0])
    monitoring = discovery.MonitoringDiscovery(server.served_kinds, ttl=60, clock=lambda: now[0])
    assert await cnpg.available() is False
    assert await monitoring.available() is True
    assert server.asked == ["postgresql.cnpg.io/v1", "monitoring.coreos.com/v1"]
    server.served["postgresql.cnpg.io/v1"] = {"Cluster", "Backup", "Pooler"}
    now[0] = 59
    assert await cnpg.available() is False
    now[0] = 61
    assert await cnpg.available() is True


async def test_a_failed_question_keeps_the_previous_answer_or_raises_without_one() -> None:
    server = Server({"postgresql.cnpg.io/v1": {"Cluster"}})
    cnpg = discovery.CnpgDiscovery(server.served_kinds, ttl=0)
    server.fail = True
    with pytest.raises(ConnectionError):
        await cnpg.available()
    server.fail = False
    assert await cnpg.available() is True
    server.fail = True
    assert await cnpg.available() is True
