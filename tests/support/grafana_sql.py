"""Grafana's PostgreSQL data source, as far as a dashboard's raw SQL needs: variables, then macros.

Grafana interpolates dashboard variables (``$name``, ``${name}``, ``$__interval``) in the browser,
then its PostgreSQL plugin expands the macros server-side (``pkg/tsdb/grafana-postgresql-datasource/
macros.go``): the same regular expression (``$__name(args)``, arguments without parentheses) and
the same expansions, so the SQL that reaches PostgreSQL here is the SQL Grafana would send:

* ``$__time(col)`` → ``col AS "time"``; ``$__timeEpoch(col)`` → ``extract(epoch from col) as "time"``
* ``$__timeFilter(col)`` → ``col BETWEEN 'FROM' AND 'TO'`` (RFC 3339, UTC)
* ``$__timeFrom()`` / ``$__timeTo()`` → ``'FROM'`` / ``'TO'``
* ``$__timeGroup(col, '1h')`` → ``floor(extract(epoch from col)/3600)*3600``;
  ``$__timeGroupAlias`` the same ``AS "time"``
* ``$__unixEpochFilter(col)`` → ``col >= FROM_EPOCH AND col <= TO_EPOCH``
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
INTERVAL = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class MacroError(ValueError):
    """A macro Grafana does not know, or bad arguments: Grafana would refuse the query too."""


def _rfc3339(moment: datetime.datetime) -> str:
    # Go's time.RFC3339Nano of a UTC time: no fractional part when it is zero, "Z" for UTC.
    utc = moment.astimezone(datetime.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += ("." + f"{utc.microsecond:06d}").rstrip("0")
    return text + "Z"


def interval_seconds(text: str) -> float:
    match = INTERVAL.match(text.strip().strip("'\""))
    if match is None:
        raise MacroError(f"invalid interval {text!r}")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def _seconds(value: float) -> str:
    # Go's %v of a float64: 3600 prints as 3600, 0.5 as 0.5.
    return str(int(value)) if value == int(value) else repr(value)


def interpolate(sql: str, variables: Mapping[str, str]) -> str:
    """Dashboard variables (and ``$__interval``); macros are left for :func:`expand_macros`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name.startswith("__") and name not in variables:
            return match.group(0)  # a macro's name, or a built-in this dashboard does not use
        if name not in variables:
            raise MacroError(f"unknown dashboard variable ${name}")
        return variables[name]

    return VARIABLE.sub(replace, sql)


def expand_macros(sql: str, time_from: datetime.datetime, time_to: datetime.datetime) -> str:
    def replace(match: re.Match[str]) -> str:
        name, raw = match.group(1), match.group(2)
        args = [a.strip() for a in raw.split(",")] if raw.strip() else []
        if name == "time":
            return f'{args[0]} AS "time"'
        if name == "timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "timeFilter":
            return f"{args[0]} BETWEEN '{_rfc3339(time_from)}' AND '{_rfc3339(time_to)}'"
        if name == "timeFrom":
            return f"'{_rfc3339(time_from)}'"
        if name == "timeTo":
            return f"'{_rfc3339(time_to)}'"
        if name in ("timeGroup", "timeGroupAlias"):
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval")
            step = _seconds(interval_seconds(args[1]))
            group = f"floor(extract(epoch from {args[0]})/{step})*{step}"
            return group + ' AS "time"' if name == "timeGroupAlias" else group
        if name == "unixEpochFilter":
            lo, hi = int(time_from.timestamp()), int(time_to.timestamp())
            return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
        raise MacroError(f"unknown macro $__{name}")

    return MACRO.sub(replace, sql)


def render(
    sql: str,
    variables: Mapping[str, str],
    time_from: datetime.datetime,
    time_to: datetime.datetime,
) -> str:
    """The SQL Grafana would send for a panel's ``rawSql`` over ``time_from``..``time_to``."""
    return expand_macros(interpolate(sql, variables), time_from, time_to)
