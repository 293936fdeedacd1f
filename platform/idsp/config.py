"""The platform configuration: one schema, one set of defaults, one loader.

Rule: ``platform.yaml`` and ``IDSP_*`` environment variables are parsed here, once, into
a frozen ``PlatformConfig``; nothing else reads them. Every default lives in the schema
below, so an empty file is a complete, working configuration (the embedded default).
Environment variables win over the file: ``IDSP_HUB__LIMITS__MEMORY=4G`` sets
``hub.limits.memory`` (sections are joined by a double underscore).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from idsp.defaults import APPROVAL_VALID_DAYS, APPROVAL_VALID_DAYS_MAX
from idsp.errors import ConfigError
from idsp.files import load_yaml

ENV_PREFIX = "IDSP_"
# Variables that steer the loader itself, not a config field.
_LOADER_VARS = {"IDSP_CONFIG", "IDSP_HOME"}
MEMORY_RE = re.compile(r"^\d+(\.\d+)?[KMGT]$")


def default_home() -> Path:
    return Path(os.environ.get("IDSP_HOME", Path.home() / ".idsp")).expanduser()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Section):
    """Where the platform keeps its own state. Empty means: below ``home``."""

    home: Path = Field(default_factory=default_home)
    keys_dir: Path | None = Field(None, description="pseudonymisation key store, outside any case")
    cases_root: Path | None = Field(None, description="shared folder that holds the case projects")
    case_index: Path | None = Field(None, description="the platform's list of cases")
    reviewers: Path | None = Field(None, description="trusted reviewers, roles and public keys")
    audit_log: Path | None = Field(None, description="append-only hash-chained audit log")
    secrets_dir: Path | None = Field(None, description="cookie secret, admin password, tokens")

    def resolved(self, name: str) -> Path:
        value = getattr(self, name)
        if value is not None:
            return Path(value).expanduser()
        defaults = {
            "keys_dir": "keys",
            "cases_root": "cases",
            "case_index": "cases/index.yaml",
            "reviewers": "reviewers.yaml",
            "audit_log": "audit/audit.jsonl",
            "secrets_dir": "secrets",
        }
        return Path(self.home).expanduser() / defaults[name]


class Tracking(_Section):
    host: str = "127.0.0.1"
    port: int = Field(5000, ge=1, le=65535)
    uri: str | None = Field(None, description="tracking URI clients use; default http://host:port")
    backend_store_uri: str | None = Field(None, description="default: SQLite below home")
    artifacts_destination: str | None = Field(None, description="default: folder below home")
    retries: int = Field(3, ge=0, le=20)
    timeout_seconds: float = Field(10.0, gt=0, le=300)

    def client_uri(self) -> str:
        return self.uri or f"http://{self.host}:{self.port}"


class Dvc(_Section):
    remote_name: str = "shared"
    remote_url: str | None = Field(None, description="default: a shared folder below home")


class Limits(_Section):
    memory: str = "2G"
    cpu: float = Field(1.0, gt=0, le=64)

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str) -> str:
        if not MEMORY_RE.match(str(v)):
            raise ValueError("a size such as 512M, 2G or 1.5T (a number and one of K, M, G, T)")
        return v


class Cull(_Section):
    enabled: bool = True
    timeout_seconds: int = Field(3600, ge=60)
    every_seconds: int = Field(300, ge=10)


class Passwords(_Section):
    min_length: int = Field(12, ge=8, le=128)
    check_common: bool = True
    lockout_attempts: int = Field(5, ge=1, le=100)
    lockout_seconds: int = Field(600, ge=0)


class Hub(_Section):
    ip: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    base_url: str = "/"
    authenticator: Literal["native", "oidc", "dummy"] = "native"
    admin_users: tuple[str, ...] = ("admin",)
    open_signup: bool = False
    passwords: Passwords = Field(default_factory=Passwords)
    limits: Limits = Field(default_factory=Limits)
    cull: Cull = Field(default_factory=Cull)
    inspectorates: tuple[str, ...] = ("ILT", "NVWA", "NLA", "IGJ", "RDI")
    db_url: str | None = Field(None, description="default: SQLite below home")
    project_lead_group: str = Field(
        "projectleiders", description="hub group whose members (and hub admins) make cases on the hub"
    )
    user_prefix: str = Field("idsp-", description="prefix of the OS accounts made for hub users")
    homes_root: Path = Field(Path("/home"), description="parent of the private homes of hub users")
    hub_port: int = Field(8081, ge=1, le=65535, description="internal port of the hub itself")
    proxy_api_port: int = Field(8001, ge=1, le=65535, description="configurable-http-proxy API")
    spawn_timeout_seconds: int = Field(120, ge=5, le=600)
    open_interpreter_path: bool = Field(
        True, description="add the search bit (o+x) to folders above Python that user servers need"
    )


class Oidc(_Section):
    provider: Literal["keycloak", "entra"] = "keycloak"
    issuer_url: str = "https://login.example.org/realms/inspecties"
    client_id: str = "idsp-hub"
    client_secret_ref: str = Field("idsp-oidc/client-secret", description="Secret name/key")
    groups_claim: str = "groups"
    tenant_id: str | None = Field(None, description="Entra ID tenant (provider: entra)")
    admin_groups: tuple[str, ...] = ("idsp-admins",)


class S3(_Section):
    endpoint_url: str = "https://s3.example.org"
    bucket: str = "idsp-mlflow"
    credentials_ref: str = Field("idsp-s3", description="Secret with AWS_ACCESS_KEY_ID/..._SECRET")


QUANTITY_RE = re.compile(r"^\d+(\.\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


class ServicePod(_Section):
    """The platform service's pod on Kubernetes: its resources and its state volume."""

    cpu_request: str = "100m"
    cpu_limit: str = "1"
    memory_request: str = "256Mi"
    memory_limit: str = "512Mi"
    state_volume_size: str = Field("1Gi", description="the service's own volume: audit log, case registry")

    @field_validator("cpu_request", "cpu_limit", "memory_request", "memory_limit", "state_volume_size")
    @classmethod
    def _quantity(cls, v: str) -> str:
        if not QUANTITY_RE.match(str(v)):
            raise ValueError("a Kubernetes quantity such as 250m, 1, 512Mi or 2Gi")
        return v


class Kubernetes(_Section):
    namespace: str = "idsp"
    hub_host: str = "idsp.example.org"
    storage_class: str | None = None
    case_volume_size: str = "50Gi"
    home_volume_size: str = "10Gi"
    oidc: Oidc = Field(default_factory=Oidc)
    s3: S3 = Field(default_factory=S3)
    postgres_secret_ref: str = Field("idsp-postgres", description="Secret with the DB URI")
    image: str = Field(
        "registry.example.org/idsp/idsp-singleuser",
        description="single-user image built from deploy/image/Containerfile; "
        "without a :tag the tag is the idsp version",
    )
    mlflow_image: str = "ghcr.io/mlflow/mlflow:v3.1.1"
    mlflow_secrets_ref: str = Field(
        "idsp-mlflow", description="Secret with basic_auth.ini, admin-password, user-key"
    )
    service: ServicePod = Field(default_factory=ServicePod)


class Ethics(_Section):
    approval_valid_days: int = Field(APPROVAL_VALID_DAYS, ge=1, le=APPROVAL_VALID_DAYS_MAX)


class PlatformConfig(_Section):
    """The whole of ``platform.yaml``."""

    paths: Paths = Field(default_factory=Paths)
    tracking: Tracking = Field(default_factory=Tracking)
    dvc: Dvc = Field(default_factory=Dvc)
    hub: Hub = Field(default_factory=Hub)
    kubernetes: Kubernetes = Field(default_factory=Kubernetes)
    ethics: Ethics = Field(default_factory=Ethics)

    # Convenience views used across the platform.
    def path(self, name: str) -> Path:
        return self.paths.resolved(name)

    @property
    def home(self) -> Path:
        return Path(self.paths.home).expanduser()

    def dvc_remote_url(self) -> str:
        """The platform's DVC remote root; each case pushes below it (``dvc_case_remote``)."""
        return self.dvc.remote_url or str(self.home / "dvc-remote")

    def dvc_case_remote(self, case_id: str) -> str:
        """A case's own DVC remote: ``<root>/<case id>``. In a local folder the hub gives it
        to the case's OS group only, like the case folder, so one case cannot read another's
        data versions through a shared remote."""
        return self.dvc_remote_url().rstrip("/") + "/" + case_id

    def dvc_remote_folder(self) -> Path | None:
        """The remote root as a local folder, or None when it is a URL (s3://, ...)."""
        url = self.dvc_remote_url()
        return None if "://" in url else Path(url).expanduser()

    def tracking_backend_uri(self) -> str:
        return self.tracking.backend_store_uri or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    def tracking_artifacts(self) -> str:
        return self.tracking.artifacts_destination or str(self.home / "mlflow" / "artifacts")


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key in _LOADER_VARS or "__" not in key:
            continue
        parts = key[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = yaml.safe_load(value) if value.strip() else value
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    path: str | os.PathLike | None = None, environ: dict[str, str] | None = None
) -> PlatformConfig:
    """Read and validate the configuration; raise ``ConfigError`` naming the bad field."""
    environ = dict(os.environ) if environ is None else dict(environ)
    if path:
        file: Path | None = Path(path)
    else:
        file = Path(environ["IDSP_CONFIG"]) if environ.get("IDSP_CONFIG") else None
    data: dict[str, Any] = {}
    source = "embedded defaults"
    if file is not None:
        source = str(file)
        if not file.is_file():
            raise ConfigError(
                "the platform configuration file does not exist",
                where=str(file),
                fix="Create it, or unset IDSP_CONFIG to run on the embedded defaults",
            )
        # Bounded (a regular file under a size cap, limited aliases): idsp.files.load_yaml.
        loaded = load_yaml(file, what="platform configuration", kind="config", error=ConfigError,
                           fix="Fix the syntax; `idsp config validate` checks it again")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("the top level must be a mapping of sections", where=str(file))
        data = loaded
    env = _env_overrides(environ)
    merged = _merge(data, env)
    try:
        return PlatformConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, source, env) from None


def _config_error(exc: ValidationError, source: str, env: dict[str, Any]) -> ConfigError:
    problems = []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        origin = source
        node: Any = env
        for part in err["loc"]:
            node = node.get(str(part)) if isinstance(node, dict) else None
        if node is not None:
            origin = f"environment variable {ENV_PREFIX}{'__'.join(str(p).upper() for p in err['loc'])}"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            problems.append(
                f"`{dotted}` is not a known setting (in {origin}); known here: {', '.join(allowed)}"
            )
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"`{dotted}` = {err.get('input')!r} is not allowed (in {origin}): {msg}")
    return ConfigError(
        "invalid platform configuration: " + "; ".join(problems),
        fix="Correct the value and run `idsp config validate`",
    )


def _allowed_keys(loc: tuple) -> list[str]:
    model: Any = PlatformConfig
    for part in loc:
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}).keys())
