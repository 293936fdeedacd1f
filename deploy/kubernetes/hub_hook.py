"""The IDSP hook in the Zero to JupyterHub hub pod: profiles by group, one volume per case
of the user, an MLflow account and case experiments per user, and each server for its own
user only.

Rule: this file runs in the chart's own hub image, where idsp is not installed. It imports
the standard library, tornado, the chart's ``z2jh`` module and ``idsp.hub.mlflow_password``
(that one file is mounted beside the hub's config by the rendered values, ``hub.extraFiles``)
and nothing else. ``idsp deploy render kubernetes`` embeds it as ``hub.extraConfig``; the
chart runs it with ``c``, the hub's config, in its namespace. What it needs to know comes
from ``custom.idsp`` in the values, which the renderer fills from ``platform.yaml``.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from idsp.hub.mlflow_password import user_password
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

PERMISSION = "EDIT"  # what a case member may do in the case's experiment
Fetch = Callable[..., Awaitable[Any]]


def _groups(spawner) -> set[str]:
    return {g.name for g in spawner.user.groups}


def profile_list(spawner, profiles: list[dict]) -> list[dict]:
    """The profiles this user may choose: those without groups, and those of their groups."""
    mine = _groups(spawner)
    return [
        {k: v for k, v in p.items() if k != "groups"}
        for p in profiles
        if not p.get("groups") or mine & set(p["groups"])
    ]


def own_server_scopes(spawner, scope: str) -> list[str]:
    """What a user's server asks of a visitor, and what its OAuth client may hand out: the
    platform's own-server scope for this user, which the ``user`` role holds for itself
    (``!user``) and JupyterHub's fixed ``admin`` role does not. Instead of
    ``access:servers!server=...``, which admins hold for every server (``admin_access`` no
    longer limits that since JupyterHub 2): an admin starts and stops servers, and opens none."""
    return [f"{scope}!user={spawner.user.name}"]


def mount_cases(spawner, cases: list[dict]) -> list[dict]:
    """Mount the volume of every case the user is a member of (by its group), and of no other
    case; return the user's cases."""
    mine = [case for case in cases if case["group"] in _groups(spawner)]
    # JupyterHub can keep a user's spawner across restarts: drop the case volumes of an earlier
    # start first, so a user who left a case loses its volume and none is mounted twice.
    # New lists, not in-place changes: a trait's default list is shared by every spawner.
    known = {case["volume"] for case in cases}
    spawner.volumes = [v for v in spawner.volumes if v["name"] not in known] + [
        {"name": case["volume"], "persistentVolumeClaim": {"claimName": case["claim"]}}
        for case in mine
    ]
    spawner.volume_mounts = [m for m in spawner.volume_mounts if m["name"] not in known] + [
        {"name": case["volume"], "mountPath": case["mountPath"]} for case in mine
    ]
    return mine


class MLflowAdmin:
    """MLflow's REST API as its admin account (basic auth)."""

    def __init__(self, url: str, user: str, password: str, fetch: Fetch):
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": "Basic " + token, "Content-Type": "application/json"}
        self.fetch = fetch

    async def call(self, method: str, path: str, body: dict | None = None):
        """The response, also for an HTTP error status; an unanswered call is an error."""
        try:
            return await self.fetch(
                self.url + path,
                method=method,
                body=None if body is None else json.dumps(body),
                headers=self.headers,
            )
        except HTTPClientError as exc:
            if exc.response is None:  # timeout or refused: no answer to judge
                raise RuntimeError(f"MLflow at {self.url} did not answer {path}: {exc}") from exc
            return exc.response


async def provision(admin: MLflowAdmin, name: str, password: str, case_ids: list[str]) -> None:
    """The user's MLflow account, and EDIT on the experiment of each of their cases."""
    account = {"username": name, "password": password}
    r = await admin.call("POST", "/api/2.0/mlflow/users/create", account)
    if r.code not in (200, 400):  # 400: the account exists already
        raise RuntimeError(f"MLflow user {name}: HTTP {r.code}")
    for case_id in case_ids:
        await admin.call("POST", "/api/2.0/mlflow/experiments/create", {"name": case_id})
        r = await admin.call(
            "GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + case_id
        )
        if r.code == 200:
            experiment = json.loads(r.body)["experiment"]["experiment_id"]
            # Granting twice answers an error in MLflow 3; the permission is there either way.
            await admin.call(
                "POST",
                "/api/3.0/mlflow/users/permissions/grant",
                {"username": name, "resource_type": "experiment", "resource_id": experiment,
                 "permission": PERMISSION},
            )  # fmt: skip


async def pre_spawn(
    spawner,
    *,
    cases: list[dict],
    mlflow: dict,
    fetch: Fetch,
    environ: Mapping[str, str],
    own_scope: str = "",
) -> None:
    """Mount the user's cases, give their server its MLflow account, and let only its user in."""
    if own_scope:  # read when the server starts, after this hook
        spawner.oauth_access_scopes = own_server_scopes(spawner, own_scope)
    mine = mount_cases(spawner, cases)
    name = spawner.user.name
    password = user_password(environ["IDSP_MLFLOW_USER_KEY"], name)
    admin_password = environ["IDSP_MLFLOW_ADMIN_PASSWORD"]
    admin = MLflowAdmin(mlflow["url"], mlflow["adminUser"], admin_password, fetch)
    await provision(admin, name, password, [case["id"] for case in mine])
    spawner.environment.update(
        {
            "MLFLOW_TRACKING_URI": mlflow["url"],
            # idsp.tracking reads the platform setting, not MLFLOW_TRACKING_URI
            "IDSP_TRACKING__URI": mlflow["url"],
            "MLFLOW_TRACKING_USERNAME": name,
            "MLFLOW_TRACKING_PASSWORD": password,
        }
    )


def configure(
    c, get_config, *, fetch: Fetch | None = None, environ: Mapping[str, str] = os.environ
) -> None:
    """Set the KubeSpawner hooks on the hub's config ``c`` from the ``custom.idsp`` values."""
    if fetch is None:
        fetch = AsyncHTTPClient().fetch
    profiles = get_config("custom.idsp.profiles", [])
    c.KubeSpawner.profile_list = functools.partial(profile_list, profiles=profiles)
    own_scope = get_config("custom.idsp.ownServerScope", "")
    if own_scope:
        # the server's OAuth client is made before the pre-spawn hook runs: a callable here
        c.KubeSpawner.oauth_client_allowed_scopes = functools.partial(own_server_scopes, scope=own_scope)
    c.KubeSpawner.pre_spawn_hook = functools.partial(
        pre_spawn,
        cases=get_config("custom.idsp.cases", []),
        mlflow=get_config("custom.idsp.mlflow", {}),
        fetch=fetch,
        environ=environ,
        own_scope=own_scope,
    )


# The chart execs hub.extraConfig inside its jupyterhub_config.py, where `c` is defined; an
# import (tests, linters) has no `c` and only defines the functions above.
if "c" in globals():
    from z2jh import get_config as _get_config

    configure(globals()["c"], _get_config)
