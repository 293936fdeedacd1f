"""The MLflow tracking server as a hub-managed service, and per-user access to it.

Rule: MLflow runs with its basic-auth app, no default admin password (a generated one in a
0600 file) and ``NO_PERMISSIONS`` by default; a hub user gets an MLflow account whose
password is derived (HMAC) from a 0600 key, and EDIT on the experiments of their cases
only, revoked again at the spawn after they leave a case. Nothing here imports mlflow: the
hub talks to the server over its REST API.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import httpx

from idsp.config import PlatformConfig
from idsp.hub.state import HubPaths

ADMIN_USER = "idsp-mlflow-admin"  # has a hyphen, so no hub user can ever be called this
PERMISSION = "EDIT"
AUTH_CACHE_SECONDS = 60


def experiment_name(case_id: str) -> str:
    """The MLflow experiment of a case: its id (what ``idsp.tracking`` logs to)."""
    return case_id


def auth_ini(paths: HubPaths, admin_password: str) -> str:
    return (
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{paths.mlflow_dir / 'basic_auth.db'}\n"
        f"admin_username = {ADMIN_USER}\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        # Without this cache every request (the hub's admin calls, every call of a user's
        # kernel) costs a full password-hash check on the one MLflow worker. With it, a
        # checked (user, password) pair is trusted for a minute; password changes through the
        # API drop the entry at once (one worker on SQLite; see docs/decisions).
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n"
    )


# "idsp" (our `idsp tracking serve`, set by the supervisor) or "mlflow" (the stock server,
# for a hub config loaded outside `idsp hub up`).
IMPL_ENV = "IDSP_HUB_TRACKING_IMPL"


def service_command(cfg: PlatformConfig, paths: HubPaths, impl: str = "mlflow") -> list[str]:
    """The MLflow server command, wrapped so that stopping it ends its whole process group."""
    bin_dir = Path(sys.executable).parent
    common = [
        "--host",
        cfg.tracking.host,
        "--port",
        str(cfg.tracking.port),
        "--backend-store-uri",
        cfg.tracking_backend_uri(),
        "--artifacts-destination",
        cfg.tracking_artifacts(),
    ]
    if impl == "idsp":
        cmd = [
            str(bin_dir / "idsp"), "tracking", "serve", *common,
            "--auth", "--auth-config", str(paths.mlflow_auth_ini),
        ]  # fmt: skip
    else:
        mlflow = str(bin_dir / "mlflow") if (bin_dir / "mlflow").exists() else shutil.which("mlflow")
        cmd = [mlflow or "mlflow", "server", "--app-name", "basic-auth", *common, "--workers", "1"]
    return [sys.executable, "-m", "idsp.hub.groupexec", "--", *cmd]


class TrackingAdmin:
    """Creates MLflow accounts and grants experiment permissions as the MLflow admin."""

    def __init__(self, uri: str, admin_password: str, timeout: float = 15.0):
        self.uri = uri.rstrip("/")
        self.auth = (ADMIN_USER, admin_password)
        self.timeout = timeout

    async def _call(self, client, method, path, **kw):
        r = await client.request(method, f"{self.uri}{path}", auth=self.auth, **kw)
        return r

    async def ensure_user(self, client, username: str, password: str) -> None:
        r = await self._call(client, "GET", "/api/2.0/mlflow/users/get", params={"username": username})
        if r.status_code == 200:
            r = await self._call(
                client,
                "PATCH",
                "/api/2.0/mlflow/users/update-password",
                json={"username": username, "password": password},
            )
        else:
            r = await self._call(
                client,
                "POST",
                "/api/2.0/mlflow/users/create",
                json={"username": username, "password": password},
            )
        r.raise_for_status()

    async def ensure_experiment(self, client, name: str) -> str:
        r = await self._call(
            client, "GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name}
        )
        if r.status_code == 200:
            return r.json()["experiment"]["experiment_id"]
        r = await self._call(client, "POST", "/api/2.0/mlflow/experiments/create", json={"name": name})
        r.raise_for_status()
        return r.json()["experiment_id"]

    async def _experiment_permission(self, client, action: str, username: str, experiment_id: str, **extra) -> None:
        body = {"username": username, "resource_type": "experiment", "resource_id": experiment_id, **extra}
        r = await self._call(client, "POST", f"/api/3.0/mlflow/users/permissions/{action}", json=body)
        r.raise_for_status()

    async def grant(self, client, username: str, experiment_id: str) -> None:
        await self._experiment_permission(client, "grant", username, experiment_id, permission=PERMISSION)

    async def granted(self, client, username: str) -> set[str]:
        """Ids of the experiments the user has a permission on through their own (personal)
        MLflow role; permissions through shared roles are not the hub's to manage."""
        r = await self._call(client, "GET", "/api/3.0/mlflow/users/permissions/list", params={"username": username})
        r.raise_for_status()
        return {
            str(row["resource_pattern"])
            for row in r.json().get("permissions", [])
            if row.get("resource_type") == "experiment" and str(row.get("role_name", "")).startswith("__user_")
            # only what the hub grants (EDIT); MANAGE on experiments the user made stays theirs
            and row.get("permission") == PERMISSION
        }

    async def revoke(self, client, username: str, experiment_id: str) -> None:
        await self._experiment_permission(client, "revoke", username, experiment_id)

    async def wait_ready(self, client, timeout: float = 90) -> None:
        """The server starts with the hub and may still be loading: wait for /health."""
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                if (await client.get(f"{self.uri}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the MLflow tracking server at {self.uri} is not answering")
            await asyncio.sleep(0.5)

    async def provision(self, username: str, password: str, case_ids: list[str]) -> list[str]:
        """Account plus EDIT on each case experiment, and no longer on experiments of cases
        the user has left; returns the experiment names."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            await self.wait_ready(client)
            await self.ensure_user(client, username, password)
            have = await self.granted(client, username)
            names, ids = [], set()
            for case_id in case_ids:
                name = experiment_name(case_id)
                exp_id = str(await self.ensure_experiment(client, name))
                if exp_id not in have:  # granting twice is an error in MLflow 3
                    await self.grant(client, username, exp_id)
                names.append(name)
                ids.add(exp_id)
            for exp_id in sorted(have - ids):  # cases the user has left
                await self.revoke(client, username, exp_id)
            return names
