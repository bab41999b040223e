"""The Grafana SQL stand-in expands variables and macros as Grafana's PostgreSQL plugin documents."""

from __future__ import annotations

import datetime

import pytest

from tests.support import grafana_sql

FROM = datetime.datetime(2017, 4, 21, 5, 1, 17, tzinfo=datetime.UTC)
TO = datetime.datetime(2017, 4, 21, 5, 6, 17, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # The examples of Grafana's PostgreSQL documentation ("Macros").
        ("$__time(dateColumn)", 'dateColumn AS "time"'),
        ("$__timeEpoch(dateColumn)", 'extract(epoch from dateColumn) as "time"'),
        ("$__timeFilter(dateColumn)", "dateColumn BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"),
        ("$__timeFrom()", "'2017-04-21T05:01:17Z'"),
        ("$__timeTo()", "'2017-04-21T05:06:17Z'"),
        ("$__timeGroup(dateColumn,'5m')", "floor(extract(epoch from dateColumn)/300)*300"),
        ("$__timeGroupAlias(dateColumn,'5m')", 'floor(extract(epoch from dateColumn)/300)*300 AS "time"'),
        ("$__unixEpochFilter(dateColumn)", "dateColumn >= 1492750877 AND dateColumn <= 1492751177"),
    ],
)
def test_macros_expand_as_grafana_documents(sql: str, expected: str) -> None:
    assert grafana_sql.render(sql, {}, FROM, TO) == expected


def test_variables_first_then_macros() -> None:
    sql = "SELECT $__timeGroupAlias(t, $__interval), $budget FROM x WHERE $__timeFilter(t) LIMIT ${top}"
    out = grafana_sql.render(sql, {"__interval": "1h", "budget": "5000", "top": "10"}, FROM, TO)
    assert out == (
        'SELECT floor(extract(epoch from t)/3600)*3600 AS "time", 5000 FROM x'
        " WHERE t BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z' LIMIT 10"
    )


def test_unknown_variables_and_macros_are_refused() -> None:
    with pytest.raises(grafana_sql.MacroError, match=r"\$nope"):
        grafana_sql.render("SELECT $nope", {}, FROM, TO)
    with pytest.raises(grafana_sql.MacroError, match="timeShift"):
        grafana_sql.render("SELECT $__timeShift(x)", {}, FROM, TO)
    with pytest.raises(grafana_sql.MacroError, match="interval"):
        grafana_sql.render("SELECT $__timeGroup(x, 'soon')", {}, FROM, TO)
