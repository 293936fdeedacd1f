"""The Kubernetes Secrets a rendered deployment refers to, by name and key.

Rule: rendered files refer to a secret only through ``secret_env`` (a ``secretKeyRef``) or a
Secret volume, and every Secret they name is listed by ``secret_refs``; no secret value is
ever rendered.
"""

from __future__ import annotations

from idsp.config import PlatformConfig


def split_ref(ref: str, default_key: str) -> tuple[str, str]:
    """``secret/key`` (or ``secret``, meaning ``default_key``) from platform.yaml."""
    name, _, key = ref.partition("/")
    return name, key or default_key


def secret_env(name: str, ref: str, default_key: str) -> dict:
    """A container env entry that takes its value from the Secret ``ref``."""
    secret, key = split_ref(ref, default_key)
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def secret_refs(cfg: PlatformConfig) -> list[tuple[str, str, str]]:
    """(secret, key, what) for every Secret the rendered output refers to."""
    k = cfg.kubernetes
    oidc_name, oidc_key = split_ref(k.oidc.client_secret_ref, "client-secret")
    pg_name, pg_key = split_ref(k.postgres_secret_ref, "hub-password")
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


def secrets_md(cfg: PlatformConfig) -> str:
    rows = "\n".join(f"| `{s}` | `{k}` | {w} |" for s, k, w in secret_refs(cfg))
    return (
        "# Secrets this deployment refers to\n\n"
        "Rendered by `idsp deploy render kubernetes`. The values and manifests refer to these\n"
        f"Kubernetes Secrets in namespace `{cfg.kubernetes.namespace}` by name and key; none of\n"
        "their values is in the rendered files. Create them before `helm install`.\n\n"
        "| Secret | key | what |\n|---|---|---|\n" + rows + "\n"
    )
