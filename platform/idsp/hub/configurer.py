"""``platform.yaml`` -> JupyterHub traitlets: the one translator for the single-server hub.

Rule: ``apply`` only *sets* values on the traitlets ``Config`` it is given (it never
appends to or reads from it, starts nothing and writes nothing; the one file it reads is
the case index, for the case groups), so it is tested against an empty ``Config()``. Secrets reach the hub as files (cookie secret) or as
environment variables the supervisor sets (proxy token, crypt key), never as literals here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from idsp.config import PlatformConfig
from idsp.hub import accounts, home
from idsp.hub.auth import refuse_unsafe
from idsp.hub.cases import read_index
from idsp.hub.singleuser import terminal_command
from idsp.hub.state import HubPaths, read_secret
from idsp.hub.tracking import IMPL_ENV, service_command
from idsp.service import PREFIX as SERVICE_PREFIX
from idsp.service import hubconfig as platform_service

INSTANCE_ENV = "IDSP_HUB_INSTANCE"
# The platform runs offline for government data: MLflow's usage telemetry (and its banner in
# the UI) stays off in the MLflow server and in every user's kernel.
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}  # marks every process a hub started as a service
DEV_ENV = "IDSP_HUB_DEV"

CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def _groups(cfg: PlatformConfig, paths: HubPaths) -> dict:
    groups: dict[str, dict] = {
        f"inspectorate-{name.lower()}": {"users": [], "properties": {"kind": "inspectorate"}}
        for name in cfg.hub.inspectorates
    }
    # the project leads' group exists from the first start, so the admin only adds people to
    # it on the admin page (load_groups adds members, it never removes any)
    groups[cfg.hub.project_lead_group] = {"users": [], "properties": {"kind": "project-leads"}}
    for case in read_index(paths.case_index, paths.cases_root):
        groups[case.group] = {
            "users": list(case.members),
            "properties": {"kind": "case", "path": str(case.path)},
        }
    return groups


def _user_path(python: str) -> str:
    return os.pathsep.join([str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"])


def apply(
    cfg: PlatformConfig,
    c,
    *,
    dev: bool = False,
    instance: str = "",
    python: str | None = None,
    tracking_impl: str = "mlflow",
    config_file: str = "",
) -> None:
    """Set the JupyterHub configuration for ``cfg`` on the traitlets config ``c``."""
    refuse_unsafe(cfg.hub.authenticator, dev)
    accounts.check_prefix(cfg.hub.user_prefix)
    python = python or sys.executable
    paths = HubPaths.of(cfg)
    _network_and_state(cfg, paths, c)
    _login(cfg, c)
    # The hub's home page links to the platform's start page; admins see pending sign-ups.
    c.JupyterHub.template_paths = [str(home.TEMPLATES)]
    c.JupyterHub.template_vars = home.template_vars(cfg.hub.base_url, SERVICE_PREFIX)
    _user_servers(cfg, paths, c, python)
    # Groups: one per inspectorate, one per case of the case index.
    c.JupyterHub.load_groups = _groups(cfg, paths)
    _services(cfg, paths, c, python, instance, tracking_impl, config_file)


def _network_and_state(cfg: PlatformConfig, paths: HubPaths, c) -> None:
    hub = cfg.hub
    # Network: the proxy is public, the hub and the proxy API listen on loopback only.
    c.JupyterHub.ip = hub.ip
    c.JupyterHub.port = hub.port
    c.JupyterHub.base_url = hub.base_url
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = hub.hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{hub.proxy_api_port}"
    # The supervisor runs the proxy, so user routes survive a hub restart.
    c.ConfigurableHTTPProxy.should_start = False
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False

    c.JupyterHub.db_url = hub.db_url or f"sqlite:///{paths.db_file}"
    c.JupyterHub.cookie_secret_file = str(paths.cookie_secret)
    c.JupyterHub.pid_file = str(paths.state_dir / "jupyterhub.pid")
    c.JupyterHub.cookie_max_age_days = 1
    c.JupyterHub.tornado_settings = {
        "headers": {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
    }


def _own_servers_only(c, roles: list[dict]) -> None:
    """A user's JupyterLab is for that user only, hub admins included: the servers ask for
    ``spawner.OWN_SERVER_SCOPE`` (IdspSpawner.oauth_access_scopes), which the ``user`` role
    holds for itself and JupyterHub's fixed ``admin`` role does not (docs/hub.md)."""
    from idsp.hub.spawner import OWN_SERVER_SCOPE

    c.JupyterHub.custom_scopes = {
        OWN_SERVER_SCOPE: {"description": "Use one's own JupyterLab server; not held by hub admins"}
    }
    for role in roles:
        if role["name"] == "user":
            role["scopes"] = [*role["scopes"], f"{OWN_SERVER_SCOPE}!user"]


def _login(cfg: PlatformConfig, c) -> None:
    """Who may log in."""
    hub = cfg.hub
    c.Authenticator.admin_users = set(hub.admin_users)
    c.Authenticator.username_pattern = accounts.USERNAME_PATTERN
    if hub.authenticator == "native":
        c.JupyterHub.authenticator_class = "idsp.hub.auth.IdspNativeAuthenticator"
        # Approval by an admin (NativeAuthenticator) is the allow-list.
        c.Authenticator.allow_all = True
        c.NativeAuthenticator.enable_signup = True
        c.NativeAuthenticator.open_signup = hub.open_signup
        c.NativeAuthenticator.minimum_password_length = hub.passwords.min_length
        c.NativeAuthenticator.check_common_password = hub.passwords.check_common
        c.NativeAuthenticator.allowed_failed_logins = hub.passwords.lockout_attempts
        c.NativeAuthenticator.seconds_before_next_try = hub.passwords.lockout_seconds
        c.NativeAuthenticator.ask_email_on_signup = False
    elif hub.authenticator == "dummy":  # refuse_unsafe let this through: --dev
        c.JupyterHub.authenticator_class = "dummy"
        c.Authenticator.allow_all = True
    else:  # oidc
        c.JupyterHub.authenticator_class = "generic-oauth"
        c.GenericOAuthenticator.client_id = cfg.kubernetes.oidc.client_id
        issuer = cfg.kubernetes.oidc.issuer_url.rstrip("/")
        c.GenericOAuthenticator.authorize_url = f"{issuer}/protocol/openid-connect/auth"
        c.GenericOAuthenticator.token_url = f"{issuer}/protocol/openid-connect/token"
        c.GenericOAuthenticator.userdata_url = f"{issuer}/protocol/openid-connect/userinfo"
        c.GenericOAuthenticator.scope = ["openid", "profile", "email", "groups"]
        c.GenericOAuthenticator.username_claim = "preferred_username"
        c.GenericOAuthenticator.auth_state_groups_key = cfg.kubernetes.oidc.groups_claim
        c.GenericOAuthenticator.manage_groups = True
        c.GenericOAuthenticator.allow_all = True


def _user_servers(cfg: PlatformConfig, paths: HubPaths, c, python: str) -> None:
    hub = cfg.hub
    # User servers: own OS account, JupyterLab from the platform environment, limits.
    c.JupyterHub.spawner_class = "idsp.hub.spawner.IdspSpawner"
    c.IdspSpawner.user_prefix = hub.user_prefix
    c.IdspSpawner.homes_root = str(hub.homes_root)
    c.IdspSpawner.case_index = str(paths.case_index)
    c.IdspSpawner.cases_root = str(paths.cases_root)
    if cfg.dvc_remote_folder() is not None:
        c.IdspSpawner.dvc_remote_root = str(cfg.dvc_remote_folder())
    # jupyterhub-singleuser through idsp.hub.singleuser, which defers an import that costs
    # ~1 s of CPU per start; -P keeps the user's working folder off the server's sys.path.
    c.Spawner.cmd = [python, "-P", "-m", "idsp.hub.singleuser"]
    # Terminals: the platform's idsp, python and dvc stay on PATH after the login profile.
    c.Spawner.args = [
        "--ServerApp.terminado_settings=shell_command=" + json.dumps(terminal_command(Path(python).parent))
    ]
    c.Spawner.default_url = "/lab"
    c.Spawner.notebook_dir = "~"
    c.Spawner.disable_user_config = True
    c.Spawner.mem_limit = hub.limits.memory
    c.Spawner.cpu_limit = hub.limits.cpu
    c.Spawner.start_timeout = hub.spawn_timeout_seconds
    c.Spawner.http_timeout = hub.spawn_timeout_seconds
    c.Spawner.environment = {
        "PATH": _user_path(python),
        "LANG": "C.UTF-8",
        **NO_TELEMETRY,
        # where the library inside a server finds the platform service (idsp.service.client)
        platform_service.SERVICE_URL_ENV: platform_service.client_url(cfg),
        # whose socket on that port may get the server's token (idsp.listener)
        platform_service.SERVICE_ACCOUNT_ENV: platform_service.account_name(cfg.hub.user_prefix),
    }
    # the server's own $JUPYTERHUB_API_TOKEN also authenticates it to the platform service
    c.Spawner.server_token_scopes = platform_service.SERVER_TOKEN_SCOPES


def _services(
    cfg: PlatformConfig, paths: HubPaths, c, python: str, instance: str, tracking_impl: str,
    config_file: str,
) -> None:
    hub = cfg.hub
    # Services the hub starts and stops: MLflow tracking, the idle culler and the platform
    # service (its own OS account; see docs/service.md).
    marker = {INSTANCE_ENV: instance} if instance else {}
    services = [
        {
            "name": "mlflow",
            "command": service_command(cfg, paths, tracking_impl),
            "cwd": str(paths.mlflow_dir),
            "environment": {
                "MLFLOW_AUTH_CONFIG_PATH": str(paths.mlflow_auth_ini),
                **NO_TELEMETRY,
                "PATH": _user_path(python),
                # `idsp tracking serve` reads the platform config itself.
                "IDSP_HOME": str(cfg.home),
                "IDSP_PATHS__SECRETS_DIR": str(paths.secrets_dir),
                **({"IDSP_CONFIG": config_file} if config_file else {}),
                **marker,
            },
        }
    ]
    roles = []
    if hub.cull.enabled:
        services.append(
            {
                "name": "idle-culler",
                "command": [
                    python,
                    "-m",
                    "jupyterhub_idle_culler",
                    f"--timeout={hub.cull.timeout_seconds}",
                    f"--cull-every={hub.cull.every_seconds}",
                ],
                "environment": dict(marker),
            }
        )
        roles.append({"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]})
    # MLflow through the hub (/services/mlflow/): the platform service forwards it as each
    # user, so it needs the user key; `idsp hub up` makes the key before the hub loads this.
    mlflow_key = read_secret(paths.mlflow_user_key) if paths.mlflow_user_key.is_file() else ""
    entry = platform_service.service_entry(
        cfg, python=python, case_index=str(paths.case_index), cases_root=str(paths.cases_root),
        environment=dict(marker), mlflow_key=mlflow_key,
    )
    if mlflow_key:
        # The hub waits for a managed service's url before it starts the next one: the
        # platform service comes first, so the `mlflow` entry finds its url answering.
        services[0]["url"] = platform_service.url(cfg)
        services.insert(0, entry)
    else:
        services.append(entry)
    roles.extend(platform_service.roles())
    _own_servers_only(c, roles)
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
    c.IdspSpawner.tracking_uri = cfg.tracking.client_uri()
    c.IdspSpawner.tracking_admin_password_file = str(paths.mlflow_admin_password)
    c.IdspSpawner.tracking_user_key_file = str(paths.mlflow_user_key)
    c.IdspSpawner.tracking_record_file = str(paths.mlflow_experiments)
    _case_access(cfg, c)


def _case_access(cfg: PlatformConfig, c) -> None:
    """Cases made through the platform service: the spawner reads its registry and record of
    case experiments (as root) and gives each server its access, links and git config."""
    from idsp.service.account import account_name, state_dir
    from idsp.service.case_mlflow import RECORD

    c.IdspSpawner.case_registry = str(state_dir(cfg) / "cases.json")
    c.IdspSpawner.service_user = account_name(cfg.hub.user_prefix)
    c.IdspSpawner.git_config_dir = str(cfg.home / "git")
    c.IdspSpawner.service_experiments = str(state_dir(cfg) / RECORD)


def load_into(c) -> None:
    """Entry point of the generated ``jupyterhub_config.py``."""
    from idsp.config import load_config

    apply(
        load_config(),
        c,
        dev=os.environ.get(DEV_ENV) == "1",
        instance=os.environ.get(INSTANCE_ENV, ""),
        tracking_impl=os.environ.get(IMPL_ENV, "mlflow"),
        config_file=os.environ.get("IDSP_CONFIG", ""),
    )
