"""No squatting on a case's MLflow experiment: the hub makes each case's experiment itself and
records its id in its own state; an experiment that only carries the case's name (made by
someone who guessed the next case id) is renamed aside and nobody is granted anything on it.
Against a real `idsp tracking serve --auth` (MLflow's basic-auth app), driven through the
hub's TrackingAdmin as the spawner does."""

from __future__ import annotations

import asyncio
import logging
import secrets
import stat

import httpx
import pytest
from idsp.hub.tracking import ADMIN_USER, ExperimentRecord, TrackingAdmin
from testkit.mlflow_server import start_server


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    password = secrets.token_urlsafe(18)
    server = start_server(tmp_path_factory.mktemp("mlflow-squat"), "--auth",
                          env={"MLFLOW_TRACKING_USERNAME": ADMIN_USER, "MLFLOW_TRACKING_PASSWORD": password})
    yield server, password
    server.stop()


def _api(server, method, path, auth, **kw) -> httpx.Response:
    return httpx.request(method, f"{server.url}/api/2.0/mlflow/{path}", auth=auth, timeout=30, **kw)


def _by_name(server, name, auth) -> httpx.Response:
    return _api(server, "GET", "experiments/get-by-name", auth, params={"experiment_name": name})


def _log_run(server, experiment_id: str, auth, secret: str) -> str:
    r = _api(server, "POST", "runs/create", auth, json={"experiment_id": experiment_id})
    assert r.status_code == 200, r.text
    run_id = r.json()["run"]["info"]["run_id"]
    r = _api(server, "POST", "runs/log-parameter", auth, json={"run_id": run_id, "key": "k", "value": secret})
    assert r.status_code == 200, r.text
    return run_id


@pytest.mark.slow
def test_a_pre_made_experiment_with_the_case_name_is_never_adopted(auth_server, tmp_path, caplog):
    server, admin_password = auth_server
    record = ExperimentRecord(tmp_path / "hub" / "mlflow-experiments.json")
    admin = TrackingAdmin(server.url, admin_password, record)
    bob, anna = ("bob", secrets.token_urlsafe(16)), ("anna", secrets.token_urlsafe(16))
    asyncio.run(admin.provision(*bob, []))  # bob has an MLflow account (another case, say)

    # bob guesses the next case id and makes its experiment before the case exists
    r = _api(server, "POST", "experiments/create", bob, json={"name": "ce-2026-007"})
    assert r.status_code == 200, r.text
    squat_id = r.json()["experiment_id"]

    # the case appears with anna as member: her spawn provisions her
    with caplog.at_level(logging.WARNING, logger="idsp.hub.tracking"):
        assert asyncio.run(admin.provision(*anna, ["ce-2026-007"])) == ["ce-2026-007"]
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f"MLflow experiment {squat_id} named 'ce-2026-007' was not made by the hub" in warning
    assert "held by bob" in warning and f"renamed to 'ce-2026-007.squatted-{squat_id}'" in warning

    # the case's experiment is a new one, made by the hub and recorded in its own 0600 file
    case_id = record.load()["ce-2026-007"]
    assert case_id != squat_id
    assert stat.S_IMODE(record.path.stat().st_mode) == 0o600
    r = _by_name(server, "ce-2026-007", anna)
    assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] == case_id
    run_id = _log_run(server, case_id, anna, "anna's work")

    # bob reads nothing of the case: not the experiment, not the run, not by search
    assert _by_name(server, "ce-2026-007", bob).status_code == 403
    assert _api(server, "GET", "runs/get", bob, params={"run_id": run_id}).status_code == 403
    r = _api(server, "POST", "runs/search", bob, json={"experiment_ids": [case_id]})
    assert r.status_code == 403 or not r.json().get("runs"), r.text  # MLflow filters searches
    # ... and anna was granted nothing on bob's experiment, which stays his under its new name
    assert _by_name(server, f"ce-2026-007.squatted-{squat_id}", anna).status_code == 403
    assert _by_name(server, f"ce-2026-007.squatted-{squat_id}", bob).status_code == 200


@pytest.mark.slow
def test_the_recorded_experiment_is_kept_across_hub_restarts(auth_server, tmp_path, caplog):
    server, admin_password = auth_server
    path = tmp_path / "mlflow-experiments.json"
    carla = ("carla", secrets.token_urlsafe(16))
    asyncio.run(TrackingAdmin(server.url, admin_password, ExperimentRecord(path)).provision(*carla, ["ce-2026-008"]))
    made = ExperimentRecord(path).load()["ce-2026-008"]
    _log_run(server, made, carla, "v1")

    # a restarted hub (a new admin object, the same record) keeps the experiment, renames nothing
    with caplog.at_level(logging.WARNING, logger="idsp.hub.tracking"):
        asyncio.run(TrackingAdmin(server.url, admin_password, ExperimentRecord(path)).provision(*carla, ["ce-2026-008"]))
    assert not caplog.records
    r = _by_name(server, "ce-2026-008", carla)
    assert r.json()["experiment"]["experiment_id"] == made

    # a hub that lost its record does not adopt its own old experiment either: it cannot tell
    # it from a squatter's, so it renames it aside (and says so) rather than guess
    lost = TrackingAdmin(server.url, admin_password, ExperimentRecord(tmp_path / "lost.json"))
    with caplog.at_level(logging.WARNING, logger="idsp.hub.tracking"):
        asyncio.run(lost.provision(*carla, ["ce-2026-008"]))
    assert f"renamed to 'ce-2026-008.squatted-{made}'" in caplog.text


@pytest.mark.slow
def test_a_deleted_squatting_experiment_is_renamed_aside_too(auth_server, tmp_path):
    server, admin_password = auth_server
    admin = TrackingAdmin(server.url, admin_password, ExperimentRecord(tmp_path / "e.json"))
    dirk, eva = ("dirk", secrets.token_urlsafe(16)), ("eva", secrets.token_urlsafe(16))
    asyncio.run(admin.provision(*dirk, []))
    squat_id = _api(server, "POST", "experiments/create", dirk, json={"name": "ce-2026-009"}).json()["experiment_id"]
    # deleted, its name stays taken (MLflow keeps it until garbage collection)
    assert _api(server, "POST", "experiments/delete", dirk, json={"experiment_id": squat_id}).status_code == 200
    asyncio.run(admin.provision(*eva, ["ce-2026-009"]))
    r = _by_name(server, "ce-2026-009", eva)
    assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] != squat_id
    assert _by_name(server, "ce-2026-009", dirk).status_code == 403
