"""MLflow on a live hub: a user who makes the experiment of a case before its members arrive
reads nothing of the case (the hub renames his experiment aside and makes its own), and the
MLflow UI and API answer at /services/mlflow/ with the hub's login, no second password."""

from __future__ import annotations

import json

import pytest

from tests.hub.conftest import CASE_ID, approved_user

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def squatter(hub, admin):
    """mallory, in no case, makes the case's experiment from her kernel before alice's first spawn."""
    user = approved_user(hub, admin, "mallory")
    hub.wait_tracking()
    user.spawn()
    out = user.run(f"import mlflow\nprint(mlflow.create_experiment({CASE_ID!r}))")
    assert out["status"] == "ok", out
    user.squat_id = out["stdout"].strip().splitlines()[-1]
    return user


@pytest.fixture(scope="module")
def alice(hub, admin, squatter):
    user = approved_user(hub, admin, "alice")
    user.spawn()
    return user


def test_a_squatter_reads_nothing_of_the_case(hub, alice, squatter):
    record = json.loads((hub.home / "hub" / "mlflow-experiments.json").read_text())
    made = record["experiments"][CASE_ID]
    assert made != squatter.squat_id
    assert f"renamed to '{CASE_ID}.squatted-{squatter.squat_id}'" in hub.log()
    assert "(held by mallory)" in hub.log()

    out = alice.run(
        "import mlflow\n"
        f"mlflow.set_experiment({CASE_ID!r})\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_param('secret', 'case data')\n"
        "print(mlflow.get_experiment_by_name(" + repr(CASE_ID) + ").experiment_id)"
    )
    assert out["status"] == "ok", out
    assert out["stdout"].strip().splitlines()[-1] == made

    out = squatter.run(
        "import mlflow\n"
        "try:\n"
        f"    mlflow.get_experiment_by_name({CASE_ID!r}); print('READ')\n"
        "except Exception as exc:\n"
        "    print('REFUSED', type(exc).__name__)\n"
        f"print(len(mlflow.search_runs([{made!r}], output_format='list')))"
    )
    assert out["status"] == "ok", out
    lines = out["stdout"].strip().splitlines()
    assert lines[0].startswith("REFUSED") and lines[-1] == "0", out


def test_mlflow_answers_at_services_mlflow_with_the_hub_login(hub, alice):
    page = alice.http.get("/services/mlflow/", follow_redirects=True)
    assert page.status_code == 200, page.text[:500]
    assert 'src="static-files/static/js/' in page.text
    r = alice.http.post("/services/mlflow/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 50})
    assert r.status_code == 200, r.text
    assert [e["name"] for e in r.json()["experiments"]] == [CASE_ID]  # her case only
    # without the hub's login: nothing reaches MLflow
    import httpx

    r = httpx.post(f"{hub.url}/services/mlflow/api/2.0/mlflow/experiments/search", json={}, timeout=30)
    assert r.status_code == 401 and r.json()["error"] == "no hub identity in this request"
