"""The MLflow tracking server as a hub-managed service, and per-user access to it.

Rule: MLflow runs with its basic-auth app, no default admin password (a generated one in a
0600 file) and ``NO_PERMISSIONS`` by default; a hub user gets an MLflow account whose
password is derived (HMAC) from a 0600 key, and EDIT on the experiments of their cases
only, revoked again at the spawn after they leave a case. A case's experiment is one the
hub made itself and recorded (``ExperimentRecord``, in the hub's own state): an experiment
that merely carries the case's name is never adopted, it is renamed aside (see
docs/decisions/tracking-server.md). Nothing here imports mlflow: the hub talks to the
server over its REST API, and sends the admin password only to a socket of root's (the
hub starts MLflow) or its own account: a local user who binds MLflow's port while it is down
gets nothing (``idsp.listener``). The server takes only its loopback names as Host and is
never framed.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import shutil
import sys
import weakref
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from idsp import listener
from idsp.config import PlatformConfig
from idsp.errors import ConfigError
from idsp.files import atomic_write
from idsp.hub.state import HubPaths

log = logging.getLogger("idsp.hub.tracking")

ADMIN_USER = "idsp-mlflow-admin"  # has a hyphen, so no hub user can ever be called this
PERMISSION = "EDIT"
AUTH_CACHE_SECONDS = 60
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


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
        # MLflow's basic auth, and registered models and versions made by the admin alone
        "authorization_function = idsp.service.models_auth:authenticate\n"
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
    port = cfg.tracking.port
    common = [
        "--host",
        cfg.tracking.host,
        "--port",
        str(port),
        # the names the hub, the platform service and the servers call it by, nothing else
        # (MLflow's default also takes every private address: DNS rebinding from a LAN name)
        "--allowed-hosts",
        ",".join(dict.fromkeys([urlsplit(cfg.tracking.client_uri()).netloc, *(f"{h}:{port}" for h in LOOPBACK_NAMES)])),
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
        cmd = [mlflow or "mlflow", "server", "--app-name", "basic-auth", *common, "--workers", "1",
               "--x-frame-options", "DENY"]  # fmt: skip
    return [sys.executable, "-m", "idsp.hub.groupexec", "--", *cmd]


class ExperimentRecord:
    """Which experiment the hub made for which case: ``{case_id: experiment_id}`` in a 0600
    JSON file in the hub's 0700 state folder (root's). Not in MLflow: a tag there could be
    set by whoever holds MANAGE on an experiment, so it would prove nothing."""

    def __init__(self, path: Path, also: tuple[Path, ...] = ()):
        self.path = Path(path)
        # further records, read only: the platform service's (it makes the experiments of
        # the cases made through it); root reads it, the hub never writes it
        self.also = tuple(Path(p) for p in also)

    def load(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for other in self.also:
            found.update(ExperimentRecord(other)._load())
        return {**found, **self._load()}

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"the hub's record of case experiments cannot be read ({exc})",
                where=str(self.path),
                fix="Restore it from a backup; deleting it makes the hub rename every case experiment aside",
            ) from None
        return {str(k): str(v) for k, v in data.get("experiments", {}).items()}

    def record(self, case_id: str, experiment_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Two hub processes (a restart overlapping) must not drop each other's entries.
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self._load()
            current[case_id] = experiment_id
            text = json.dumps({"experiments": dict(sorted(current.items()))}, indent=1)
            atomic_write(self.path, text + "\n", mode=0o600)


# One claim at a time per event loop: two spawns claiming the same new case must not see
# each other's fresh experiment as a squatter's.
_CLAIM_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _claim_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    if loop not in _CLAIM_LOCKS:
        _CLAIM_LOCKS[loop] = asyncio.Lock()
    return _CLAIM_LOCKS[loop]


class ExperimentSquatted(RuntimeError):
    """The case's name stayed taken by an experiment the hub did not make."""


class TrackingAdmin:
    """Creates MLflow accounts, the case experiments and their permissions, as the MLflow admin."""

    def __init__(
        self,
        uri: str,
        admin_password: str,
        record: ExperimentRecord,
        timeout: float = 15.0,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
    ):
        self.uri = uri.rstrip("/")
        self.auth = (ADMIN_USER, admin_password)
        self.record = record
        self.timeout = timeout
        self.log = logger or log

    async def _call(self, client, method, path, **kw):
        # MLflow runs as root (the hub starts it), or as this process's own account
        listener.check(self.uri, {0, os.geteuid()}, "the MLflow server")
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

    async def _experiment(self, client, **params) -> dict | None:
        path = "get-by-name" if "experiment_name" in params else "get"
        r = await self._call(client, "GET", f"/api/2.0/mlflow/experiments/{path}", params=params)
        if r.status_code == 404 or (r.status_code == 400 and "RESOURCE_DOES_NOT_EXIST" in r.text):
            return None
        r.raise_for_status()
        return r.json()["experiment"]

    async def claim(self, client, case_id: str) -> str:
        """The id of the case's experiment, made by the hub (now, if need be) and recorded.
        An experiment with the case's name that the hub did not make is renamed aside,
        with a warning naming who holds it; nothing is ever granted on it."""
        name = experiment_name(case_id)
        async with _claim_lock():
            recorded = self.record.load().get(case_id)
            if recorded:
                found = await self._experiment(client, experiment_id=recorded)
                if found is not None and found.get("name") == name:
                    return recorded
                self.log.error(
                    "the recorded MLflow experiment %s of case %s is %s: making a new one",
                    recorded, case_id, "gone" if found is None else f"renamed to {found.get('name')!r}",
                )  # fmt: skip
            for _attempt in range(3):
                squat = await self._experiment(client, experiment_name=name)
                if squat is not None:
                    await self._rename_aside(client, case_id, squat)
                r = await self._call(client, "POST", "/api/2.0/mlflow/experiments/create", json={"name": name})
                if r.status_code == 200:
                    exp_id = str(r.json()["experiment_id"])
                    self.record.record(case_id, exp_id)
                    return exp_id
                if "RESOURCE_ALREADY_EXISTS" not in r.text:
                    r.raise_for_status()
        raise ExperimentSquatted(
            f"the MLflow experiment name {name!r} of case {case_id} was taken again each time the hub "
            "renamed the squatting experiment aside; nobody was granted anything on it",
        )

    async def _rename_aside(self, client, case_id: str, squat: dict) -> None:
        exp_id = str(squat["experiment_id"])
        holders = await self.holders(client, exp_id)
        aside = f"{squat['name']}.squatted-{exp_id}"
        self.log.warning(
            "MLflow experiment %s named %r was not made by the hub for case %s (held by %s): "
            "renamed to %r, nothing granted on it; the case gets a new experiment",
            exp_id, squat["name"], case_id, ", ".join(holders) or "nobody", aside,
        )  # fmt: skip
        if squat.get("lifecycle_stage") == "deleted":  # MLflow renames active experiments only
            r = await self._call(client, "POST", "/api/2.0/mlflow/experiments/restore", json={"experiment_id": exp_id})
            r.raise_for_status()
        r = await self._call(
            client, "POST", "/api/2.0/mlflow/experiments/update", json={"experiment_id": exp_id, "new_name": aside}
        )
        r.raise_for_status()

    async def holders(self, client, experiment_id: str) -> list[str]:
        """The MLflow users with a permission of their own on the experiment (its maker has
        MANAGE): for the warning, so the admin knows whom to ask."""
        r = await self._call(client, "GET", "/api/2.0/mlflow/users/list")
        r.raise_for_status()
        found = []
        for user in r.json().get("users", []):
            name = user.get("username", "")
            if name == ADMIN_USER:
                continue
            p = await self._call(client, "GET", "/api/3.0/mlflow/users/permissions/list", params={"username": name})
            if p.status_code == 200 and any(
                row.get("resource_type") == "experiment" and str(row.get("resource_pattern")) == experiment_id
                for row in p.json().get("permissions", [])
            ):
                found.append(name)
        return sorted(found)

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
                exp_id = await self.claim(client, case_id)
                if exp_id not in have:  # granting twice is an error in MLflow 3
                    await self.grant(client, username, exp_id)
                names.append(name)
                ids.add(exp_id)
            for exp_id in sorted(have - ids):  # cases the user has left
                await self.revoke(client, username, exp_id)
            return names
