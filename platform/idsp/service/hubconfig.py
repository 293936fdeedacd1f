"""How the hub runs the platform service: its ``c.JupyterHub.services`` entry and the scopes
that let users, and their servers' own tokens, reach it.

Rule: values only, computed from ``platform.yaml``; nothing here starts, reads or writes
anything (the configurer sets them on the traitlets config). The service listens on
loopback; users reach it through the proxy at ``/services/idsp/`` or, from their servers,
directly at ``IDSP_SERVICE_URL``, and both ways the hub's token or cookie proves who they are.
"""

from __future__ import annotations

from idsp.config import PlatformConfig
from idsp.service import ACCESS_SCOPE, PREFIX, SERVICE_NAME
from idsp.service.account import account_name, mlflow_key_file, state_dir
from idsp.service.link import SERVICE_ACCOUNT_ENV, SERVICE_URL_ENV

__all__ = [
    "SERVICE_ACCOUNT_ENV", "SERVICE_URL_ENV", "SERVER_TOKEN_SCOPES", "account_name", "client_url", "command",
    "hub_fields", "port", "roles", "service_entry", "url",
]  # fmt: skip
# JupyterHub's default "server" role, plus the service: a server's $JUPYTERHUB_API_TOKEN
# then authenticates the library and CLI inside it. A token only ever gets the part of
# these scopes its user holds.
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", ACCESS_SCOPE]


def port(cfg: PlatformConfig) -> int:
    # platform.yaml has no hub.service_port yet: the port after the proxy API's, which the
    # supervisor already keeps for the platform (defaults 8001 -> 8002).
    return cfg.hub.proxy_api_port + 1


def url(cfg: PlatformConfig) -> str:
    return f"http://127.0.0.1:{port(cfg)}"


def client_url(cfg: PlatformConfig) -> str:
    """Where the library inside a user server finds the service (loopback, no proxy hop)."""
    # the service's routes sit below the hub's base URL (JUPYTERHUB_SERVICE_PREFIX)
    return url(cfg) + cfg.hub.base_url.rstrip("/") + PREFIX


# The platform's MLflow user key: the service needs it to reach MLflow as each user, and its
# account cannot read root's secrets folder. On the single-server hub `idsp hub up` writes it
# into the service's state (--mlflow-key-file, 0400); the environment variable is only for a
# Deployment that has no such file (docs/service.md, "What the service guards against").
MLFLOW_KEY_ENV = "MLFLOW_PROXY_USER_KEY"


def mlflow_path(cfg: PlatformConfig) -> str:
    """Where the hub's proxy routes the MLflow UI and API: the `mlflow` service's path."""
    return f"{cfg.hub.base_url.rstrip('/')}/services/mlflow/"


def service_entry(
    cfg: PlatformConfig,
    *,
    python: str,
    case_index: str,
    cases_root: str,
    environment: dict[str, str],
    mlflow_key: str = "",
) -> dict:
    folder = state_dir(cfg)
    mlflow_url = ""
    key_args: list[str] = []
    if mlflow_key:  # the key itself stays out of the entry: the service reads its own copy
        mlflow_url = cfg.tracking.client_uri()
        key_args = ["--mlflow-key-file", str(mlflow_key_file(cfg))]
    return {
        **hub_fields(),
        "url": url(cfg),
        "user": account_name(cfg.hub.user_prefix),
        "cwd": str(folder),
        "command": command(
            cfg, python, state=str(folder), case_index=case_index, cases_root=cases_root, mlflow_url=mlflow_url
        ) + key_args + case_args(cfg, mlflow=bool(mlflow_key)),
        "environment": {"LANG": "C.UTF-8", **environment},
    }


def hub_fields() -> dict:
    """What the hub's service entry says wherever the service runs (managed by the hub on one
    server, its own Deployment on Kubernetes)."""
    # our own service, reached with the hub's login: no "authorize access" page
    return {"name": SERVICE_NAME, "display": True, "oauth_no_confirm": True}


def command(
    cfg: PlatformConfig, python: str, *, state: str, case_index: str, cases_root: str, mlflow_url: str = ""
) -> list[str]:
    """The service's command line: one for the single-server hub and the Kubernetes pod.
    With ``mlflow_url`` it also forwards ``/services/mlflow/`` to that MLflow server."""
    mlflow = ["--mlflow-url", mlflow_url, "--mlflow-at", mlflow_path(cfg)] if mlflow_url else []
    # -P: the service's working folder never lands on its sys.path
    return [
        python, "-P", "-m", "idsp.service",
        "--state", state, "--case-index", case_index, "--cases-root", cases_root,
        *mlflow,
    ]  # fmt: skip


def agent_socket(cfg: PlatformConfig) -> str:
    """The root case agent's socket (``idsp.hub.case_agent``), in a folder of the service's group."""
    return str(cfg.home / "agent" / "agent.sock")


def mlflow_admin_file(cfg: PlatformConfig) -> str:
    """The MLflow admin password as the service reads it: its own 0400 copy in its state."""
    return str(state_dir(cfg) / "mlflow-admin-password")


def case_args(cfg: PlatformConfig, *, mlflow: bool) -> list[str]:
    """Cases and members on the single-server hub: the case agent, the lead group, and the
    MLflow admin password with which the service makes each case's experiment."""
    args = ["--agent-socket", agent_socket(cfg), "--lead-group", cfg.hub.project_lead_group]
    remote = cfg.dvc_remote_folder()
    if remote is not None:  # official runs read a case's pushed data from there (service/runner.py)
        args += ["--dvc-remote", str(remote)]
    return args + (["--mlflow-admin-file", mlflow_admin_file(cfg)] if mlflow else [])


def roles() -> list[dict]:
    """Every hub user may use the service; what they may do there, the service decides."""
    return [
        {
            "name": "user",
            "description": "Standard user privileges, and the IDSP platform service",
            "scopes": ["self", ACCESS_SCOPE],
        },
        {
            # the service checks that a member being added is a hub user (names only)
            "name": "idsp-service",
            "description": "The IDSP platform service: look up hub user names",
            "scopes": ["read:users:name"],
            "services": [SERVICE_NAME],
        },
    ]
