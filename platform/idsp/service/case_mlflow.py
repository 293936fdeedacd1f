"""Each case's MLflow experiment, made by the platform service when the case is made.

Rule: the service makes the experiment as the MLflow admin and records its id in its own
state (``<state>/mlflow-experiments.json``); an experiment that merely carries the case's name
is renamed aside, never adopted (:meth:`idsp.hub.tracking.TrackingAdmin.claim`). The case's
people get EDIT on it with their own MLflow accounts (password derived from the platform's
user key, as at spawn), and lose it when they leave. The spawner reads the same record, so it
never mistakes the service's experiment for a squatter's.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from idsp.hub.mlflow_password import user_password
from idsp.hub.tracking import ExperimentRecord, TrackingAdmin

RECORD = "mlflow-experiments.json"


class CaseExperiments:
    def __init__(self, uri: str, admin_password: str, user_key: str, state: Path):
        self.admin = TrackingAdmin(uri, admin_password, ExperimentRecord(Path(state) / RECORD))
        self.user_key = user_key

    async def create(self, case_id: str, people: list[str]) -> str:
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            await self.admin.wait_ready(client, timeout=30)
            exp_id = await self.admin.claim(client, case_id)
            for user in people:
                await self._grant(client, exp_id, user)
        return exp_id

    async def _account(self, client, user: str) -> None:
        """The user's MLflow account, made if missing. An existing one is left as it is: the
        spawner sets the same derived password at each start, and every update costs MLflow
        a password hash (about a second on the one worker)."""
        r = await self.admin._call(
            client, "GET", "/api/2.0/mlflow/users/get", params={"username": user}
        )
        if r.status_code != 200:
            await self.admin.ensure_user(client, user, user_password(self.user_key, user))

    async def _grant(self, client, exp_id: str, user: str) -> None:
        await self._account(client, user)
        if exp_id not in await self.admin.granted(client, user):  # granting twice is an error
            await self.admin.grant(client, user, exp_id)

    async def grant(self, exp_id: str, user: str) -> None:
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            await self._grant(client, exp_id, user)

    async def revoke(self, exp_id: str, user: str) -> None:
        async with httpx.AsyncClient(timeout=self.admin.timeout) as client:
            if exp_id in await self.admin.granted(client, user):
                await self.admin.revoke(client, user, exp_id)
