"""Kubernetes manifests beside the z2jh chart: MLflow on PostgreSQL + S3, its network policy,
and one shared volume per case.

Rule: every manifest is a plain ``apiVersion``/``kind`` document that validates against the
Kubernetes API schemas of the versions the chart supports (tests/deploy checks it); secrets
are referred to through ``idsp.deploy.secrets``, never written.
"""

from __future__ import annotations

import re
from typing import Any

from idsp.config import PlatformConfig
from idsp.deploy.secrets import secret_env, split_ref
from idsp.hub.cases import read_index

MLFLOW_PORT = 5000
MLFLOW_LABELS = {"app.kubernetes.io/name": "idsp-mlflow", "app.kubernetes.io/part-of": "idsp"}
MLFLOW_SELECTOR = {"app.kubernetes.io/name": "idsp-mlflow"}
# The platform service's pods (idsp.deploy.service): they forward /services/mlflow/ to MLflow.
SERVICE_SELECTOR = {"app.kubernetes.io/name": "idsp-service"}
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def mlflow_url(cfg: PlatformConfig) -> str:
    """MLflow inside the cluster, as the hub and the user servers reach it."""
    return f"http://idsp-mlflow.{cfg.kubernetes.namespace}.svc.cluster.local:{MLFLOW_PORT}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:50]


def cases(cfg: PlatformConfig) -> list[dict]:
    """The cases of the platform's case index, with the volume each is mounted from."""
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


def _mlflow_container(cfg: PlatformConfig) -> dict:
    k = cfg.kubernetes
    pg_name, _ = split_ref(k.postgres_secret_ref, "hub-password")
    host = f"idsp-mlflow.{k.namespace}.svc.cluster.local"
    return {
        "name": "mlflow",
        "image": k.mlflow_image,
        "args": [
            "mlflow", "server", "--app-name", "basic-auth",
            "--host", "0.0.0.0", "--port", str(MLFLOW_PORT),
            "--backend-store-uri", "$(MLFLOW_BACKEND_STORE_URI)",
            "--artifacts-destination", f"s3://{k.s3.bucket}/artifacts",
            "--allowed-hosts", f"idsp-mlflow,{host},{host}:{MLFLOW_PORT}",
        ],  # fmt: skip
        "env": [
            secret_env("MLFLOW_BACKEND_STORE_URI", f"{pg_name}/mlflow-uri", "mlflow-uri"),
            secret_env("AWS_ACCESS_KEY_ID", f"{k.s3.credentials_ref}/AWS_ACCESS_KEY_ID", ""),
            secret_env("AWS_SECRET_ACCESS_KEY", f"{k.s3.credentials_ref}/AWS_SECRET_ACCESS_KEY", ""),
            {"name": "MLFLOW_S3_ENDPOINT_URL", "value": k.s3.endpoint_url},
            {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": "/etc/mlflow/basic_auth.ini"},
        ],
        "ports": [{"containerPort": MLFLOW_PORT, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "initialDelaySeconds": 60},
        "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "auth", "mountPath": "/etc/mlflow", "readOnly": True}],
    }


def _mlflow_deployment(cfg: PlatformConfig) -> dict:
    k = cfg.kubernetes
    auth = {
        "secretName": k.mlflow_secrets_ref,
        "items": [{"key": "basic_auth.ini", "path": "basic_auth.ini"}],
        "defaultMode": 0o400,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "idsp-mlflow", "namespace": k.namespace, "labels": MLFLOW_LABELS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": MLFLOW_SELECTOR},
            "template": {
                "metadata": {"labels": MLFLOW_LABELS},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
                    "containers": [_mlflow_container(cfg)],
                    "volumes": [{"name": "auth", "secret": auth}],
                },
            },
        },
    }


def _mlflow_service(cfg: PlatformConfig) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "idsp-mlflow", "namespace": cfg.kubernetes.namespace, "labels": MLFLOW_LABELS},
        "spec": {
            "selector": MLFLOW_SELECTOR,
            "ports": [{"port": MLFLOW_PORT, "targetPort": "http", "name": "http"}],
        },
    }


def _mlflow_policy(cfg: PlatformConfig) -> dict:
    """Only the hub, the user servers and the platform service reach MLflow."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "idsp-mlflow", "namespace": cfg.kubernetes.namespace},
        "spec": {
            "podSelector": {"matchLabels": MLFLOW_SELECTOR},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}},
                        {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "singleuser-server"}}},
                        {"podSelector": {"matchLabels": SERVICE_SELECTOR}},
                    ],
                    "ports": [{"port": MLFLOW_PORT, "protocol": "TCP"}],
                }
            ],
        },
    }


def claim(cfg: PlatformConfig, name: str, size: str, mode: str, labels: dict[str, str]) -> dict:
    """A PersistentVolumeClaim of the platform's storage class (the cluster's default if unset)."""
    k = cfg.kubernetes
    spec: dict[str, Any] = {"accessModes": [mode], "resources": {"requests": {"storage": size}}}
    if k.storage_class:
        spec["storageClassName"] = k.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": k.namespace, "labels": labels},
        "spec": spec,
    }


def dns_egress() -> list[dict]:
    """DNS where z2jh's own policies allow it (dnsPortsKubeSystemNamespace, dnsPortsPrivateIPs)."""
    ports = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    kube_system = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
    return [{"to": [kube_system, *({"ipBlock": {"cidr": r}} for r in PRIVATE_RANGES)], "ports": ports}]


def _case_volumes(cfg: PlatformConfig) -> list[dict]:
    # ReadWriteMany: every member's server and the platform service mount it at once
    size = cfg.kubernetes.case_volume_size
    return [claim(cfg, c["claim"], size, "ReadWriteMany", {"idsp/case": c["id"]}) for c in cases(cfg)]


def render_manifests(cfg: PlatformConfig) -> dict[str, list[dict]]:
    """File name -> documents: MLflow, its network policy, the case volumes."""
    return {
        "mlflow.yaml": [_mlflow_deployment(cfg), _mlflow_service(cfg)],
        "networkpolicy-mlflow.yaml": [_mlflow_policy(cfg)],
        "case-volumes.yaml": _case_volumes(cfg),
    }
