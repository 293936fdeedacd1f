"""The platform service on Kubernetes: its entries in the z2jh values and its own manifests
(Deployment, Service, state volume, case index, network policy).

Rule: what the hub knows of the service (entry fields, roles, the server tokens' scopes, the
command line) comes from ``idsp.service.hubconfig``, the module the single-server hub uses,
so the two hubs cannot drift. The pod runs as a fixed non-root uid, read-only root
filesystem, no privilege escalation, no capabilities, the runtime's seccomp profile; it holds
no secret value: its hub token and the MLflow user key are ``secretKeyRef`` s.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from idsp.config import PlatformConfig
from idsp.deploy.manifests import (
    MLFLOW_PORT,
    MLFLOW_SELECTOR,
    SERVICE_SELECTOR,
    cases,
    claim,
    dns_egress,
    mlflow_url,
)
from idsp.deploy.secrets import CHART_SECRET, chart_token_key, secret_env
from idsp.hub.spawner import OWN_SERVER_SCOPE
from idsp.service import ACCESS_SCOPE, SERVICE_NAME, hubconfig
from idsp.service.hubconfig import MLFLOW_KEY_ENV

OWN_SERVER_TEXT = "Use one's own JupyterLab server; not held by hub admins"
NAME = "idsp-service"
PORT = 8002
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "idsp"}
SELECTOR = SERVICE_SELECTOR
# z2jh's hub network policy admits pods with this label, and the service asks the hub who
# holds each token or cookie.
HUB_ACCESS = {"hub.jupyter.org/network-access-hub": "true"}
HUB_PODS = {"app": "jupyterhub", "component": "hub"}
PROXY_PODS = {"app": "jupyterhub", "component": "proxy"}
PROXY_PORT = 8000  # the chart's proxy container port behind proxy-public:80
UID = 10002  # never the user servers' uid (z2jh singleuser.uid, 1000)
CASES_GID = 100  # z2jh singleuser.fsGid: the group user servers give the case volumes
PYTHON = "/opt/idsp/bin/python"  # the environment of deploy/image/Containerfile
STATE_MOUNT = "/var/lib/idsp"
STATE = f"{STATE_MOUNT}/service"
CASES_ROOT = "/srv/idsp/cases"
INDEX_DIR = "/etc/idsp/cases"
INDEX = f"{INDEX_DIR}/index.yaml"
# The chart generates the entry's token and keeps it in its own Secret: nothing to make.
TOKEN_KEY = chart_token_key(SERVICE_NAME)


def url(cfg: PlatformConfig) -> str:
    """The service inside the cluster: where the proxy routes ``/services/idsp/`` and
    ``/services/mlflow/`` to."""
    return f"http://{NAME}.{cfg.kubernetes.namespace}.svc.cluster.local:{PORT}"


def _base(cfg: PlatformConfig) -> str:
    return cfg.hub.base_url.rstrip("/") + "/"


def proxy_url(cfg: PlatformConfig) -> str:
    """The chart's proxy inside the cluster (its Service ``proxy-public``)."""
    return f"http://proxy-public.{cfg.kubernetes.namespace}.svc.cluster.local"


def client_url(cfg: PlatformConfig) -> str:
    """Where the library inside a user server finds the service: through the chart's proxy,
    on the same host as the hub's API (see ``hub_values``)."""
    return f"{proxy_url(cfg)}{_base(cfg)}services/{SERVICE_NAME}/"


def _egress_to(pods: dict, port: int) -> dict:
    return {"to": [{"podSelector": {"matchLabels": pods}}], "ports": [{"port": port, "protocol": "TCP"}]}


def _roles() -> dict[str, dict]:
    """``hubconfig.roles()`` keyed by name, as the chart takes them; the ``user`` role holds
    the own-server scope for itself, as on one server (``configurer``): the hub hook makes
    each server ask for it (``custom.idsp.ownServerScope``)."""
    roles = {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in hubconfig.roles()}
    user = roles["user"]
    user["scopes"] = [*user["scopes"], f"{OWN_SERVER_SCOPE}!user"]
    return roles


def hub_values(cfg: PlatformConfig) -> dict[str, Any]:
    """The chart values for the service: merged by the renderer into what platform.yaml decides."""
    entry = {k: v for k, v in hubconfig.hub_fields().items() if k != "name"}  # the key names it
    return {
        "hub": {
            # No apiToken here: the chart makes it (see TOKEN_KEY).
            "services": {SERVICE_NAME: {**entry, "url": url(cfg)}, "mlflow": {"url": url(cfg)}},
            "loadRoles": _roles(),
            "config": {
                "JupyterHub": {"custom_scopes": {OWN_SERVER_SCOPE: {"description": OWN_SERVER_TEXT}}},
                "KubeSpawner": {
                    "server_token_scopes": list(hubconfig.SERVER_TOKEN_SCOPES),
                    # User servers reach the hub's API through the proxy too, so the service
                    # and the hub share a host, the one host besides loopback where the
                    # library sends a server's token (idsp.service.link.service_url).
                    "hub_connect_url": proxy_url(cfg),
                },
            },
            "networkPolicy": {"egress": [_egress_to(SELECTOR, PORT)]},
        },
        "proxy": {"chp": {"networkPolicy": {"egress": [_egress_to(SELECTOR, PORT)]}}},
        "singleuser": {"extraEnv": {hubconfig.SERVICE_URL_ENV: client_url(cfg)}},
        "custom": {"idsp": {"ownServerScope": OWN_SERVER_SCOPE}},
    }


def user_egress() -> dict:
    """The user servers' way to the service (a rule in their egress list): the proxy."""
    return _egress_to(PROXY_PODS, PROXY_PORT)


def _env(cfg: PlatformConfig) -> list[dict]:
    """What the hub sets for a service it starts itself; here the Deployment sets it."""
    prefix = f"{_base(cfg)}services/{SERVICE_NAME}/"
    api = f"http://hub.{cfg.kubernetes.namespace}.svc.cluster.local:8081{_base(cfg)}hub/api"
    scopes = json.dumps([ACCESS_SCOPE])
    plain = {
        "LANG": "C.UTF-8",
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",  # read-only root filesystem
        "JUPYTERHUB_SERVICE_NAME": SERVICE_NAME,
        "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:{PORT}",  # where it listens in its pod
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_BASE_URL": _base(cfg),
        "JUPYTERHUB_API_URL": api,
        "JUPYTERHUB_CLIENT_ID": f"service-{SERVICE_NAME}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": prefix + "oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": scopes,
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": scopes,
    }
    return [{"name": k, "value": v} for k, v in plain.items()] + [
        secret_env("JUPYTERHUB_API_TOKEN", f"{CHART_SECRET}/{TOKEN_KEY}", TOKEN_KEY),
        secret_env(MLFLOW_KEY_ENV, f"{cfg.kubernetes.mlflow_secrets_ref}/user-key", "user-key"),
    ]


def _security() -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _case_mounts(cfg: PlatformConfig) -> tuple[list[dict], list[dict]]:
    """Every case's shared volume, as the service sees it: ``CASES_ROOT/<id>``."""
    mine = cases(cfg)
    volumes = [{"name": c["volume"], "persistentVolumeClaim": {"claimName": c["claim"]}} for c in mine]
    mounts = [{"name": c["volume"], "mountPath": f"{CASES_ROOT}/{c['id']}"} for c in mine]
    return volumes, mounts


def _pod(cfg: PlatformConfig, image: str) -> dict:
    res = cfg.kubernetes.service
    case_volumes, case_mounts = _case_mounts(cfg)
    command = hubconfig.command(
        cfg, PYTHON, state=STATE, case_index=INDEX, cases_root=CASES_ROOT, mlflow_url=mlflow_url(cfg)
    )
    service = {
        "name": "service",
        "image": image,
        "command": command,
        "env": _env(cfg),
        "ports": [{"containerPort": PORT, "name": "http"}],
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "http"}, "initialDelaySeconds": 30},
        "resources": {
            "requests": {"cpu": res.cpu_request, "memory": res.memory_request},
            "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit},
        },
        "securityContext": _security(),
        "volumeMounts": [
            {"name": "state", "mountPath": STATE_MOUNT},
            {"name": "case-index", "mountPath": INDEX_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            *case_mounts,
        ],
    }
    # The service runs only in its own 0700 folder; the volume's root belongs to the fsGroup.
    # Same image, same restricted context: no root, nothing privileged.
    state_folder = {
        "name": "state-folder",
        "image": image,
        "command": ["mkdir", "-p", "-m", "0700", STATE],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
        "securityContext": _security(),
        "volumeMounts": [{"name": "state", "mountPath": STATE_MOUNT}],
    }
    return {
        "automountServiceAccountToken": False,  # it never talks to the Kubernetes API
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": CASES_GID,
            # only when the volume's root is not ours yet: a recursive pass would add group
            # bits to the 0700 state folder, and the service refuses to start on that
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [state_folder],
        "containers": [service],
        "volumes": [
            {"name": "state", "persistentVolumeClaim": {"claimName": f"{NAME}-state"}},
            {"name": "case-index", "configMap": {"name": f"{NAME}-cases", "defaultMode": 0o444}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            *case_volumes,
        ],
    }


def _deployment(cfg: PlatformConfig, image: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": cfg.kubernetes.namespace, "labels": LABELS},
        "spec": {
            "replicas": 1,
            # one writer of the audit log and one holder of the state volume: never two pods
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": SELECTOR},
            "template": {"metadata": {"labels": {**LABELS, **HUB_ACCESS}}, "spec": _pod(cfg, image)},
        },
    }


def _service(cfg: PlatformConfig) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": cfg.kubernetes.namespace, "labels": LABELS},
        "spec": {
            "type": "ClusterIP",
            "selector": SELECTOR,
            "ports": [{"port": PORT, "targetPort": "http", "name": "http", "protocol": "TCP"}],
        },
    }


def _case_index(cfg: PlatformConfig) -> dict:
    """The cases as the service sees them. No member list: on Kubernetes a case's members are
    its hub group (from the login provider), as for the hub hook's volume mounts."""
    index = {"cases": [{"id": c["id"], "path": f"{CASES_ROOT}/{c['id']}", "members": []} for c in cases(cfg)]}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{NAME}-cases", "namespace": cfg.kubernetes.namespace, "labels": LABELS},
        "data": {"index.yaml": yaml.safe_dump(index, sort_keys=False)},
    }


def _policy(cfg: PlatformConfig) -> dict:
    """In: only the hub and the proxy (user servers come through the proxy). Out: the hub's
    API, MLflow and DNS."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": NAME, "namespace": cfg.kubernetes.namespace, "labels": LABELS},
        "spec": {
            "podSelector": {"matchLabels": SELECTOR},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": HUB_PODS}}, {"podSelector": {"matchLabels": PROXY_PODS}}],
                    "ports": [{"port": PORT, "protocol": "TCP"}],
                }
            ],
            "egress": [_egress_to(HUB_PODS, 8081), _egress_to(MLFLOW_SELECTOR, MLFLOW_PORT), *dns_egress()],
        },
    }


def render(cfg: PlatformConfig, image: str) -> dict[str, list[dict]]:
    """File name -> documents of the platform service."""
    state = claim(cfg, f"{NAME}-state", cfg.kubernetes.service.state_volume_size, "ReadWriteOnce", LABELS)
    return {
        "platform-service.yaml": [_deployment(cfg, image), _service(cfg), state, _case_index(cfg)],
        "networkpolicy-platform-service.yaml": [_policy(cfg)],
    }
