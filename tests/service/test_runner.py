"""Official runs decided and executed by the platform (issue 13 items 2, 3, 4 and 7).

Real parts: the platform service (tornado, HubOAuth; only the hub's token table is a stand-in),
the root case agent on its Unix socket, the runner OS account, a real MLflow server with the
hub's login and the platform's ``models_auth``, real git and DVC. An honest run for use goes
through and is recorded; each attack is refused, with the message the member reads.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from idsp.errors import Refused

from legal_ethics import audit
from tests.service.runkit import CASE, git, head, run_and_wait, run_tags, start_world, stop_world

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="the agent and runner need root")]
MARKER = Path("/tmp") / f"idsp-shadow-ran-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    prefix = "r" + secrets.token_hex(3) + "-"
    base = Path(f"/tmp/idsp-runtest-{prefix[:-1]}")
    base.mkdir(mode=0o711)
    home = base / "idsp-home"
    home.mkdir()
    saved = {k: os.environ.get(k) for k in ("IDSP_HOME", "IDSP_CONFIG", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL")}
    os.environ["IDSP_HOME"] = str(home)
    for k in ("IDSP_CONFIG", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL"):
        os.environ.pop(k, None)
    svc = server = agent = None
    try:
        svc, case, server, agent = start_world(prefix, base)
        yield {"svc": svc, "case": case, "prefix": prefix, "base": base}
    finally:
        if svc is not None:
            stop_world(svc, server, agent, prefix, base)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        MARKER.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def honest(world):
    """The honest run for use, with an untracked package shadowing the tracked code beside it."""
    svc, case = world["svc"], world["case"]
    shadow = case.root / "src" / "riskpkg" / "features"
    shadow.mkdir()
    (shadow / "__init__.py").write_text(f'import pathlib\npathlib.Path("{MARKER}").write_text("ran")\nSOURCE = "shadow"\n')
    try:
        answer, lines = run_and_wait(svc, "tok-pim", {"commit": head(case), "purpose": "gebruik"})
    finally:
        import shutil

        shutil.rmtree(shadow)
    return answer, lines


def _entries(svc, event: str) -> list[dict]:
    return [e for e in audit.entries(path=svc.log.path) if e["event"] == event]


def test_an_honest_run_for_use_is_made_by_the_runner_and_recorded(world, honest):
    svc, prefix = world["svc"], world["prefix"]
    answer, lines = honest
    assert answer["status"] == "FINISHED" and answer["exit_code"] == 0, lines[-3000:]
    assert "Running stage 'train'" in lines and "md5 gecontroleerd" in lines, lines
    assert answer["official"] and answer["purpose"] == "use" and answer["approval_ids"]
    assert answer["runner"] == f"{prefix}svc-runner"
    assert answer["mlflow_link"] == f"/services/mlflow/#/experiments/{answer['experiment_id']}/runs/{answer['mlflow_run_id']}"
    started = [e for e in _entries(svc, "run.started") if e["data"]["run_id"] == answer["mlflow_run_id"]]
    ended = [e for e in _entries(svc, "run.ended") if e["data"]["run_id"] == answer["mlflow_run_id"]]
    assert len(started) == 1 and len(ended) == 1
    assert started[0]["actor"] == "pim" and started[0]["data"]["runner"] == f"{prefix}svc-runner"
    assert started[0]["data"]["official"] is True and started[0]["data"]["purpose"] == "use"
    assert ended[0]["data"]["status"] == "FINISHED" and ended[0]["data"]["exit_code"] == 0
    run = run_tags(svc, answer["mlflow_run_id"])
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["idsp.official"] == "true" and tags["idsp.purpose"] == "use"
    assert tags["idsp.approval"] == ",".join(answer["approval_ids"]) and tags["idsp.commit"] == answer["commit"]
    assert tags["idsp.audit.entry"] == f"{started[0]['seq']}:{started[0]['hash']}"
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["rows"] == 2.0
    # the untracked shadowing package was not in the checkout: the tracked code ran
    assert params["feature_source"] == "tracked" and "with tracked features" in lines
    assert not MARKER.exists()
    # the runner's folder is gone; its log stays for the service
    assert list((world["base"] / "runner" / "work").iterdir()) == []


def test_the_service_registers_the_model_of_the_official_run(world, honest):
    svc = world["svc"]
    answer, _ = honest
    with svc.client("tok-pim") as c:
        r = c.post(f"api/cases/{CASE}/models", json={"run_id": answer["mlflow_run_id"], "name": f"{CASE}-model"})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == "1" and r.json()["run_id"] == answer["mlflow_run_id"]
    got = httpx.get(f"{svc.mlflow_url}/api/2.0/mlflow/model-versions/get", auth=svc.mlflow_auth("pim"),
                    params={"name": f"{CASE}-model", "version": "1"})  # fmt: skip
    assert got.status_code == 200, got.text  # the member reads it
    tags = {t["key"]: t["value"] for t in got.json()["model_version"]["tags"]}
    assert tags["idsp.registered_by"] == "platform" and tags["idsp.run_id"] == answer["mlflow_run_id"]
    assert _entries(svc, "model.registered")[-1]["actor"] == "pim"


def test_a_member_cannot_edit_the_official_run(world, honest):
    svc = world["svc"]
    answer, _ = honest
    r = httpx.post(f"{svc.mlflow_url}/api/2.0/mlflow/runs/set-tag", auth=svc.mlflow_auth("pim"),
                   json={"run_id": answer["mlflow_run_id"], "key": "idsp.approval", "value": "forged"})  # fmt: skip
    assert r.status_code == 403, r.text


def test_users_cannot_create_registered_models_or_versions_on_mlflow(world, honest, monkeypatch):
    svc = world["svc"]
    answer, _ = honest
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "pim")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", svc.mlflow_auth("pim")[1])
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=svc.mlflow_url)
    with pytest.raises(MlflowException) as exc:
        client.create_registered_model("pim-eigen-model")
    assert "Only the platform registers models" in str(exc.value)
    mlflow.set_tracking_uri(svc.mlflow_url)
    with pytest.raises(MlflowException) as exc:
        mlflow.register_model(f"runs:/{answer['mlflow_run_id']}/model", f"{CASE}-model")
    assert "Only the platform registers models" in str(exc.value) or "PERMISSION_DENIED" in str(exc.value)
    # the web UI's route is the same refusal
    r = httpx.post(f"{svc.mlflow_url}/ajax-api/2.0/mlflow/registered-models/create", auth=svc.mlflow_auth("pim"),
                   json={"name": "via-ajax"})  # fmt: skip
    assert r.status_code == 403 and "Only the platform registers models" in r.text


def test_forged_tags_do_not_register(world, honest):
    """A run in the case's own experiment with every official tag copied: refused, by the log."""
    svc = world["svc"]
    answer, _ = honest
    real = {t["key"]: t["value"] for t in run_tags(svc, answer["mlflow_run_id"])["data"]["tags"]}
    from idsp.hub.tracking import TrackingAdmin  # noqa: F401 - the experiment is the service's

    auth = svc.mlflow_auth("pim")
    exp = httpx.post(f"{svc.mlflow_url}/api/2.0/mlflow/experiments/create", auth=auth,
                     json={"name": f"pim-{secrets.token_hex(3)}"}).json()["experiment_id"]  # fmt: skip
    forged = [{"key": k, "value": v} for k, v in real.items() if k.startswith("idsp.")]
    made = httpx.post(f"{svc.mlflow_url}/api/2.0/mlflow/runs/create", auth=auth,
                      json={"experiment_id": exp, "tags": forged}).json()["run"]["info"]["run_id"]  # fmt: skip
    with svc.client("tok-pim") as c:
        r = c.post(f"api/cases/{CASE}/models", json={"run_id": made, "name": f"{CASE}-model"})
    assert r.status_code == 403, r.text
    assert any("has no official run" in reason and "whatever a run's tags say" in reason for reason in r.json()["reasons"])


def test_a_non_member_is_refused(world):
    svc, case = world["svc"], world["case"]
    with svc.client("tok-eve") as c:
        r = c.post(f"api/cases/{CASE}/runs", json={"commit": head(case), "purpose": "gebruik"})
        assert r.status_code == 403 and "is not one of your cases" in r.json()["error"]
        r = c.post(f"api/cases/{CASE}/models", json={"run_id": "0" * 32, "name": "x"})
        assert r.status_code == 403


def _refused(svc, commit: str) -> dict:
    with svc.client("tok-pim") as c:
        r = c.post(f"api/cases/{CASE}/runs", json={"commit": commit, "purpose": "gebruik"})
    assert r.status_code in (403, 409), r.text
    return r.json()


def test_a_commit_other_than_the_approved_one_is_refused(world):
    svc, case = world["svc"], world["case"]
    approved = head(case)
    (case.root / "src" / "riskpkg" / "features.py").write_text('SOURCE = "changed after approval"\n')
    git(case.root, "commit", "-qam", "other features")
    try:
        body = _refused(svc, head(case))
        assert "the run gate refused" in body["error"]
        assert any("the code (the committed git tree" in r and "changed since approval" in r for r in body["reasons"])
        body = _refused(svc, "f" * 40)
        assert "is not in the case's repository" in body["error"]
    finally:
        git(case.root, "reset", "-q", "--hard", approved)


def test_case_yaml_edited_after_approval_is_refused(world):
    svc, case = world["svc"], world["case"]
    approved = head(case)
    spec = yaml.safe_load((case.root / "case.yaml").read_text())
    spec["policy"] = {"approval_binds": ["checklist"]}
    (case.root / "case.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    git(case.root, "commit", "-qam", "bind less")
    try:
        body = _refused(svc, head(case))
        assert any(r.startswith("case.yaml changed since approval") for r in body["reasons"]), body["reasons"]
    finally:
        git(case.root, "reset", "-q", "--hard", approved)


def test_a_dirty_or_untracked_tree_is_refused_by_idsp_run(world):
    from idsp.cli.run import committed_head

    case = world["case"]
    assert committed_head(case.root) == head(case)
    (case.root / "src" / "riskpkg" / "new_helper.py").write_text("X = 1\n")
    try:
        with pytest.raises(Refused) as exc:
            committed_head(case.root)
        assert "src/riskpkg/new_helper.py" in exc.value.what and "runs the committed code only" in exc.value.what
    finally:
        (case.root / "src" / "riskpkg" / "new_helper.py").unlink()


def test_a_run_for_use_in_the_users_own_process_is_refused_even_with_the_gate_replaced(world):
    """As in a member's JupyterLab on the hub: the gate patched to say yes changes nothing."""
    case = world["case"]
    code = f"""
import json
from idsp.case import Case
from idsp.errors import Refused
from legal_ethics import gate
gate.check = lambda *a, **k: (_ for _ in ()).throw(AssertionError("the gate was asked"))
case = Case.open({str(case.root)!r})
try:
    case.run("train", datasets=["inspecties"], purpose="use").start()
    print(json.dumps({{"refused": False}}))
except Refused as exc:
    print(json.dumps({{"refused": True, "message": exc.message}}))
"""
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": "tok-pim", "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api"}
    done = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["refused"] and "is made by the platform, not in your own process" in out["message"]
    assert "idsp run --purpose gebruik" in out["message"]


def test_the_runner_variable_in_a_users_process_is_refused(world, monkeypatch):
    from idsp.tracking import runner_mode

    monkeypatch.setenv(runner_mode.RUN_ENV, "a" * 32)
    with pytest.raises(Refused) as exc:
        runner_mode.attached()
    assert "not as the platform's runner" in exc.value.what


def test_audit_verify_against_tracking_compares_every_run_with_the_platforms_log(world, honest):
    """Item 7: the service's log against every run of every experiment; the forged run of the
    test above is named, and an official run whose approval tag was changed on the server too."""
    svc = world["svc"]
    answer, _ = honest
    with svc.client("tok-pim") as c:
        before = c.get("api/runs/verify").json()
    assert before["official_runs"] >= 1 and before["runs_compared"] >= before["official_runs"]
    forged = [p for p in before["problems"] if "is tagged official, but the platform's audit log never started it" in p]
    assert before["status"] == "broken" and len(forged) == 1, before
    r = httpx.post(f"{svc.mlflow_url}/api/2.0/mlflow/runs/set-tag", auth=svc.admin(),
                   json={"run_id": answer["mlflow_run_id"], "key": "idsp.approval", "value": "dec-forged"})  # fmt: skip
    assert r.status_code == 200
    with svc.client("tok-pim") as c:
        after = c.get("api/runs/verify").json()
    assert any(answer["mlflow_run_id"] in p and "claims approval 'dec-forged'" in p for p in after["problems"]), after
