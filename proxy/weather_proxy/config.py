"""The proxy's configuration files: ``config.yaml`` and ``keys.yaml``.

Their contract: docs/contracts.md, Configuration files (every field: docs/config-reference.md).

These models are the contract between the operator (which renders them into a
ConfigMap and a Secret) and the proxy (which reads them and hot-reloads them).
Keys are camelCase on disk; unknown keys are rejected with an error naming the
field. Every field has a default, so an empty file is a valid configuration.
"""

from __future__ import annotations

import datetime
import enum
import pathlib
from typing import Annotated, Any

import orjson
import yaml
from pydantic import (
    AfterValidator,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from weather_proxy import contract

DEFAULT_CONFIG_PATH = pathlib.Path(contract.CONFIG_PATH)
DEFAULT_KEYS_PATH = pathlib.Path(contract.KEYS_PATH)


class ConfigModel(BaseModel):
    """Base of every config model: camelCase aliases, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_camel_dict(self) -> dict[str, Any]:
        """The model as the YAML/JSON dict a file holds (camelCase keys)."""
        return self.model_dump(mode="json", by_alias=True)


class Environment(enum.StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"


class ServingTls(ConfigModel):
    """``listen.tls``: serve HTTPS (every route, /metrics and the probes included) with these files.

    The files are re-read when they change (a renewed Secret's volume): see docs/http-server.md, TLS.
    """

    cert_file: str = Field(
        ..., min_length=1, description="PEM certificate chain served, leaf first (a Secret's tls.crt)."
    )
    key_file: str = Field(..., min_length=1, description="PEM private key of the leaf (a Secret's tls.key).")


class Listen(ConfigModel):
    host: str = Field(
        "0.0.0.0",  # noqa: S104  # nosec B104 - a pod serves on all its interfaces
        description="Address the HTTP server binds to.",
    )
    port: int = Field(contract.HTTP_PORT, ge=1, le=65535, description="TCP port of the HTTP server.")
    tls: ServingTls | None = Field(
        None,
        description="Serve HTTPS with this certificate, whose files are watched: under uvicorn a renewed "
        "pair is served without a restart (docs/http-server.md, TLS). Plain HTTP when absent.",
    )

    @model_serializer(mode="wrap")
    def _omit_no_tls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Plain HTTP is written as no tls key: files rendered before TLS existed stay unchanged.
        data: dict[str, Any] = handler(self)
        if self.tls is None:
            data.pop("tls", None)
        return data


class ServerCa(ConfigModel):
    """TLS to a server of the fleet (Redis, PostgreSQL): its certificate must chain to this CA."""

    ca_file: str = Field(
        ...,
        min_length=1,
        description="PEM CA bundle the server's certificate must be signed by; its host name is checked too.",
    )


def _omit_none(data: dict[str, Any], name: str) -> dict[str, Any]:
    if data.get(name) is None:
        data.pop(name, None)
    return data


class Retries(ConfigModel):
    attempts: int = Field(3, ge=1, le=10, description="Upstream attempts per call, first one included.")
    backoff_initial_seconds: float = Field(0.2, gt=0, le=60, description="First backoff delay.")
    backoff_max_seconds: float = Field(2.0, gt=0, le=300, description="Upper bound of a backoff delay.")


class CircuitBreaker(ConfigModel):
    failure_threshold: int = Field(
        5, ge=1, le=1000, description="Consecutive failures that open the breaker."
    )
    reset_timeout_seconds: float = Field(30.0, gt=0, le=3600, description="Open time before a trial call.")


class Pool(ConfigModel):
    max_connections: int = Field(100, ge=1, le=10000, description="Upstream connection pool size.")
    max_keepalive: int = Field(20, ge=0, le=10000, description="Idle keep-alive connections kept.")
    keepalive_expiry_seconds: float = Field(30.0, ge=0, le=3600, description="Idle connection lifetime.")


class Budget(ConfigModel):
    """Upstream calls the whole fleet may make per UTC minute, hour and day (null: no limit).

    The defaults are Open-Meteo's free tier, which it counts per client IP: a fleet behind
    one egress address shares it.
    """

    per_minute: int | None = Field(600, ge=1, le=100_000_000, description="Calls per UTC minute.")
    per_hour: int | None = Field(5000, ge=1, le=100_000_000, description="Calls per UTC hour.")
    per_day: int | None = Field(10000, ge=1, le=100_000_000, description="Calls per UTC day.")
    background_percent: int = Field(
        80,
        ge=0,
        le=100,
        description="Warm-up and background refreshes stop at this share of each window; the rest is "
        "left to user-driven misses.",
    )


class Upstream(ConfigModel):
    geocoding_url: str = Field(
        "https://geocoding-api.open-meteo.com/v1/search", description="Open-Meteo geocoding search URL."
    )
    forecast_url: str = Field(
        "https://api.open-meteo.com/v1/forecast", description="Open-Meteo forecast URL."
    )
    timeout_seconds: float = Field(5.0, gt=0, le=120, description="Timeout of one upstream HTTP call.")
    retries: Retries = Field(
        default_factory=Retries,
        description="Retries of a failed upstream call (timeouts, connection errors, 5xx, 429), with "
        "exponential backoff and jitter.",
    )
    circuit_breaker: CircuitBreaker = Field(
        default_factory=CircuitBreaker,
        description="Stops calling upstream after consecutive failures, fleet-wide through Redis, "
        "until a trial call succeeds.",
    )
    pool: Pool = Field(default_factory=Pool, description="HTTP connection pool to upstream.")
    budget: Budget = Field(
        default_factory=Budget,
        description="Fleet-wide upstream call budget; spent: stale data if cached, else 503 "
        "upstream-budget-exhausted.",
    )

    @model_serializer(mode="wrap")
    def _omit_default_budget(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A file without budget means the default one: rendered files (and so their config hash,
        # which restarts pods) stay as they were for fleets that do not set it.
        data: dict[str, Any] = handler(self)
        if self.budget == Budget():
            data.pop("budget", None)
        return data


class MemoryCache(ConfigModel):
    max_entries: int = Field(10000, ge=1, le=10_000_000, description="L1 (in-process) cache capacity.")
    ttl_seconds: float = Field(60.0, gt=0, le=86400, description="L1 entry lifetime.")


City = Annotated[str, Field(min_length=1, max_length=100, description="A city name, as in ?city=.")]


class Cache(ConfigModel):
    ttl_seconds: int = Field(300, ge=1, le=86400, description="How long weather data is fresh.")
    stale_ttl_seconds: int = Field(
        3600, ge=0, le=7 * 86400, description="How long after freshness stale data may still be served."
    )
    geocoding_ttl_seconds: int = Field(
        7 * 86400, ge=60, le=365 * 86400, description="How long a geocoding result is cached."
    )
    memory: MemoryCache = Field(
        default_factory=MemoryCache, description="The in-process (L1) cache in front of Redis."
    )
    warm_cities: list[City] = Field(
        default_factory=list,
        max_length=100,
        description="Cities kept warm: refreshed in the background before they go stale.",
    )


class Redis(ConfigModel):
    url: str = Field(..., description="redis:// or rediss:// URL; password from env REDIS_PASSWORD.")
    tls: ServerCa | None = Field(
        None,
        description="With a rediss:// url: the CA that signed Redis's certificate (default: the system's "
        "trust store); the certificate and the url's host name are always verified.",
    )

    @model_validator(mode="after")
    def _scheme(self) -> Redis:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis.url: must start with redis://, rediss:// or unix://")
        if self.tls is not None and not self.url.startswith("rediss://"):
            raise ValueError("redis.tls: needs a rediss:// url (TLS); redis:// and unix:// are plaintext")
        return self

    @model_serializer(mode="wrap")
    def _omit_no_tls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_none(handler(self), "tls")


# A ServiceAccount's credentials in a pod (token, ca.crt, namespace): the operator mounts them here.
SERVICE_ACCOUNT_DIR = contract.SERVICE_ACCOUNT_DIR
# The data key of a keys Secret that holds keys.yaml.
KEYS_SECRET_KEY = contract.KEYS_FILE
# A Secret's name: a DNS subdomain.
SecretName = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]


class KubernetesKeys(ConfigModel):
    """``auth.kubernetes``: watch the keys Secrets through the API server, not only their mounted file.

    A change then reaches the process with the watch event (well under a second) instead of
    the kubelet's re-projection of the volume (up to a minute or more). The mounted
    ``auth.keysFile`` is the copy of the first Secret: what the process starts from, and what
    it falls back to while the API server cannot be reached. Needs only ``get``, ``list`` and
    ``watch`` on these Secrets by name.
    """

    namespace: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description="Namespace of the Secrets; default: the pod's own (the ServiceAccount's namespace file).",
    )
    secret_names: list[Annotated[SecretName, Field(description="Name of a keys Secret.")]] = Field(
        ...,
        min_length=1,
        max_length=64,
        description="Secrets whose keys are merged, in this order; auth.keysFile mounts the first.",
    )
    key: str = Field(
        KEYS_SECRET_KEY,
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="The data key of each Secret holding keys.yaml.",
    )
    api_server: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+$",
        description="URL of the API server (scheme, host, port); default: in-cluster, from env "
        "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT.",
    )
    token_file: str = Field(
        f"{SERVICE_ACCOUNT_DIR}/token",
        min_length=1,
        description="Bearer token file, re-read on every (re)connect: projected tokens rotate.",
    )
    ca_file: str | None = Field(
        f"{SERVICE_ACCOUNT_DIR}/ca.crt",
        description="CA bundle that signed the API server's certificate; null: the system's trust store.",
    )
    watch_timeout_seconds: int = Field(
        300, ge=1, le=3600, description="Server-side timeout of one watch request; then it is re-opened."
    )


class Auth(ConfigModel):
    required: bool = Field(False, description="Reject requests without a valid X-API-Key.")
    keys_file: str | None = Field(None, description="Path of keys.yaml; no keys when absent.")
    keys_files: list[Annotated[str, Field(description="Path of a keys file.")]] = Field(
        default_factory=list,
        max_length=1023,
        description="More keys files merged after keysFile (a fleet's keys sharded over several Secrets): "
        "the mounted copies of auth.kubernetes.secretNames[1:], in that order.",
    )
    kubernetes: KubernetesKeys | None = Field(
        None, description="Also watch the keys Secrets through the API server (revocation in seconds)."
    )

    @model_validator(mode="after")
    def _files_match_secrets(self) -> Auth:
        if self.keys_files and self.keys_file is None:
            raise ValueError("auth.keysFiles: needs auth.keysFile (the first file)")
        if self.kubernetes is not None and self.keys_file is not None:
            files = 1 + len(self.keys_files)
            if files > len(self.kubernetes.secret_names):
                raise ValueError(
                    f"auth.keysFiles: {files} files for {len(self.kubernetes.secret_names)} "
                    "auth.kubernetes.secretNames; each file is the copy of one Secret"
                )
        return self

    @model_serializer(mode="wrap")
    def _omit_no_more_files(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # One file is written as before: files rendered before sharding existed stay unchanged.
        data: dict[str, Any] = handler(self)
        if not self.keys_files:
            data.pop("keysFiles", None)
            data.pop("keys_files", None)
        return data


# The environment variable holding the analytics database's password (never in config.yaml).
ANALYTICS_PASSWORD_ENV = contract.ENV_ANALYTICS_PASSWORD


class AnalyticsDatabase(ConfigModel):
    url: str = Field(
        ...,
        min_length=1,
        max_length=2000,
        description=f"postgresql://USER@HOST:5432/DB; the password comes from env {ANALYTICS_PASSWORD_ENV}.",
    )
    connect_timeout_seconds: float = Field(3.0, gt=0, le=60, description="Timeout of one connection attempt.")
    statement_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="Server-side bound of one statement (reads, writes, maintenance)."
    )
    tls: ServerCa | None = Field(
        None,
        description="Connect over TLS with libpq's sslmode=verify-full against this CA (the certificate and "
        "the url's host name are verified); libpq's defaults (the url's sslmode) when absent.",
    )

    @model_validator(mode="after")
    def _url(self) -> AnalyticsDatabase:
        scheme, sep, rest = self.url.partition("://")
        if not sep or scheme not in ("postgresql", "postgres"):
            raise ValueError("analytics.database.url: must start with postgresql:// or postgres://")
        userinfo = rest.split("/", 1)[0].rpartition("@")[0]
        if ":" in userinfo:
            raise ValueError(
                f"analytics.database.url: must not hold a password; set env {ANALYTICS_PASSWORD_ENV}"
            )
        return self

    @model_serializer(mode="wrap")
    def _omit_no_tls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_none(handler(self), "tls")


class AnalyticsWriter(ConfigModel):
    """The in-memory queue of request rows and its batched writes."""

    max_queued_rows: int = Field(
        10_000,
        ge=10,
        le=10_000_000,
        description="Rows held while the database is slow or down; then the "
        "oldest are dropped (and counted).",
    )
    batch_rows: int = Field(2_000, ge=1, le=1_000_000, description="Most rows written by one COPY.")
    flush_interval_seconds: float = Field(1.0, gt=0, le=60, description="Longest time a row waits in memory.")


class Analytics(ConfigModel):
    """Usage history in PostgreSQL: one row per API request (key id, never the key; never the client's IP)."""

    database: AnalyticsDatabase = Field(..., description="The PostgreSQL database of the history.")
    retention_days: int = Field(
        90, ge=1, le=3660, description="Days of history kept; older daily partitions are dropped."
    )
    erase_on_key_delete: bool = Field(
        True, description="Erase a deleted ApiKey's rows (within a day; carried out by the operator)."
    )
    writer: AnalyticsWriter = Field(default_factory=AnalyticsWriter)


class QuotaPeriod(enum.StrEnum):
    DAY = "Day"
    MONTH = "Month"


class Quota(ConfigModel):
    """Requests per UTC calendar day or month, counted fleet-wide."""

    requests: int = Field(..., ge=1, le=1_000_000_000, description="Requests allowed per period.")
    period: QuotaPeriod = Field(..., description="Day or Month: a UTC calendar day or month.")


class Limit(ConfigModel):
    """A token bucket: burst tokens (at least 1), refilled at requestsPerMinute tokens per minute."""

    requests_per_minute: int = Field(
        ..., ge=1, le=1_000_000, description="Sustained rate: the bucket refills this many tokens per minute."
    )
    burst: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Capacity of the bucket: requests admitted at once after a quiet spell (0 counts as 1).",
    )
    quota: Quota | None = Field(
        None,
        description="Requests per UTC day or month; a key whose rateLimit has none gets the fleet default's.",
    )

    @property
    def capacity(self) -> int:
        """Tokens the bucket holds: ``burst``, at least one."""
        return max(1, self.burst)


class RateLimit(ConfigModel):
    default: Limit = Field(
        default_factory=lambda: Limit(requests_per_minute=100, burst=20),
        description="The limit of a key that has none of its own.",
    )
    anonymous: Limit = Field(
        default_factory=lambda: Limit(requests_per_minute=10, burst=5),
        description="The limit of a caller without a key (auth.required false), per client address.",
    )


class Cors(ConfigModel):
    allow_origins: list[Annotated[str, Field(description="An origin, e.g. https://app.example.com.")]] = (
        Field(default_factory=list, description="Origins allowed by CORS; none (no CORS headers) when empty.")
    )


def _ip_networks(entries: list[str]) -> list[str]:
    import ipaddress

    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or a CIDR network (e.g. 10.0.0.0/8)") from None
    return entries


class Http(ConfigModel):
    request_timeout_seconds: float = Field(30.0, gt=0, le=600, description="Deadline of one request (504).")
    cors: Cors = Field(default_factory=Cors, description="Cross-origin resource sharing.")
    trusted_hosts: list[Annotated[str, Field(description="A host name; *.example.com or * allowed.")]] = (
        Field(
            default_factory=lambda: ["*"],
            min_length=1,
            description="Host header values accepted (400 otherwise); [*] accepts any.",
        )
    )
    gzip_minimum_size: int = Field(1000, ge=0, description="Responses larger than this are gzipped.")
    trusted_proxies: Annotated[
        list[Annotated[str, Field(description="An IP address or CIDR network.")]],
        AfterValidator(_ip_networks),
    ] = Field(
        default_factory=list,
        max_length=256,
        description="Peers (IP addresses or CIDR networks) whose X-Forwarded-For and X-Forwarded-Proto "
        "are believed: on their connections the client's address (which anonymous rate limits count "
        "by) is the rightmost X-Forwarded-For entry not in this list, and the scheme X-Forwarded-Proto's. "
        "Empty (the default): nobody's, so a client cannot choose its address. Behind an Ingress, list "
        "the ingress controller's pod CIDR (the nodes' network when it runs with hostNetwork), never "
        "0.0.0.0/0. Read at start.",
    )
    max_header_bytes: int = Field(
        16 * 1024,
        ge=8192,
        le=1024 * 1024,
        description="Largest request head (request line and header lines, as sent), under either server: "
        "over it, or over 100 header lines, 431 and the connection is closed (a long URL too: 431, not "
        "414). Read at start.",
    )
    header_timeout_seconds: float = Field(
        10.0,
        ge=1,
        le=60,
        description="A request head not whole this long after its first byte is dropped (the connection "
        "closed without an answer); under uvicorn, also a connection that sends nothing this long after "
        "it opened. Read at start.",
    )

    @model_serializer(mode="wrap")
    def _omit_default_limits(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Left at their defaults they are not written: a rendered config.yaml (and so its hash, which
        # restarts pods) stays as it was for fleets that do not set them.
        data: dict[str, Any] = handler(self)
        for name in ("trusted_proxies", "max_header_bytes", "header_timeout_seconds"):
            if getattr(self, name) == Http.model_fields[name].get_default(call_default_factory=True):
                data.pop(name, None)
                data.pop(to_camel(name), None)
        return data


class Tracing(ConfigModel):
    enabled: bool = Field(False, description="Trace requests with OpenTelemetry.")
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint; spans are not exported when unset."
    )
    sample_ratio: float = Field(0.1, ge=0, le=1, description="Fraction of requests traced (0 to 1).")


class Observability(ConfigModel):
    log_level: str = Field(
        "info", pattern="^(debug|info|warning|error|critical)$", description="Lowest level logged."
    )
    tracing: Tracing = Field(default_factory=Tracing, description="OpenTelemetry tracing.")


class Server(enum.StrEnum):
    """The HTTP server that runs the app."""

    UVICORN = "uvicorn"
    GRANIAN = "granian"


class ProxyConfig(ConfigModel):
    """``config.yaml``: everything a proxy process needs to serve."""

    environment: Environment = Field(
        Environment.DEV,
        description="dev, staging or production: where this proxy runs, as its start-up log says.",
    )
    listen: Listen = Field(default_factory=Listen, description="Where the HTTP server listens.")
    upstream: Upstream = Field(default_factory=Upstream, description="The Open-Meteo client.")
    cache: Cache = Field(default_factory=Cache, description="Freshness and size of the weather cache.")
    redis: Redis | None = Field(
        None,
        description="The Redis the fleet's replicas share (cache, rate limits, circuit breaker); "
        "without it each process keeps them in its own memory.",
    )
    auth: Auth = Field(default_factory=Auth, description="API keys: where they come from, whether required.")
    rate_limit: RateLimit = Field(default_factory=RateLimit, description="Per-key and anonymous rate limits.")
    http: Http = Field(default_factory=Http, description="HTTP server behaviour.")
    observability: Observability = Field(default_factory=Observability, description="Logs and traces.")
    analytics: Analytics | None = Field(
        None, description="Usage history and analytics in PostgreSQL; off (routes answer 404) when absent."
    )
    server: Server = Field(
        Server.UVICORN,
        description="The HTTP server: uvicorn or granian (faster on the cache-hit path). Read at start.",
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Server processes behind the one port, each with its own L1 cache, sharing Redis "
        "(limits, breaker, coalescing). Default: one per CPU of the container's limit (cgroup quota), "
        "else of its request (env WEATHER_PROXY_CPU_REQUEST_MILLICORES), else 1; env WEATHER_PROXY_WORKERS "
        "and --workers override it. Read at start.",
    )

    @model_serializer(mode="wrap")
    def _omit_analytics_when_off(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Off is written as no section at all: files rendered before analytics existed stay unchanged.
        # So are workers left to their default (the container's CPU) and the default server.
        data: dict[str, Any] = handler(self)
        if self.analytics is None:
            data.pop("analytics", None)
        if self.workers is None:
            data.pop("workers", None)
        if self.server is Server.UVICORN:
            data.pop("server", None)
        return data


class Scope(enum.StrEnum):
    """A permission of an API key: each route of the proxy needs one."""

    WEATHER_READ = "weather:read"  # GET /v1/weather and its alias /weather
    USAGE_READ = "usage:read"  # GET /v1/usage
    ANALYTICS_READ = "analytics:read"  # GET /v1/analytics/*


# What a key without a scopes field, and an anonymous caller, may do.
DEFAULT_SCOPES: tuple[Scope, ...] = (Scope.WEATHER_READ, Scope.USAGE_READ)


def _each_scope_once(scopes: list[Scope]) -> list[Scope]:
    repeated = sorted({scope.value for scope in scopes if scopes.count(scope) > 1})
    if repeated:
        raise ValueError(f"each scope may be listed once, repeated: {', '.join(repeated)}")
    return scopes


# A set of scopes, written as a list: at least one, none twice, each one of Scope's values.
Scopes = Annotated[list[Scope], AfterValidator(_each_scope_once), Field(min_length=1)]


class KeyEntry(ConfigModel):
    """One API key, by hash; the plaintext never leaves the ApiKey's own Secret."""

    id: str = Field(..., min_length=1, max_length=300, description="namespace/name of the ApiKey.")
    sha256: str = Field(..., pattern="^[0-9a-f]{64}$", description="Hex SHA-256 of the plaintext key.")
    rate_limit: Limit | None = Field(None, description="This key's limit; rateLimit.default when absent.")
    expires_at: datetime.datetime | None = Field(
        None, description="RFC 3339 time from which the key is refused (403); never when absent."
    )
    disabled: bool = Field(False, description="Refuse the key (403) while keeping its entry.")
    scopes: Scopes = Field(
        default_factory=lambda: list(DEFAULT_SCOPES),
        description="What the key may call; weather:read and usage:read when absent.",
    )
    probe: bool = Field(
        False,
        description="A probe key (the operator's smoke key of a blue/green analysis): weather:read only, "
        "counts against no rate limit or quota, writes no usage history, analytics or per-key counters "
        "(it has no /v1/usage); its requests still count in the HTTP request metrics.",
    )

    @model_validator(mode="before")
    @classmethod
    def _probe_scopes(cls, data: Any) -> Any:
        """A probe entry without scopes has weather:read alone (not the default scopes)."""
        if isinstance(data, dict) and data.get("probe") is True and "scopes" not in data:
            return {**data, "scopes": [Scope.WEATHER_READ]}
        return data

    @model_validator(mode="after")
    def _probe_reads_weather_only(self) -> KeyEntry:
        if self.probe:
            if self.scopes != [Scope.WEATHER_READ]:
                raise ValueError("scopes: a probe key has weather:read only (leave scopes out)")
            if self.rate_limit is not None:
                raise ValueError("rateLimit: a probe key counts against no limit (leave rateLimit out)")
        return self


class KeysFile(ConfigModel):
    """``keys.yaml``: the hashes of a fleet's API keys."""

    revision: int = Field(
        0,
        ge=0,
        description="Grows with every change the operator writes (0: unversioned). A mounted file never "
        "replaces a watched Secret's content of a higher revision: a lagging file cannot undo a revocation.",
    )
    keys: list[KeyEntry] = Field(default_factory=list, description="The keys; keys: [] means none.")


class ConfigError(ValueError):
    """A config file could not be read or is invalid; the message names the field and rule."""


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``source: field.path: message``."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{source}: {where}: {err['msg']}")
    return "\n".join(lines)


def _read(path: pathlib.Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _load_yaml(path: pathlib.Path) -> Any:
    return _parse_yaml(_read(path), str(path))


# libyaml's safe loader when PyYAML was built with it (several times faster), else the pure-Python one.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str, source: str) -> Any:
    """YAML; a document in JSON form (a YAML subset, as the operator writes large keys files) fast."""
    try:
        if text.lstrip().startswith("{"):
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506  # nosec B506 - a safe loader
        else:
            data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506  # nosec B506 - a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (root): must be a mapping, got {type(data).__name__}")
    return data


def load_config(path: pathlib.Path | str) -> ProxyConfig:
    """Read and validate ``config.yaml``; raises ConfigError naming the field."""
    path = pathlib.Path(path)
    data = _load_yaml(path)
    try:
        return ProxyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc


def load_keys(path: pathlib.Path | str) -> KeysFile:
    """Read and validate ``keys.yaml``; raises ConfigError naming the field (or that it is empty)."""
    path = pathlib.Path(path)
    return parse_keys(_read(path), str(path))


def parse_keys(text: str, source: str) -> KeysFile:
    """Validate ``keys.yaml`` text (e.g. a watched Secret's); ConfigError names ``source`` and the field.

    An empty document is an error, not zero keys: a file caught truncated mid-rewrite, or emptied
    by mistake, must not refuse every key. Zero keys on purpose is written ``keys: []``.
    """
    data = _parse_yaml(text, source)
    if not data:
        raise ConfigError(f"{source}: (root): the document is empty (zero keys are written `keys: []`)")
    try:
        return KeysFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc
