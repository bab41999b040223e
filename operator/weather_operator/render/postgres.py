"""The usage history's database and its wiring into the fleet (``spec.analytics``).

What the history holds and for how long: docs/contracts.md, Usage history and analytics.

Everything here is pure: the same inputs give the same objects.

* Managed, CloudNativePG CRDs served: a ``postgresql.cnpg.io/v1`` ``Cluster`` (database and
  owner ``weather``, its Service of the primary ``<cluster>-rw``) and a NetworkPolicy.
* Managed, no CloudNativePG: a one-replica StatefulSet on a PersistentVolumeClaim, its headless
  Service and a NetworkPolicy letting in only the fleet's proxy and erasure pods.
* External: nothing runs; the proxy reads the URL (and the password) from the user's Secret.

The owner's password lives in one ``kubernetes.io/basic-auth`` Secret, ``<proxy>-postgres-auth``,
made by :func:`render_password_secret` from a password the fleet's reconciler generates and
*creates* once (never applies: an existing Secret is kept, so the password never rotates on a
reconcile and never appears in a rendered fleet). CloudNativePG reads the same Secret
(``bootstrap.initdb.secret``) instead of generating its ``<cluster>-app``, so the proxy's env is
the same in both managed forms and exists before the database does. Whether the database is
ready is the status's to say (``status.analytics_readiness``).

The proxy side: :func:`analytics_config` is config.yaml's ``analytics`` section,
:func:`proxy_env` the env vars of the password (and an External URL). :func:`render_erase_job`
is the Job that erases a deleted ApiKey's rows (``python -m weather_proxy.history erase``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from weather_operator.api import analytics as analytics_api
from weather_operator.api import constants
from weather_operator.render import meta, names, networkpolicy, tls
from weather_proxy import config, settings

CNPG_API_VERSION = "postgresql.cnpg.io/v1"
CNPG_KIND = "Cluster"
POSTGRES_USER_ID = 999  # the postgres user of Debian's package in the official and the local images
DATA_DIR = "/var/lib/postgresql/data"
PGDATA = f"{DATA_DIR}/pgdata"  # a subdirectory: a volume's root may hold lost+found
SOCKET_DIR = "/tmp"  # noqa: S108  # nosec B108 - an emptyDir, private to the pod
SOCKET_DIR_ENV = "POSTGRES_SOCKET_DIR"
# The URL an External database really comes from: env WEATHER_PROXY_ANALYTICS_DATABASE_URL (a
# secretKeyRef) overrides it, so nothing of the user's database lands in the ConfigMap.
EXTERNAL_PLACEHOLDER_URL = "postgresql://external-analytics-url-from-env.invalid:5432/analytics"
ERASER_CONTAINER = "eraser"
ERASE_BAD_CONFIG_EXIT = 2  # python -m weather_proxy.history: a bad config never gets better by retrying
ERASE_DEADLINE_SECONDS = 86_400  # "within a day": retries while the database is away, then gives up
ERASE_BACKOFF_LIMIT = 240  # the Job controller's backoff reaches 6 minutes: 240 tries span the day
ERASE_TTL_SECONDS = 7 * 86_400
KEY_ID_ANNOTATION = "weatherproxy.dev/key-id"

# The container's command: initdb once (owner and database from env, password from the Secret),
# then the server on all addresses with scram-sha-256 over TCP. Only initdb, postgres and a POSIX
# shell are needed, so Debian's package and the official Debian-based images both run it.
# No "$(": the kubelet would expand $(VAR) references in a command.
START_SCRIPT = """\
set -eu
socket_dir="${POSTGRES_SOCKET_DIR:-/tmp}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  umask 077
  pwfile="$socket_dir/.initdb-password"
  printf '%s\\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \\
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C --no-instructions
  rm -f "$pwfile"
  printf 'host all all 0.0.0.0/0 scram-sha-256\\nhost all all ::/0 scram-sha-256\\n' >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \\"$POSTGRES_DB\\" OWNER \\"$POSTGRES_USER\\"" \\
    | postgres --single -D "$PGDATA" -c unix_socket_directories="$socket_dir" postgres > /dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$socket_dir" \\
  -c password_encryption=scram-sha-256
"""


TLS_DIR = "/etc/postgres-tls"  # its leaf of the fleet's CA (spec.tls.internal)
# The same script, serving TLS from its leaf (clients that ask for it; the proxies always do).
TLS_START_SCRIPT = START_SCRIPT.replace(
    "-c password_encryption=scram-sha-256\n",
    "-c password_encryption=scram-sha-256 \\\n"
    f"  -c ssl=on -c ssl_cert_file={TLS_DIR}/tls.crt -c ssl_key_file={TLS_DIR}/tls.key\n",
)


@dataclasses.dataclass(frozen=True)
class Database:
    """The database's desired children, in apply order, and those that must not exist."""

    objects: list[dict[str, Any]]
    unwanted: list[meta.ObjectRef]


def render_password_secret(proxy: str, namespace: str, password: str) -> dict[str, Any]:
    """The owner's basic-auth Secret (``username``, ``password``): create it, never apply it."""
    data = {names.POSTGRES_USERNAME_KEY: names.POSTGRES_USER, names.POSTGRES_PASSWORD_KEY: password}
    return meta.secret(
        names.postgres_secret_name(proxy), namespace, proxy, names.POSTGRES, data, "kubernetes.io/basic-auth"
    )


def database_host(proxy: str, cnpg: bool) -> str:
    """The managed database's Service: CloudNativePG's primary, or the StatefulSet's headless one."""
    return names.cnpg_rw_service_name(proxy) if cnpg else names.postgres_name(proxy)


def database_url(proxy: str, cnpg: bool) -> str:
    """URL of the managed database (no password: that comes from env)."""
    return (
        f"postgresql://{names.POSTGRES_USER}@{database_host(proxy, cnpg)}:{names.POSTGRES_PORT}"
        f"/{names.POSTGRES_DATABASE}"
    )


def analytics_config(
    proxy: str, analytics: analytics_api.EffectiveAnalytics, cnpg: bool, *, internal_tls: bool = False
) -> config.Analytics | None:
    """config.yaml's ``analytics`` section; None (no section: the routes answer 404) when off.

    ``internal_tls`` (``spec.tls.internal``): a managed database is reached with
    ``sslmode=verify-full`` against the fleet's CA.
    """
    if not analytics.enabled:
        return None
    url = database_url(proxy, cnpg) if analytics.managed else EXTERNAL_PLACEHOLDER_URL
    database: dict[str, Any] = {"url": url}
    if analytics.managed and internal_tls:
        database["tls"] = {"caFile": f"{names.INTERNAL_CA_DIR}/{names.CA_CERT_KEY}"}
    return config.Analytics(
        database=config.AnalyticsDatabase.model_validate(database),
        retention_days=analytics.retention_days,
        erase_on_key_delete=analytics.erase_on_key_delete,
    )


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def proxy_env(proxy: str, analytics: analytics_api.EffectiveAnalytics) -> list[dict[str, Any]]:
    """Env vars of the proxy (and erasure) containers: the password, and an External URL."""
    if not analytics.enabled:
        return []
    if analytics.managed:
        return [
            _secret_env(
                config.ANALYTICS_PASSWORD_ENV, names.postgres_secret_name(proxy), names.POSTGRES_PASSWORD_KEY
            )
        ]
    assert analytics.url_secret_ref is not None  # guaranteed by DatabaseSpec validation
    env = [
        _secret_env(settings.ENV_ANALYTICS_URL, analytics.url_secret_ref.name, analytics.url_secret_ref.key)
    ]
    if analytics.password_secret_ref is not None:
        ref = analytics.password_secret_ref
        env.append(_secret_env(config.ANALYTICS_PASSWORD_ENV, ref.name, ref.key))
    return env


def _client_pods(proxy: str) -> list[dict[str, Any]]:
    """Who may connect: the fleet's proxy pods and its erasure Jobs' pods."""
    return [
        {"podSelector": {"matchLabels": names.selector_labels(proxy, component)}}
        for component in (names.PROXY, names.HISTORY_ERASER)
    ]


def _postgres_port() -> dict[str, Any]:
    return {"protocol": "TCP", "port": names.POSTGRES_PORT}


def render_network_policy(proxy: str, namespace: str) -> dict[str, Any]:
    """Only the fleet's proxy and erasure pods reach the StatefulSet's PostgreSQL, on 5432."""
    return networkpolicy.ingress_policy(
        names.postgres_name(proxy),
        namespace,
        proxy,
        names.POSTGRES,
        names.selector_labels(proxy, names.POSTGRES),
        [{"from": _client_pods(proxy), "ports": [_postgres_port()]}],
    )


def render_cnpg_network_policy(proxy: str, namespace: str) -> dict[str, Any]:
    """The Cluster's pods: 5432 from the fleet's clients and each other, 8000 from CloudNativePG."""
    cluster = {"cnpg.io/cluster": names.cnpg_cluster_name(proxy)}
    return networkpolicy.ingress_policy(
        names.cnpg_network_policy_name(proxy),
        namespace,
        proxy,
        names.POSTGRES,
        cluster,
        [
            {
                "from": [*_client_pods(proxy), {"podSelector": {"matchLabels": cluster}}],
                "ports": [_postgres_port()],
            },
            {
                # The operator's status and backup calls, from wherever CloudNativePG runs.
                "from": [
                    {
                        "namespaceSelector": {},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "cloudnative-pg"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8000}],
            },
        ],
    )


def render_cnpg_cluster(
    proxy: str, namespace: str, analytics: analytics_api.EffectiveAnalytics, internal_tls: bool = False
) -> dict[str, Any]:
    """The CloudNativePG Cluster: ``instances`` pods on their own volumes, owner from our Secret.

    ``internal_tls``: the server certificate is the fleet's (``certificates.serverTLSSecret`` and
    ``serverCASecret``: one CA for every hop, which the proxies verify); without it CloudNativePG
    makes its own CA. Its replication and client CAs stay CloudNativePG's.
    """
    storage: dict[str, Any] = {"size": analytics.storage_size}
    if analytics.storage_class_name is not None:
        storage["storageClass"] = analytics.storage_class_name
    spec: dict[str, Any] = {"instances": analytics.instances}
    if analytics.cnpg_image is not None:
        spec["imageName"] = analytics.cnpg_image
    spec |= {
        "enableSuperuserAccess": False,
        "bootstrap": {
            "initdb": {
                "database": names.POSTGRES_DATABASE,
                "owner": names.POSTGRES_USER,
                "secret": {"name": names.postgres_secret_name(proxy)},
            }
        },
        "storage": storage,
        "resources": analytics.resources.to_dict(),
    }
    if internal_tls:
        spec["certificates"] = {
            "serverTLSSecret": names.postgres_tls_secret_name(proxy),
            "serverCASecret": names.tls_ca_secret_name(proxy),
        }
    return {
        "apiVersion": CNPG_API_VERSION,
        "kind": CNPG_KIND,
        "metadata": meta.metadata(names.cnpg_cluster_name(proxy), namespace, proxy, names.POSTGRES),
        "spec": spec,
    }


def _container(proxy: str, analytics: analytics_api.EffectiveAnalytics, tls_on: bool) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "tmp", "mountPath": SOCKET_DIR},
    ]
    if tls_on:
        mounts.append({"name": tls.TLS_VOLUME, "mountPath": TLS_DIR, "readOnly": True})
    return {
        "name": "postgres",
        "image": analytics.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", TLS_START_SCRIPT if tls_on else START_SCRIPT],
        "env": [
            {"name": "PGDATA", "value": PGDATA},
            {"name": "POSTGRES_USER", "value": names.POSTGRES_USER},
            {"name": "POSTGRES_DB", "value": names.POSTGRES_DATABASE},
            {"name": SOCKET_DIR_ENV, "value": SOCKET_DIR},
            _secret_env("POSTGRES_PASSWORD", names.postgres_secret_name(proxy), names.POSTGRES_PASSWORD_KEY),
        ],
        "ports": [
            {"name": names.POSTGRES_PORT_NAME, "containerPort": names.POSTGRES_PORT, "protocol": "TCP"}
        ],
        "resources": analytics.resources.to_dict(),
        "startupProbe": {
            "tcpSocket": {"port": names.POSTGRES_PORT_NAME},
            "periodSeconds": 2,
            "failureThreshold": 90,  # initdb of a fresh volume, or crash recovery
        },
        "livenessProbe": {
            "tcpSocket": {"port": names.POSTGRES_PORT_NAME},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "exec": {
                "command": [
                    "pg_isready",
                    "-h",
                    SOCKET_DIR,
                    "-p",
                    str(names.POSTGRES_PORT),
                    "-U",
                    names.POSTGRES_USER,
                    "-d",
                    names.POSTGRES_DATABASE,
                ]
            },
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "securityContext": meta.restricted_container_security_context(POSTGRES_USER_ID),
        "volumeMounts": mounts,
    }


def render_statefulset(
    proxy: str,
    namespace: str,
    analytics: analytics_api.EffectiveAnalytics,
    tls_on: bool = False,
    tls_fingerprint: str | None = None,
) -> dict[str, Any]:
    """One PostgreSQL on a PersistentVolumeClaim (deleted with the StatefulSet: the history goes with it).

    ``tls_on`` (spec.tls.internal): ``ssl=on`` from ``<proxy>-postgres-tls``; the certificate's
    ``tls_fingerprint`` on the pod template restarts it when the certificate is renewed.
    """
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": analytics.storage_size}},
    }
    if analytics.storage_class_name is not None:
        claim_spec["storageClassName"] = analytics.storage_class_name
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": meta.restricted_pod_security_context(POSTGRES_USER_ID),
        # A fast shutdown checkpoints; the kubelet's SIGTERM is PostgreSQL's "smart" one, so give it time.
        "terminationGracePeriodSeconds": 60,
        "containers": [_container(proxy, analytics, tls_on)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    template: dict[str, Any] = {"labels": names.labels(proxy, names.POSTGRES)}
    if tls_on:
        pod_spec["volumes"].append(tls.secret_volume(tls.TLS_VOLUME, names.postgres_tls_secret_name(proxy)))
    if tls_on and tls_fingerprint is not None:
        template["annotations"] = {constants.TLS_FINGERPRINT_ANNOTATION: tls_fingerprint}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta.metadata(names.postgres_name(proxy), namespace, proxy, names.POSTGRES),
        "spec": {
            "replicas": 1,
            "serviceName": names.postgres_name(proxy),
            "selector": {"matchLabels": names.selector_labels(proxy, names.POSTGRES)},
            "template": {"metadata": template, "spec": pod_spec},
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": names.labels(proxy, names.POSTGRES)},
                    "spec": claim_spec,
                }
            ],
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
        },
    }


def render_service(proxy: str, namespace: str) -> dict[str, Any]:
    """The StatefulSet's headless Service: ``<proxy>-postgres`` resolves to its one pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.metadata(names.postgres_name(proxy), namespace, proxy, names.POSTGRES),
        "spec": {
            "clusterIP": "None",
            "selector": names.selector_labels(proxy, names.POSTGRES),
            "ports": [
                {
                    "name": names.POSTGRES_PORT_NAME,
                    "port": names.POSTGRES_PORT,
                    "targetPort": names.POSTGRES_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _ref(obj: dict[str, Any]) -> meta.ObjectRef:
    return meta.ObjectRef(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def render_database(
    proxy: str,
    namespace: str,
    analytics: analytics_api.EffectiveAnalytics,
    cnpg_available: bool,
    tls_on: bool = False,
    tls_fingerprint: str | None = None,
) -> Database:
    """The database children for this spec, and the other form's children (and Secret) as unwanted.

    ``cnpg_available``: the CloudNativePG Cluster kind is served (``discovery.CnpgDiscovery``).
    A Cluster is listed as unwanted only when the kind is served (nothing of it can exist otherwise).
    The password Secret is unwanted when there is no managed database.
    """
    statefulset = [
        render_network_policy(proxy, namespace),
        render_service(proxy, namespace),
        render_statefulset(proxy, namespace, analytics, tls_on, tls_fingerprint),
    ]
    cnpg = [
        render_cnpg_network_policy(proxy, namespace),
        render_cnpg_cluster(proxy, namespace, analytics, internal_tls=tls_on),
    ]
    secret = meta.ObjectRef("v1", "Secret", names.postgres_secret_name(proxy))
    if not analytics.enabled or not analytics.managed:
        unwanted = [_ref(o) for o in statefulset] + [
            _ref(o) for o in cnpg if cnpg_available or o["kind"] != CNPG_KIND
        ]
        return Database(objects=[], unwanted=[*unwanted, secret])
    if cnpg_available:
        return Database(objects=cnpg, unwanted=[_ref(o) for o in statefulset])
    return Database(objects=statefulset, unwanted=[_ref(cnpg[0])])


def render_erase_job(
    proxy: str,
    namespace: str,
    key_id: str,
    key_uid: str,
    proxy_image: str,
    analytics: analytics_api.EffectiveAnalytics,
    internal_tls: bool = False,
) -> dict[str, Any] | None:
    """The Job erasing every history row of ``key_id`` (a deleted ApiKey, ``key_uid``); None when not wanted.

    Runs ``python -m weather_proxy.history --config <the fleet's config.yaml> erase <key id>`` in the
    proxy image, as the proxy user, with the proxy's database env. Retries while the database is
    away, for at most a day; a bad config (exit 2) fails at once. Idempotent: a second run erases 0.
    ``internal_tls``: the config verifies a managed database against the fleet's CA, mounted here too.
    """
    if not analytics.enabled or not analytics.erase_on_key_delete:
        return None
    container: dict[str, Any] = {
        "name": ERASER_CONTAINER,
        "image": proxy_image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "python",
            "-m",
            "weather_proxy.history",
            "--config",
            names.CONFIG_PATH,
            "erase",
            key_id,
        ],
        "env": proxy_env(proxy, analytics),
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": meta.restricted_container_security_context(meta.PROXY_USER),
        "volumeMounts": [{"name": "config", "mountPath": names.CONFIG_DIR, "readOnly": True}],
    }
    volumes = [{"name": "config", "configMap": {"name": names.config_map_name(proxy)}}]
    if internal_tls and analytics.managed:
        container["volumeMounts"].append(tls.internal_ca_mount())
        volumes.append(tls.internal_ca_volume(proxy))
    pod_labels = names.labels(proxy, names.HISTORY_ERASER)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta.metadata(
            names.erase_job_name(proxy, key_id, key_uid),
            namespace,
            proxy,
            names.HISTORY_ERASER,
            annotations={KEY_ID_ANNOTATION: key_id},
        ),
        "spec": {
            "backoffLimit": ERASE_BACKOFF_LIMIT,
            "activeDeadlineSeconds": ERASE_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": ERASE_TTL_SECONDS,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": ERASER_CONTAINER,
                            "operator": "In",
                            "values": [ERASE_BAD_CONFIG_EXIT],
                        },
                    }
                ]
            },
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {KEY_ID_ANNOTATION: key_id}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": meta.restricted_pod_security_context(meta.PROXY_USER),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
