"""``platform.yaml`` -> Zero to JupyterHub Helm values + manifests for MLflow on Kubernetes.

Rule: ``render_values`` is the Kubernetes counterpart of ``idsp.hub.configurer.apply``: the
same settings (limits, culling, password-free OIDC login, groups, cases, MLflow wiring),
rendered as chart values that validate against the chart's own ``values.schema``. No secret
value appears in the output; ``secret_refs`` lists every Secret the cluster must hold.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from idsp.config import PlatformConfig
from idsp.hub.cases import read_index

MLFLOW_PORT = 5000
EXTRA_CONFIG_KEY = "idsp-00-profiles-and-cases"

# Runs inside the hub pod (z2jh image: KubeSpawner, tornado): profiles per group, one
# volume per case the user is a member of, MLflow account and credentials per user.
EXTRA_CONFIG = r'''
import base64, hashlib, hmac, json, os
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from z2jh import get_config

_cases = get_config("custom.idsp.cases", [])
_profiles = get_config("custom.idsp.profiles", [])
_mlflow = get_config("custom.idsp.mlflow", {})


def _groups(spawner):
    return {g.name for g in spawner.user.groups}


def _profile_list(spawner):
    mine = _groups(spawner)
    return [
        {k: v for k, v in p.items() if k != "groups"}
        for p in _profiles
        if not p.get("groups") or mine & set(p["groups"])
    ]


async def _mlflow_call(method, path, body):
    auth = base64.b64encode(
        f"{_mlflow['adminUser']}:{os.environ['IDSP_MLFLOW_ADMIN_PASSWORD']}".encode()
    ).decode()
    try:
        return await AsyncHTTPClient().fetch(
            _mlflow["url"] + path, method=method, body=body and json.dumps(body),
            headers={"Authorization": "Basic " + auth, "Content-Type": "application/json"},
        )
    except HTTPClientError as exc:
        return exc.response


async def _pre_spawn(spawner):
    mine = _groups(spawner)
    for case in _cases:
        if case["group"] in mine:
            spawner.volumes = spawner.volumes + [
                {"name": case["volume"], "persistentVolumeClaim": {"claimName": case["claim"]}}
            ]
            spawner.volume_mounts = spawner.volume_mounts + [
                {"name": case["volume"], "mountPath": case["mountPath"]}
            ]
    name = spawner.user.name
    password = hmac.new(
        os.environ["IDSP_MLFLOW_USER_KEY"].encode(), f"mlflow:{name}".encode(), hashlib.sha256
    ).hexdigest()
    r = await _mlflow_call("POST", "/api/2.0/mlflow/users/create", {"username": name, "password": password})
    if r is not None and r.code not in (200, 400):
        raise RuntimeError(f"MLflow user {name}: HTTP {r.code}")
    for case in _cases:
        if case["group"] in mine:
            await _mlflow_call("POST", "/api/2.0/mlflow/experiments/create", {"name": case["id"]})
            r = await _mlflow_call("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + case["id"], None)
            if r is not None and r.code == 200:
                exp = json.loads(r.body)["experiment"]["experiment_id"]
                await _mlflow_call("POST", "/api/3.0/mlflow/users/permissions/grant", {
                    "username": name, "resource_type": "experiment",
                    "resource_id": exp, "permission": "EDIT"})
    spawner.environment.update({
        "MLFLOW_TRACKING_URI": _mlflow["url"],
        "MLFLOW_TRACKING_USERNAME": name,
        "MLFLOW_TRACKING_PASSWORD": password,
    })


c.KubeSpawner.profile_list = _profile_list
c.KubeSpawner.pre_spawn_hook = _pre_spawn
'''


def _split_ref(ref: str, default_key: str) -> tuple[str, str]:
    name, _, key = ref.partition("/")
    return name, key or default_key


def _secret_env(name: str, ref: str, default_key: str) -> dict:
    secret, key = _split_ref(ref, default_key)
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:50]


def _size_k8s(memory: str) -> str:
    return memory  # platform.yaml sizes (512M, 2G) are valid Kubernetes quantities


def _authenticator(cfg: PlatformConfig) -> tuple[dict, list]:
    k = cfg.kubernetes
    o = k.oidc
    callback = f"https://{k.hub_host}{cfg.hub.base_url.rstrip('/')}/hub/oauth_callback"
    groups = [f"inspectorate-{i.lower()}" for i in cfg.hub.inspectorates]
    common = {
        "client_id": o.client_id,
        "oauth_callback_url": callback,
        "manage_groups": True,
        "allowed_groups": groups + list(o.admin_groups),
        "admin_groups": list(o.admin_groups),
        "scope": ["openid", "profile", "email"],
    }
    if o.provider == "entra":
        section = "AzureAdOAuthenticator"
        settings = {
            **common,
            "tenant_id": o.tenant_id or "SET-kubernetes.oidc.tenant_id",
            "username_claim": "preferred_username",
            "auth_state_groups_key": "user.groups",
        }
        klass = "azuread"
    else:
        section = "GenericOAuthenticator"
        issuer = o.issuer_url.rstrip("/")
        settings = {
            **common,
            "authorize_url": f"{issuer}/protocol/openid-connect/auth",
            "token_url": f"{issuer}/protocol/openid-connect/token",
            "userdata_url": f"{issuer}/protocol/openid-connect/userinfo",
            "scope": ["openid", "profile", "email", "groups"],
            "username_claim": "preferred_username",
            "auth_state_groups_key": f"oauth_user.{o.groups_claim}",
        }
        klass = "generic-oauth"
    config = {
        "JupyterHub": {"authenticator_class": klass, "admin_access": False},
        section: settings,
    }
    env = [_secret_env("OAUTH_CLIENT_SECRET", o.client_secret_ref, "client-secret")]
    return config, env


def _cases(cfg: PlatformConfig) -> list[dict]:
    out = []
    for case in read_index(cfg.path("case_index"), cfg.path("cases_root")):
        slug = _slug(case.id)
        out.append(
            {
                "id": case.id,
                "group": case.group,
                "volume": f"case-{slug}",
                "claim": f"idsp-case-{slug}",
                "mountPath": f"/home/jovyan/cases/{case.id}",
                "members": list(case.members),
            }
        )
    return out


def _profiles(cfg: PlatformConfig) -> list[dict]:
    lim = cfg.hub.limits
    profiles = [
        {
            "display_name": "Standaard (JupyterLab)",
            "slug": "standard",
            "description": f"{lim.cpu} CPU, {lim.memory} geheugen",
            "default": True,
        }
    ]
    for name in cfg.hub.inspectorates:
        group = f"inspectorate-{name.lower()}"
        profiles.append(
            {
                "display_name": f"{name}: groot (2x geheugen)",
                "slug": f"{name.lower()}-large",
                "description": f"Voor leden van {name}",
                "groups": [group],
                "kubespawner_override": {
                    "mem_limit": _double(lim.memory),
                    "cpu_limit": lim.cpu * 2,
                },
            }
        )
    return profiles


def _double(memory: str) -> str:
    number, unit = memory[:-1], memory[-1]
    return f"{float(number) * 2:g}{unit}"


def render_values(cfg: PlatformConfig) -> dict[str, Any]:
    """The z2jh chart values for ``cfg`` (to be merged by Helm over the chart defaults)."""
    k = cfg.kubernetes
    auth_config, auth_env = _authenticator(cfg)
    image, _, tag = k.image.rpartition(":")
    mlflow_url = f"http://idsp-mlflow.{k.namespace}.svc.cluster.local:{MLFLOW_PORT}"
    storage: dict[str, Any] = {
        "type": "dynamic",
        "capacity": k.home_volume_size,
    }
    if k.storage_class:
        storage["dynamic"] = {"storageClass": k.storage_class}
    values: dict[str, Any] = {
        "hub": {
            "baseUrl": cfg.hub.base_url,
            "config": auth_config,
            "db": {"type": "postgres", "url": f"postgresql+psycopg2://jupyterhub@idsp-postgres.{k.namespace}.svc.cluster.local:5432/jupyterhub"},
            "extraEnv": {
                # libpq reads the password from the environment: no password in the values.
                "PGPASSWORD": {"valueFrom": {"secretKeyRef": {"name": _split_ref(k.postgres_secret_ref, "hub-password")[0], "key": _split_ref(k.postgres_secret_ref, "hub-password")[1]}}},
                "IDSP_MLFLOW_ADMIN_PASSWORD": {"valueFrom": {"secretKeyRef": {"name": k.mlflow_secrets_ref, "key": "admin-password"}}},
                "IDSP_MLFLOW_USER_KEY": {"valueFrom": {"secretKeyRef": {"name": k.mlflow_secrets_ref, "key": "user-key"}}},
                **{e["name"]: {"valueFrom": e["valueFrom"]} for e in auth_env},
            },
            "extraConfig": {EXTRA_CONFIG_KEY: EXTRA_CONFIG},
            "networkPolicy": {"enabled": True},
            "loadRoles": {},
        },
        "proxy": {
            "service": {"type": "ClusterIP"},
            "chp": {"networkPolicy": {"enabled": True}},
        },
        "singleuser": {
            "image": {"name": image, "tag": tag or "latest"},
            "cpu": {"limit": cfg.hub.limits.cpu, "guarantee": min(0.5, cfg.hub.limits.cpu)},
            "memory": {"limit": _size_k8s(cfg.hub.limits.memory), "guarantee": _size_k8s(cfg.hub.limits.memory)},
            "storage": storage,
            "defaultUrl": "/lab",
            "allowPrivilegeEscalation": False,
            "networkPolicy": {
                "enabled": True,
                "egressAllowRules": {
                    "cloudMetadataServer": False,
                    "privateIPs": False,
                    "nonPrivateIPs": False,
                    "dnsPortsCloudMetadataServer": False,
                    "dnsPortsKubeSystemNamespace": True,
                    "dnsPortsPrivateIPs": True,
                },
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "idsp-mlflow"}}}],
                        "ports": [{"port": MLFLOW_PORT, "protocol": "TCP"}],
                    }
                ],
            },
            "extraEnv": {"IDSP_HOME": "/home/jovyan/.idsp"},
        },
        "cull": {
            "enabled": cfg.hub.cull.enabled,
            "timeout": cfg.hub.cull.timeout_seconds,
            "every": cfg.hub.cull.every_seconds,
        },
        "ingress": {
            "enabled": True,
            "hosts": [k.hub_host],
            "tls": [{"hosts": [k.hub_host], "secretName": "idsp-tls"}],
        },
        "custom": {
            "idsp": {
                "cases": _cases(cfg),
                "profiles": _profiles(cfg),
                "mlflow": {"url": mlflow_url, "adminUser": "idsp-mlflow-admin"},
            }
        },
        "debug": {"enabled": False},
    }
    return values


def secret_refs(cfg: PlatformConfig) -> list[tuple[str, str, str]]:
    """(secret, key, what) for every Secret the rendered output refers to."""
    k = cfg.kubernetes
    oidc_name, oidc_key = _split_ref(k.oidc.client_secret_ref, "client-secret")
    pg_name, pg_key = _split_ref(k.postgres_secret_ref, "hub-password")
    return [
        (oidc_name, oidc_key, f"OIDC client secret of `{k.oidc.client_id}` ({k.oidc.provider})"),
        (pg_name, pg_key, "password of PostgreSQL role `jupyterhub` (hub database)"),
        (pg_name, "mlflow-uri", "postgresql://mlflow:PASSWORD@HOST:5432/mlflow (MLflow backend store)"),
        (k.s3.credentials_ref, "AWS_ACCESS_KEY_ID", f"S3 access key for bucket `{k.s3.bucket}`"),
        (k.s3.credentials_ref, "AWS_SECRET_ACCESS_KEY", "S3 secret key"),
        (k.mlflow_secrets_ref, "basic_auth.ini", "MLflow basic-auth config (default_permission = NO_PERMISSIONS)"),
        (k.mlflow_secrets_ref, "admin-password", "MLflow admin password (same as in basic_auth.ini)"),
        (k.mlflow_secrets_ref, "user-key", "HMAC key that derives each user's MLflow password"),
        ("idsp-tls", "tls.crt/tls.key", f"TLS certificate for {k.hub_host}"),
    ]


def render_manifests(cfg: PlatformConfig) -> dict[str, list[dict]]:
    """MLflow (PostgreSQL + S3), its network policy and one shared volume per case."""
    k = cfg.kubernetes
    labels = {"app.kubernetes.io/name": "idsp-mlflow", "app.kubernetes.io/part-of": "idsp"}
    pg_name, _ = _split_ref(k.postgres_secret_ref, "hub-password")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "idsp-mlflow", "namespace": k.namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "idsp-mlflow"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
                    "containers": [
                        {
                            "name": "mlflow",
                            "image": k.mlflow_image,
                            "args": [
                                "mlflow", "server", "--app-name", "basic-auth",
                                "--host", "0.0.0.0", "--port", str(MLFLOW_PORT),
                                "--backend-store-uri", "$(MLFLOW_BACKEND_STORE_URI)",
                                "--artifacts-destination", f"s3://{k.s3.bucket}/artifacts",
                                "--allowed-hosts", f"idsp-mlflow,idsp-mlflow.{k.namespace}.svc.cluster.local,idsp-mlflow.{k.namespace}.svc.cluster.local:{MLFLOW_PORT}",
                            ],  # fmt: skip
                            "env": [
                                _secret_env("MLFLOW_BACKEND_STORE_URI", f"{pg_name}/mlflow-uri", "mlflow-uri"),
                                _secret_env("AWS_ACCESS_KEY_ID", f"{k.s3.credentials_ref}/AWS_ACCESS_KEY_ID", ""),
                                _secret_env("AWS_SECRET_ACCESS_KEY", f"{k.s3.credentials_ref}/AWS_SECRET_ACCESS_KEY", ""),
                                {"name": "MLFLOW_S3_ENDPOINT_URL", "value": k.s3.endpoint_url},
                                {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": "/etc/mlflow/basic_auth.ini"},
                            ],
                            "ports": [{"containerPort": MLFLOW_PORT, "name": "http"}],
                            "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5},
                            "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "initialDelaySeconds": 60},
                            "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False, "capabilities": {"drop": ["ALL"]}},
                            "volumeMounts": [{"name": "auth", "mountPath": "/etc/mlflow", "readOnly": True}],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "auth",
                            "secret": {
                                "secretName": k.mlflow_secrets_ref,
                                "items": [{"key": "basic_auth.ini", "path": "basic_auth.ini"}],
                                "defaultMode": 0o400,
                            },
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "idsp-mlflow", "namespace": k.namespace, "labels": labels},
        "spec": {"selector": {"app.kubernetes.io/name": "idsp-mlflow"}, "ports": [{"port": MLFLOW_PORT, "targetPort": "http", "name": "http"}]},
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "idsp-mlflow", "namespace": k.namespace},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "idsp-mlflow"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}},
                        {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "singleuser-server"}}},
                    ],
                    "ports": [{"port": MLFLOW_PORT, "protocol": "TCP"}],
                }
            ],
        },
    }
    volumes = []
    for case in _cases(cfg):
        spec: dict[str, Any] = {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": k.case_volume_size}},
        }
        if k.storage_class:
            spec["storageClassName"] = k.storage_class
        volumes.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": case["claim"], "namespace": k.namespace, "labels": {"idsp/case": case["id"]}},
                "spec": spec,
            }
        )
    return {
        "mlflow.yaml": [deployment, service],
        "networkpolicy-mlflow.yaml": [policy],
        "case-volumes.yaml": volumes,
    }


def merge(base: Any, over: Any) -> Any:
    """Helm's merge of user values over chart defaults (maps merge, the rest replaces)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = copy.deepcopy(base)
        for key, value in over.items():
            out[key] = merge(out.get(key), value) if key in out else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


def validate_values(values: dict, schema: dict, defaults: dict) -> list[str]:
    """Errors of the merged values against the chart's schema (empty list: valid)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    merged = merge(defaults, values)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
    ]


def _secrets_md(cfg: PlatformConfig) -> str:
    rows = "\n".join(f"| `{s}` | `{k}` | {w} |" for s, k, w in secret_refs(cfg))
    return (
        "# Secrets this deployment refers to\n\n"
        "Rendered by `idsp deploy render kubernetes`. The values and manifests refer to these\n"
        f"Kubernetes Secrets in namespace `{cfg.kubernetes.namespace}` by name and key; none of\n"
        "their values is in the rendered files. Create them before `helm install`.\n\n"
        "| Secret | key | what |\n|---|---|---|\n" + rows + "\n"
    )


def write(cfg: PlatformConfig, out: Path) -> list[Path]:
    from idsp.hub.state import write_private  # atomic writes

    out.mkdir(parents=True, exist_ok=True)
    written = []

    def _put(rel: str, text: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, text)
        path.chmod(0o644)  # no secrets inside: readable like any manifest
        written.append(path)

    header = "# Rendered by `idsp deploy render kubernetes` from platform.yaml; do not edit.\n"
    _put("values.yaml", header + yaml.safe_dump(render_values(cfg), sort_keys=False, allow_unicode=True))
    for name, docs in render_manifests(cfg).items():
        _put(f"manifests/{name}", header + yaml.safe_dump_all(docs, sort_keys=False) if docs else header)
    _put("SECRETS.md", _secrets_md(cfg))
    return written
