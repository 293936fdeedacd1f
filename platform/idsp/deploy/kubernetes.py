"""``platform.yaml`` -> Zero to JupyterHub Helm values + manifests for MLflow on Kubernetes.

Rule: ``render_values`` is the Kubernetes counterpart of ``idsp.hub.configurer.apply``: the
same settings (limits, culling, password-free OIDC login, groups, cases, MLflow wiring),
rendered as chart values that validate against the chart's own ``values.schema``. The fixed
part is read from the deployment folder (``kubernetes/values.yaml``, ``kubernetes/hub_hook.py``);
what ``platform.yaml`` decides is merged over it and never also set there. No secret value
appears in the output; ``secret_refs`` lists every Secret the cluster must hold.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from idsp.config import PlatformConfig
from idsp.defaults import VERSION
from idsp.deploy import manifests
from idsp.deploy import service as platform_service
from idsp.deploy.folder import deploy_root, read_text
from idsp.deploy.manifests import MLFLOW_PORT, MLFLOW_SELECTOR, cases, mlflow_url
from idsp.deploy.secrets import secret_env, secret_refs, secrets_md, split_ref
from idsp.errors import UserError
from idsp.files import atomic_write
from idsp.hub import mlflow_password

__all__ = ["render_manifests", "render_values", "secret_refs", "validate_values", "write"]

OVERLAY = "kubernetes/values.yaml"
HOOK = "kubernetes/hub_hook.py"
EXTRA_CONFIG_KEY = "idsp-00-profiles-and-cases"
# The hook imports `idsp.hub.mlflow_password`; mounted below the hub's config folder (on the
# hub's sys.path) it is found as a namespace package, the chart's image has no idsp.
PASSWORD_MODULE_KEY = "idsp-mlflow-password"
PASSWORD_MODULE_PATH = "/usr/local/etc/jupyterhub/idsp/hub/mlflow_password.py"


def image_ref(ref: str, default_tag: str) -> tuple[str, str]:
    """(name, tag) of ``registry/name[:tag]``; a port (``host:5000/x``) is not a tag."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, default_tag
    return name, tag


def user_image(cfg: PlatformConfig) -> str:
    """The single-user image with its tag: the user servers' and the platform service's."""
    name, tag = image_ref(cfg.kubernetes.image, VERSION)
    return f"{name}:{tag}"


def render_manifests(cfg: PlatformConfig) -> dict[str, list[dict]]:
    """File name -> documents beside the chart: MLflow, the case volumes, the platform service."""
    return {**manifests.render_manifests(cfg), **platform_service.render(cfg, user_image(cfg))}


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
    config = {"JupyterHub": {"authenticator_class": klass}, section: settings}
    env = [secret_env("OAUTH_CLIENT_SECRET", o.client_secret_ref, "client-secret")]
    return config, env


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
        profiles.append(
            {
                "display_name": f"{name}: groot (2x geheugen)",
                "slug": f"{name.lower()}-large",
                "description": f"Voor leden van {name}",
                "groups": [f"inspectorate-{name.lower()}"],
                "kubespawner_override": {"mem_limit": _double(lim.memory), "cpu_limit": lim.cpu * 2},
            }
        )
    return profiles


def _double(memory: str) -> str:
    # platform.yaml sizes (512M, 2G) are valid Kubernetes quantities as they are
    number, unit = memory[:-1], memory[-1]
    return f"{float(number) * 2:g}{unit}"


def _secret_from(secret: str, key: str) -> dict:
    return {"valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _hub(cfg: PlatformConfig, root: Path) -> dict[str, Any]:
    k = cfg.kubernetes
    auth_config, auth_env = _authenticator(cfg)
    pg_secret, pg_key = split_ref(k.postgres_secret_ref, "hub-password")
    db_host = f"idsp-postgres.{k.namespace}.svc.cluster.local:5432"
    return {
        "baseUrl": cfg.hub.base_url,
        "config": auth_config,
        "db": {"type": "postgres", "url": f"postgresql+psycopg2://jupyterhub@{db_host}/jupyterhub"},
        "extraEnv": {
            # libpq reads the password from the environment: no password in the values.
            "PGPASSWORD": _secret_from(pg_secret, pg_key),
            "IDSP_MLFLOW_ADMIN_PASSWORD": _secret_from(k.mlflow_secrets_ref, "admin-password"),
            "IDSP_MLFLOW_USER_KEY": _secret_from(k.mlflow_secrets_ref, "user-key"),
            **{e["name"]: {"valueFrom": e["valueFrom"]} for e in auth_env},
        },
        "extraConfig": {EXTRA_CONFIG_KEY: read_text(root, HOOK)},
        "extraFiles": {
            PASSWORD_MODULE_KEY: {
                "mountPath": PASSWORD_MODULE_PATH,
                "stringData": Path(mlflow_password.__file__).read_text(encoding="utf-8"),
            }
        },
    }


def _singleuser(cfg: PlatformConfig) -> dict[str, Any]:
    k = cfg.kubernetes
    lim = cfg.hub.limits
    name, tag = image_ref(k.image, VERSION)
    storage: dict[str, Any] = {"type": "dynamic", "capacity": k.home_volume_size}
    if k.storage_class:
        storage["dynamic"] = {"storageClass": k.storage_class}
    return {
        "image": {"name": name, "tag": tag},
        "cpu": {"limit": lim.cpu, "guarantee": min(0.5, lim.cpu)},
        "memory": {"limit": lim.memory, "guarantee": lim.memory},
        "storage": storage,
        "networkPolicy": {
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": MLFLOW_SELECTOR}}],
                    "ports": [{"port": MLFLOW_PORT, "protocol": "TCP"}],
                },
                platform_service.user_egress(),
            ],
        },
        "extraEnv": {"IDSP_HOME": "/home/jovyan/.idsp"},
    }


def platform_values(cfg: PlatformConfig, root: Path) -> dict[str, Any]:
    """The chart values ``platform.yaml`` decides (merged over the overlay file)."""
    k = cfg.kubernetes
    values = {
        "hub": _hub(cfg, root),
        "singleuser": _singleuser(cfg),
        "cull": {
            "enabled": cfg.hub.cull.enabled,
            "timeout": cfg.hub.cull.timeout_seconds,
            "every": cfg.hub.cull.every_seconds,
        },
        "ingress": {"hosts": [k.hub_host], "tls": [{"hosts": [k.hub_host], "secretName": "idsp-tls"}]},
        "custom": {
            "idsp": {
                "cases": cases(cfg),
                "profiles": _profiles(cfg),
                "mlflow": {"url": mlflow_url(cfg), "adminUser": "idsp-mlflow-admin"},
            }
        },
    }
    # the platform service: hub entries, roles, server token scopes, routes (maps only)
    return merge(values, platform_service.hub_values(cfg))


def value_paths(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Key paths of the leaves; an empty mapping and a list are leaves."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from value_paths(value, (*path, str(key)))
    else:
        yield path


def load_overlay(root: Path) -> dict[str, Any]:
    text = read_text(root, OVERLAY)
    try:
        overlay = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"not valid YAML: {exc}", where=str(root / OVERLAY), fix="Correct the file") from exc
    if not isinstance(overlay, dict):
        raise UserError("expected a mapping of chart values", where=str(root / OVERLAY), fix="Correct the file")
    return overlay


def render_values(cfg: PlatformConfig, deploy_dir: Path | None = None) -> dict[str, Any]:
    """The z2jh chart values for ``cfg`` (to be merged by Helm over the chart defaults)."""
    root = deploy_root(deploy_dir)
    overlay = load_overlay(root)
    decided = platform_values(cfg, root)
    ours = set(value_paths(decided))
    clash = sorted(p for p in value_paths(overlay) if any(p[: len(q)] == q or q[: len(p)] == p for q in ours))
    if clash:
        raise UserError(
            "sets chart values that platform.yaml decides: " + ", ".join(".".join(p) for p in clash),
            where=str(root / OVERLAY),
            fix="Remove them from that file and set the matching platform.yaml settings instead",
        )
    return merge(overlay, decided)


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
    validator = jsonschema.Draft7Validator(schema)
    merged = merge(defaults, values)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
    ]


HEADER = "# Rendered by `idsp deploy render kubernetes` from platform.yaml; do not edit.\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the hook, the password module, the case index) as readable ``|``
    blocks, and every mapping written out in full: no ``&id001`` anchors where two places
    share one Python dict (a label selector), which a reader would have to resolve."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def rendered_files(cfg: PlatformConfig, deploy_dir: Path | None = None) -> dict[str, str]:
    """Relative path -> text of every rendered file."""
    values = render_values(cfg, deploy_dir)
    text = yaml.dump(values, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
    files = {"values.yaml": HEADER + text}
    for name, docs in render_manifests(cfg).items():
        text = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        files[f"manifests/{name}"] = HEADER + text if docs else HEADER
    files["SECRETS.md"] = secrets_md(cfg)
    return files


def write(cfg: PlatformConfig, out: Path, deploy_dir: Path | None = None) -> list[Path]:
    """Write the rendered files below ``out``; none holds a secret, so all are 0644."""
    written = []
    for relative, text in rendered_files(cfg, deploy_dir).items():
        written.append(atomic_write(out / relative, text, mode=0o644))
    return written
