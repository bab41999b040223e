"""The SDKs' contract with the proxy's OpenAPI document: what the API is, and how a surface is checked.

The document is the app's own (``create_app(config).openapi()``, as ``postman/build.py`` builds
it); the API is its ``/v1/`` operations. An SDK's surface is not listed by hand: each SDK is
driven by a small program of its language (``contract_drivers/``) that calls every public
method of its client, twice, against a fake transport answering every 200 with a document
made from the route's response schema (:func:`sample`): first with a value in every field,
then with null in every nullable one, and an ETag, so the second call revalidates. The
program reports the requests the SDK sent and, for Python and Go, what it decoded; TypeScript's
models are types, checked by tsc against assertions generated from the schemas
(:func:`typescript_assertions`).

What is compared (each check returns its findings; none is the pass):

* routes: every API operation is called, and every call is one of them (:func:`check_requests`);
* query parameters: over all calls of an operation, exactly the documented names are sent;
  each value is valid for its schema (type, enum, pattern, bounds, length); an object
  parameter's members go together as its schema requires (``from`` with ``to``; ``city`` or
  ``lat``/``lon``, not both); a required parameter is in every call;
* header parameters: each documented one (``X-API-Key``, ``If-None-Match``) is sent;
* models: the decoded answer carries every field of the response schema, with its value, no
  field the schema lacks, and null exactly where the schema allows it (:func:`check_decoded`
  for Go's JSON, :func:`check_python_model` for Python's dataclasses).

A list answer (the analytics routes) is, in every SDK, an object with ``items`` and ``meta``.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import math
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

API_PREFIX = "/v1/"
ETAG = 'W/"0123456789abcdef"'
Schema = Mapping[str, Any]


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the proxy serves at /openapi.json (built-in defaults, no server)."""
    from weather_proxy import app as proxy_app
    from weather_proxy import config as proxy_config

    return proxy_app.create_app(proxy_config.ProxyConfig()).openapi()


@dataclasses.dataclass(frozen=True)
class QueryParameter:
    """A query name of the wire: a plain parameter, or a member of an exploded object parameter."""

    name: str
    schema: Schema
    parameter: str  # the OpenAPI parameter it belongs to (``range``, ``place``, or ``name`` itself)


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str
    path: str
    query: dict[str, QueryParameter]
    parameters: dict[str, Schema]  # every query parameter of the document, by its name
    required: frozenset[str]  # parameters required in every call
    headers: frozenset[str]  # header parameters, lower case
    response: Schema  # the 200's schema, references resolved

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def resolve(document: Mapping[str, Any], schema: Schema) -> Schema:
    """``schema`` with its top-level ``$ref`` (``#/components/schemas/X``) followed."""
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _members(schema: Schema) -> list[Schema]:
    """The object schemas of an exploded object parameter (one, or each of a oneOf)."""
    return list(schema.get("oneOf", [schema]))


def operations(document: Mapping[str, Any]) -> dict[str, Operation]:
    """The API: every operation under /v1/, by ``"GET /v1/..."``."""
    found: dict[str, Operation] = {}
    for path, item in document["paths"].items():
        if not path.startswith(API_PREFIX):
            continue
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            query: dict[str, QueryParameter] = {}
            parameters: dict[str, Schema] = {}
            headers: set[str] = set()
            required: set[str] = set()
            for parameter in op.get("parameters", []):
                schema = resolve(document, parameter["schema"])
                if parameter["in"] == "header":
                    headers.add(parameter["name"].lower())
                    continue
                assert parameter["in"] == "query", parameter
                parameters[parameter["name"]] = schema
                if parameter.get("required"):
                    required.add(parameter["name"])
                if (
                    parameter.get("style", "form") == "form"
                    and parameter.get("explode", True)
                    and (schema.get("type") == "object" or "oneOf" in schema)
                ):
                    for member in _members(schema):
                        for name, prop in member["properties"].items():
                            query[name] = QueryParameter(name, resolve(document, prop), parameter["name"])
                else:
                    query[parameter["name"]] = QueryParameter(parameter["name"], schema, parameter["name"])
            content = op["responses"]["200"]["content"]["application/json"]
            found[f"{method.upper()} {path}"] = Operation(
                method=method.upper(),
                path=path,
                query=query,
                parameters=parameters,
                required=frozenset(required),
                headers=frozenset(headers),
                response=resolve(document, content["schema"]),
            )
    return found


# --- documents made from a schema ---------------------------------------------------------------


def _nullable(schema: Schema) -> tuple[bool, list[Schema]]:
    """Whether null is allowed, and the other alternatives (one for ``X | None``)."""
    if "anyOf" not in schema:
        return schema.get("type") == "null", [schema]
    alternatives = [alt for alt in schema["anyOf"] if alt.get("type") != "null"]
    return len(alternatives) < len(schema["anyOf"]), alternatives


def alternatives(schema: Schema) -> list[Schema]:
    """The non-null alternatives of a schema (itself when it has no ``anyOf``)."""
    return _nullable(schema)[1]


def sample(
    document: Mapping[str, Any], schema: Schema, *, nulls: bool, counter: Iterator[int] | None = None
) -> Any:
    """A document valid for ``schema``: distinct values, or null wherever null is allowed (``nulls``).

    An ``anyOf`` of several objects (``/v1/usage``: UsageOut | UsageHistoryOut) gives one object
    with the members of all: an SDK model takes the members of the alternative it stands for.
    """
    counter = counter if counter is not None else itertools.count(11)
    schema = resolve(document, schema)
    nullable, alternatives = _nullable(schema)
    if nullable and nulls:
        return None
    if len(alternatives) > 1:
        merged: dict[str, Any] = {}
        for alternative in alternatives:
            part = sample(document, alternative, nulls=nulls, counter=counter)
            assert isinstance(part, dict), "an anyOf of objects and something else"
            assert not set(part) & set(merged), "alternatives share a member"
            merged.update(part)
        return merged
    schema = resolve(document, alternatives[0])
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        if "properties" not in schema:
            return {"k": next(counter)}
        return {
            name: sample(document, prop, nulls=nulls, counter=counter)
            for name, prop in schema["properties"].items()
        }
    if kind == "array":
        return [sample(document, schema["items"], nulls=nulls, counter=counter)]
    if kind == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum", 10**6)
        return int(low + next(counter) % (high - low + 1))
    if kind == "number":
        return next(counter) + 0.25
    if kind == "boolean":
        return next(counter) % 2 == 0
    if kind == "string":
        examples = schema.get("examples")
        return str(examples[0]) if examples else f"s{next(counter)}"
    raise AssertionError(f"no sample for the schema {schema}")


def samples(document: Mapping[str, Any], ops: Mapping[str, Operation]) -> dict[str, list[Any]]:
    """Per path, the two answers of the fake transport: all values, then nulls where allowed."""
    return {
        op.path: [sample(document, op.response, nulls=False), sample(document, op.response, nulls=True)]
        for op in ops.values()
    }


# --- requests --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Request:
    """A request an SDK sent: what its driver reports."""

    call: str  # the SDK method
    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    headers: frozenset[str]  # names, lower case


def _value_problems(name: str, value: str, schema: Schema) -> list[str]:
    kind = schema.get("type")
    problems = []
    number: float | None = None
    if kind in ("integer", "number"):
        try:
            number = int(value) if kind == "integer" else float(value)
        except ValueError:
            return [f"{name}={value!r} is not an {kind}"]
        if not math.isfinite(number):
            problems.append(f"{name}={value!r} is not finite")
    if "enum" in schema and value not in [str(v) for v in schema["enum"]]:
        problems.append(f"{name}={value!r} is not one of {schema['enum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{name}={value!r} does not match {schema['pattern']}")
    if number is not None:
        if "minimum" in schema and number < schema["minimum"]:
            problems.append(f"{name}={value!r} is below {schema['minimum']}")
        if "maximum" in schema and number > schema["maximum"]:
            problems.append(f"{name}={value!r} is above {schema['maximum']}")
    if kind == "string" and not schema.get("minLength", 0) <= len(value) <= schema.get(
        "maxLength", len(value)
    ):
        problems.append(f"{name}={value!r} has a length out of bounds")
    return problems


def _object_problems(parameter: str, schema: Schema, sent: set[str]) -> list[str]:
    """The members sent of an exploded object parameter, against its schema (or its oneOf)."""
    fits = [
        member
        for member in _members(schema)
        if set(member.get("required", [])) <= sent <= set(member["properties"])
    ]
    if len(fits) != 1:
        shapes = " or ".join(
            f"{sorted(m.get('required', []))} (of {sorted(m['properties'])})" for m in _members(schema)
        )
        return [f"parameter {parameter}: sent {sorted(sent)}, the schema wants {shapes}"]
    return []


def check_requests(ops: Mapping[str, Operation], requests: Sequence[Request]) -> list[str]:
    """Routes, query parameters (names, values, groups) and header parameters of an SDK's requests."""
    problems: list[str] = []
    by_operation: dict[str, list[Request]] = {key: [] for key in ops}
    for request in requests:
        key = f"{request.method} {request.path}"
        if key not in ops:
            problems.append(f"{request.call}: {key} is not an operation of the API")
            continue
        by_operation[key].append(request)
        op = ops[key]
        for name, values in request.query.items():
            if name not in op.query:
                problems.append(f"{request.call}: sends {name}, which {key} does not document")
                continue
            if len(values) != 1:
                problems.append(f"{request.call}: sends {name} {len(values)} times")
            problems += [
                f"{request.call}: {p}" for p in _value_problems(name, values[0], op.query[name].schema)
            ]
        for parameter, schema in op.parameters.items():
            members = {q.name for q in op.query.values() if q.parameter == parameter and q.name != parameter}
            if members:
                sent = members & set(request.query)
                if sent or parameter in op.required:
                    problems += [f"{request.call}: {p}" for p in _object_problems(parameter, schema, sent)]
            elif parameter in op.required and parameter not in request.query:
                problems.append(f"{request.call}: does not send the required {parameter}")
    for key, made in by_operation.items():
        op = ops[key]
        if not made:
            problems.append(f"{key}: no method of the SDK calls it")
            continue
        calls = sorted({r.call for r in made})
        names: set[str] = set().union(*(set(r.query) for r in made))
        problems += [
            f"{key} ({', '.join(calls)}): never sends {name}" for name in sorted(set(op.query) - names)
        ]
        headers: set[str] = set().union(*(r.headers for r in made))
        problems += [
            f"{key} ({', '.join(calls)}): never sends the header {name}"
            for name in sorted(op.headers - headers)
        ]
    return problems


# --- models ----------------------------------------------------------------------------------------


def _alternative_for(document: Mapping[str, Any], schema: Schema, keys: set[str]) -> Schema:
    """Of a response's object alternatives, the one whose members ``keys`` are (else the closest)."""
    _, alternatives = _nullable(schema)
    objects = [resolve(document, a) for a in alternatives]
    return max(
        objects,
        key=lambda alt: (
            len(set(alt.get("properties", {})) & keys) - len(keys ^ set(alt.get("properties", {})))
        ),
    )


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(got, want)
    return bool(got == want)


def check_decoded(document: Mapping[str, Any], schema: Schema, sent: Any, got: Any, path: str) -> list[str]:
    """What an SDK decoded from ``sent`` and encoded back as JSON (Go), against the schema."""
    schema = resolve(document, schema)
    _, alternatives = _nullable(schema)
    if sent is None:
        return [] if got is None else [f"{path}: the answer's null came back as {got!r}"]
    if len(alternatives) > 1:
        chosen = _alternative_for(document, schema, set(got) if isinstance(got, dict) else set())
        sent = {k: v for k, v in sent.items() if k in chosen.get("properties", {})}
        return check_decoded(document, chosen, sent, got, path)
    schema = resolve(document, alternatives[0])
    if schema.get("type") == "object" and "properties" in schema:
        if not isinstance(got, dict):
            return [f"{path}: an object in the schema, {type(got).__name__} in the SDK"]
        problems = [
            f"{path}.{name}: missing from the SDK's model" for name in schema["properties"] if name not in got
        ]
        problems += [
            f"{path}.{name}: in the SDK's model, not in the schema"
            for name in got
            if name not in schema["properties"]
        ]
        for name, prop in schema["properties"].items():
            if name in got:
                problems += check_decoded(document, prop, sent[name], got[name], f"{path}.{name}")
        return problems
    if schema.get("type") == "array":
        if not isinstance(got, list) or len(got) != len(sent):
            return [f"{path}: {sent!r} decoded as {got!r}"]
        return [
            p
            for i, item in enumerate(got)
            for p in check_decoded(document, schema["items"], sent[i], item, f"{path}[{i}]")
        ]
    return [] if _same(got, sent) else [f"{path}: {sent!r} decoded as {got!r}"]


def camel(name: str) -> str:
    """A Python field's JSON name (``cache_hits`` -> ``cacheHits``), the SDK's documented rule."""
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def _python_fields(value: Any) -> dict[str, Any]:
    """A dataclass instance's fields by JSON name (``meta`` is the response's, not the body's)."""
    return {camel(f.name): getattr(value, f.name) for f in dataclasses.fields(value) if f.name != "meta"}


def _hint_nullable(cls: type, field: str) -> bool:
    hint = typing.get_type_hints(cls)[field]
    return type(None) in typing.get_args(hint) and typing.get_origin(hint) in (typing.Union, types.UnionType)


def _python_scalar(got: Any, sent: Any, schema: Schema) -> bool:
    kind = schema.get("type")
    if kind == "string" and isinstance(got, datetime.datetime):
        return got == datetime.datetime.fromisoformat(str(sent).replace("Z", "+00:00"))
    expected: dict[str, tuple[type, ...]] = {
        "integer": (int,),
        "number": (float,),
        "string": (str,),
        "boolean": (bool,),
    }
    types_ = expected.get(str(kind))
    if types_ is not None and (not isinstance(got, types_) or (kind == "integer" and isinstance(got, bool))):
        return False
    return _same(got, sent)


def check_python_model(
    document: Mapping[str, Any], schema: Schema, sent: Any, got: Any, path: str, *, top: bool = False
) -> list[str]:
    """A Python SDK model decoded from ``sent``: every member's value, by the SDK's name rule, and its type.

    ``top``: ``got`` is a method's answer (a list answer is then a Listing: ``items`` and ``meta``).
    """
    schema = resolve(document, schema)
    _, alternatives = _nullable(schema)
    if sent is None:
        return [] if got is None else [f"{path}: the answer's null came back as {got!r}"]
    if len(alternatives) > 1:
        keys = set(_python_fields(got)) if dataclasses.is_dataclass(got) else set()
        chosen = _alternative_for(document, schema, keys)
        sent = {k: v for k, v in sent.items() if k in chosen.get("properties", {})}
        return check_python_model(document, chosen, sent, got, path, top=top)
    schema = resolve(document, alternatives[0])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        if not dataclasses.is_dataclass(got) or isinstance(got, type):
            return [f"{path}: an object in the schema, {type(got).__name__} in the SDK"]
        fields = _python_fields(got)
        properties = schema["properties"]
        problems = [
            f"{path}.{name}: missing from {type(got).__name__}" for name in properties if name not in fields
        ]
        problems += [
            f"{path}.{name}: in {type(got).__name__}, not in the schema"
            for name in fields
            if name not in properties
        ]
        names = {camel(f.name): f.name for f in dataclasses.fields(got)}
        for name, prop in properties.items():
            if name not in fields:
                continue
            wanted, _ = _nullable(resolve(document, prop))
            if _hint_nullable(type(got), names[name]) != wanted:
                problems.append(f"{path}.{name}: nullable in {'the schema' if wanted else 'the SDK'} only")
            problems += check_python_model(document, prop, sent[name], fields[name], f"{path}.{name}")
        return problems
    if kind == "object":
        return (
            [] if isinstance(got, Mapping) and dict(got) == sent else [f"{path}: {sent!r} decoded as {got!r}"]
        )
    if kind == "array":
        if top and not (hasattr(got, "items") and hasattr(got, "meta")):
            return [f"{path}: a list answer, not a Listing (items, meta) in the SDK"]
        items = got.items if top else got
        if not isinstance(items, (tuple, list)) or len(items) != len(sent):
            return [f"{path}: {sent!r} decoded as {got!r}"]
        return [
            p
            for i, item in enumerate(items)
            for p in check_python_model(document, schema["items"], sent[i], item, f"{path}[{i}]")
        ]
    return [] if _python_scalar(got, sent, schema) else [f"{path}: {sent!r} decoded as {got!r}"]


# --- TypeScript: the models are types, checked by tsc ----------------------------------------------

TS_PRELUDE = """\
// Generated by tests/integration/sdk/contract.py from the proxy's OpenAPI document: each line
// below is one assertion on the SDK's types; tsc reports the lines that do not hold.
type Assert<T extends true> = T;
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
type Nullable<T> = null extends T ? true : false;
type Optional<T> = undefined extends T ? true : false;
type Is<T, E> = [NonNullable<T>] extends [never] ? false : [NonNullable<T>] extends [E] ? true : false;
type Keys<T> = Exclude<keyof NonNullable<T>, "meta">;
"""

_TS_TYPES = {"integer": "number", "number": "number", "string": "string", "boolean": "boolean"}


@dataclasses.dataclass(frozen=True)
class TsAssertion:
    line: int  # 1-based, in the generated file
    call: str
    alternative: int  # which object alternative of an anyOf answer (0 otherwise)
    label: str


def _ts_lines(
    document: Mapping[str, Any], schema: Schema, expr: str, label: str, top: bool
) -> Iterator[tuple[str, str]]:
    """(assertion, label) pairs for the type ``expr`` against ``schema``."""
    schema = resolve(document, schema)
    nullable, alternatives = _nullable(schema)
    if not top:
        yield (
            f"Assert<Equal<Nullable<{expr}>, {'true' if nullable else 'false'}>>",
            f"{label}: nullable {nullable}",
        )
    schema = resolve(document, alternatives[0])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        names = " | ".join(f'"{name}"' for name in schema["properties"]) or "never"
        yield f"Assert<Equal<Keys<{expr}>, {names}>>", f"{label}: members {sorted(schema['properties'])}"
        for name, prop in schema["properties"].items():
            member = f'NonNullable<{expr}>["{name}"]'
            if name in schema.get("required", []):
                yield f"Assert<Equal<Optional<{member}>, false>>", f"{label}.{name}: not optional"
            yield from _ts_lines(document, prop, member, f"{label}.{name}", False)
    elif kind == "object":
        yield f"Assert<Is<{expr}, Record<string, unknown>>>", f"{label}: an object"
    elif kind == "array":
        inner = f'NonNullable<{expr}>["items"]' if top else expr
        yield f"Assert<Is<{inner}, readonly unknown[]>>", f"{label}: a list"
        yield from _ts_lines(document, schema["items"], f"NonNullable<{inner}>[number]", f"{label}[]", False)
    else:
        ts_type = _TS_TYPES[str(kind)]
        yield f"Assert<Is<{expr}, {ts_type}>>", f"{label}: a {ts_type}"


def typescript_assertions(
    document: Mapping[str, Any], ops: Mapping[str, Operation], calls: Mapping[str, str], module: str
) -> tuple[str, list[TsAssertion]]:
    """The checked file and its assertions: for each SDK method (``calls``: method -> operation key),
    its answer's type (``Awaited<ReturnType<...>>``) against the operation's response schema."""
    lines = [
        *TS_PRELUDE.splitlines(),
        f'import type {{ WeatherProxyClient }} from "{module}";',
        "",
    ]
    assertions: list[TsAssertion] = []
    for call, key in sorted(calls.items()):
        answer = f"Answer_{call}"
        lines.append(f'type {answer} = Awaited<ReturnType<WeatherProxyClient["{call}"]>>;')
        _, alternatives = _nullable(ops[key].response)
        for index, alternative in enumerate(alternatives):
            for assertion, label in _ts_lines(document, alternative, answer, call, True):
                lines.append(f"type _{len(lines) + 1} = {assertion};")
                assertions.append(TsAssertion(len(lines), call, index, label))
    return "\n".join(lines) + "\n", assertions


def typescript_problems(
    assertions: Sequence[TsAssertion], failed_lines: set[int], alternatives: Mapping[str, int]
) -> list[str]:
    """The findings of tsc's failed lines: a call passes when one alternative's assertions all hold."""
    problems = []
    for call, count in sorted(alternatives.items()):
        mine = [a for a in assertions if a.call == call]
        failures = [
            [a.label for a in mine if a.alternative == i and a.line in failed_lines] for i in range(count)
        ]
        if all(failures):
            problems += [f"{label} does not hold" for label in min(failures, key=len)]
    return problems
