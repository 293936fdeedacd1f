"""MLflow for official runs and the model registry, as the platform service (the MLflow admin).

Rule: official runs live in an experiment of their own per case, ``<case>.officieel``, made by
the service (a squatter's experiment of that name is renamed aside, as for the case's own
experiment): the case's people get READ on it, the case's runner account (MLflow user
``idsp-runner-<case>``, password derived from the platform's user key) EDIT, nobody MANAGE. So
no member can edit an official run's tags, metrics or artefacts. The service creates each
official run with its tags and ends it; it alone creates registered models and versions
(``models_auth`` refuses everyone else on the server itself) and gives the case's people READ
on them.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from idsp.hub.mlflow_password import user_password

OFFICIAL_SUFFIX = ".officieel"
READ = "READ"
# (MLflow URI, case) -> (official experiment id, the people granted READ), per service process
_PREPARED: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}


def official_experiment(case_id: str) -> str:
    return f"{case_id}{OFFICIAL_SUFFIX}"


def runner_user(case_id: str) -> str:
    return f"idsp-runner-{case_id}"


class RunnerMlflow:
    """The service's MLflow calls for runs and models (``experiments`` is case_mlflow's
    ``CaseExperiments``: the admin and the user key)."""

    def __init__(self, experiments: Any):
        self.admin = experiments.admin
        self.user_key = experiments.user_key

    @property
    def uri(self) -> str:
        return self.admin.uri

    async def _ok(self, client, method: str, path: str, **kw) -> dict[str, Any]:
        r = await self.admin._call(client, method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"MLflow {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else {}

    async def _permissions(self, client, username: str) -> list[dict[str, Any]] | None:
        r = await self.admin._call(client, "GET", "/api/3.0/mlflow/users/permissions/list",
                                   params={"username": username})  # fmt: skip
        return r.json().get("permissions", []) if r.status_code == 200 else None

    async def _grant(self, client, username: str, kind: str, resource: str, permission: str) -> None:
        rows = await self._permissions(client, username)
        if rows is None:  # no MLflow account yet: made with the password its server will use
            await self.admin.ensure_user(client, username, user_password(self.user_key, username))
            rows = []
        if any(row.get("resource_type") == kind and str(row.get("resource_pattern")) == resource for row in rows):
            return
        await self._ok(client, "POST", "/api/3.0/mlflow/users/permissions/grant",
                       json={"username": username, "resource_type": kind, "resource_id": resource,
                             "permission": permission})  # fmt: skip

    async def prepare(self, case_id: str, people: list[str]) -> tuple[str, str, str]:
        """The official experiment (made if need be), the runner's account and grants;
        ``(experiment_id, runner user, runner password)``. Done once per case and set of
        people while the service runs (each MLflow call costs the admin's login); people who
        left since lose READ."""
        runner = runner_user(case_id)
        password = user_password(self.user_key, runner)
        key = (self.uri, case_id)
        done = _PREPARED.get(key)
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            exp_id = await self.admin.claim(client, official_experiment(case_id))
            if done is not None and done[0] == exp_id and done[1] == frozenset(people):
                return exp_id, runner, password
            await self._grant(client, runner, "experiment", exp_id, "EDIT")
            for person in people:
                await self._grant(client, person, "experiment", exp_id, READ)
            for person in sorted((done[1] if done and done[0] == exp_id else frozenset()) - set(people)):
                await self._ok(client, "POST", "/api/3.0/mlflow/users/permissions/revoke",
                               json={"username": person, "resource_type": "experiment", "resource_id": exp_id})  # fmt: skip
        _PREPARED[key] = (exp_id, frozenset(people))
        return exp_id, runner, password

    async def create_run(self, exp_id: str, name: str, tags: dict[str, str]) -> str:
        body = {"experiment_id": exp_id, "run_name": name, "start_time": int(time.time() * 1000),
                "tags": [{"key": k, "value": str(v)[:5000]} for k, v in tags.items()]}  # fmt: skip
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            found = await self._ok(client, "POST", "/api/2.0/mlflow/runs/create", json=body)
        return str(found["run"]["info"]["run_id"])

    async def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            for key, value in tags.items():
                await self._ok(client, "POST", "/api/2.0/mlflow/runs/set-tag",
                               json={"run_id": run_id, "key": key, "value": value})  # fmt: skip

    async def end_run(self, run_id: str, status: str) -> None:
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            await self._ok(client, "POST", "/api/2.0/mlflow/runs/update",
                           json={"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)})  # fmt: skip

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            r = await self.admin._call(client, "GET", "/api/2.0/mlflow/runs/get", params={"run_id": run_id})
        if r.status_code != 200:
            return None
        return r.json()["run"]

    async def register(self, name: str, run: dict[str, Any], artifact_path: str, tags: dict[str, str],
                       people: list[str]) -> dict[str, Any]:
        """A version of registered model ``name`` from ``run``'s ``artifact_path`` (the model
        is made first when new); the case's people get READ on it."""
        as_list = [{"key": k, "value": v} for k, v in tags.items()]
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            r = await self.admin._call(client, "GET", "/api/2.0/mlflow/registered-models/get", params={"name": name})
            if r.status_code == 200:
                existing = {t["key"]: t["value"] for t in r.json()["registered_model"].get("tags", [])}
                if existing.get("idsp.case_id") != tags.get("idsp.case_id"):
                    raise PermissionError(f"the model name {name!r} belongs to another case or was not made by the platform")
            else:
                await self._ok(client, "POST", "/api/2.0/mlflow/registered-models/create",
                               json={"name": name, "tags": [t for t in as_list if t["key"] == "idsp.case_id"]})  # fmt: skip
            info = run["info"]
            source = f"{info['artifact_uri'].rstrip('/')}/{artifact_path}"
            made = await self._ok(client, "POST", "/api/2.0/mlflow/model-versions/create",
                                  json={"name": name, "source": source, "run_id": info["run_id"], "tags": as_list})  # fmt: skip
            for person in people:
                await self._grant(client, person, "registered_model", name, READ)
        version = made["model_version"]
        return {"name": name, "version": str(version["version"]), "run_id": info["run_id"], "source": source}
