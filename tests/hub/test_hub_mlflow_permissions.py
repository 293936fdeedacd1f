"""MLflow access follows case membership both ways: granted at spawn, revoked at the spawn
after someone leaves a case. Against a real `idsp tracking serve --auth` (MLflow's
basic-auth app), driven through the hub's TrackingAdmin as the hub does at spawn."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest
from idsp.hub.tracking import ADMIN_USER, ExperimentRecord, TrackingAdmin
from testkit.mlflow_server import start_server


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    password = secrets.token_urlsafe(18)
    server = start_server(tmp_path_factory.mktemp("mlflow-auth"), "--auth",
                          env={"MLFLOW_TRACKING_USERNAME": ADMIN_USER, "MLFLOW_TRACKING_PASSWORD": password})
    yield server, password
    server.stop()


def _read(url: str, experiment: str, auth: tuple[str, str]) -> int:
    r = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": experiment},
                  auth=auth, timeout=30)
    return r.status_code


@pytest.mark.slow
def test_leaving_a_case_revokes_its_experiment_at_the_next_provisioning(auth_server, tmp_path):
    server, admin_password = auth_server
    admin = TrackingAdmin(server.url, admin_password, ExperimentRecord(tmp_path / "experiments.json"))
    alice = ("alice", secrets.token_urlsafe(16))
    assert asyncio.run(admin.provision(*alice, ["case-a", "case-b"])) == ["case-a", "case-b"]
    assert _read(server.url, "case-a", alice) == 200
    assert _read(server.url, "case-b", alice) == 200

    # alice leaves case-b (case.yaml no longer lists her); her next spawn provisions again
    assert asyncio.run(admin.provision(*alice, ["case-a"])) == ["case-a"]
    assert _read(server.url, "case-a", alice) == 200
    assert _read(server.url, "case-b", alice) == 403
    assert _read(server.url, "case-b", (ADMIN_USER, admin_password)) == 200  # the runs stay, for the others
    # the same cases again (a spawn after a hub restart): nothing granted twice, no error
    assert asyncio.run(admin.provision(*alice, ["case-a"])) == ["case-a"]
    assert _read(server.url, "case-a", alice) == 200

    # another user's access is untouched by alice's provisioning
    bob = ("bob", secrets.token_urlsafe(16))
    asyncio.run(admin.provision(*bob, ["case-b"]))
    asyncio.run(admin.provision(*alice, []))
    assert _read(server.url, "case-b", bob) == 200
    assert _read(server.url, "case-a", alice) == 403


@pytest.mark.slow
def test_an_experiment_the_user_made_stays_theirs(auth_server, tmp_path):
    server, admin_password = auth_server
    admin = TrackingAdmin(server.url, admin_password, ExperimentRecord(tmp_path / "experiments.json"))
    carol = ("carol", secrets.token_urlsafe(16))
    asyncio.run(admin.provision(*carol, ["case-c"]))
    r = httpx.post(f"{server.url}/api/2.0/mlflow/experiments/create", json={"name": "carol-scratch"}, auth=carol,
                   timeout=30)
    assert r.status_code == 200, r.text  # MLflow gives the maker MANAGE on it
    asyncio.run(admin.provision(*carol, []))  # carol leaves case-c
    assert _read(server.url, "case-c", carol) == 403
    assert _read(server.url, "carol-scratch", carol) == 200
