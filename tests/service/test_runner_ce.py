"""The CE-marking kit's official pass through the platform's runner, end to end (issue 13).

The case from the template (`idsp case new --type ce_markering`), its exploratory pass as
`dvc repro` in the case, the data marked real, the checklist answered, justified, submitted
and approved through the service; then `POST api/cases/<id>/runs` (what `idsp run --purpose
gebruik` sends) runs all five stages as the runner account from a clean checkout, into one
MLflow run the service made and tagged, and the service registers the model from it.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from legal_ethics import audit, workflow
from tests.service.runkit import git, head, run_and_wait, run_tags, start_world, stop_world

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="the agent and runner need root")]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ce_markering"))


def _ce_case(cases: Path, mlflow_url: str, admin_password: str):
    from cekit import answer_blocking, dvc_repro, justify, new_case
    from idsp.case import Case

    root = new_case(cases)
    env = {"IDSP_HOME": os.environ["IDSP_HOME"], "IDSP_TRACKING__URI": mlflow_url, "IDSP_TRACKING__RETRIES": "2",
           "MLFLOW_TRACKING_USERNAME": "idsp-mlflow-admin", "MLFLOW_TRACKING_PASSWORD": admin_password}  # fmt: skip
    proc = dvc_repro(root, env=env)  # the exploratory pass, in the case
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    spec = yaml.safe_load((root / "case.yaml").read_text())
    for ds in spec["datasets"]:
        if ds["name"] == "ce_cases":
            ds["synthetic"] = False
    (root / "case.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    case = Case.open(root)
    answer_blocking(case)
    justify(case)
    workflow.submit(case, actor="pim", purpose="use")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "data real, checklist submitted", "--no-verify")
    return case


@pytest.fixture(scope="module")
def world():
    prefix = "c" + secrets.token_hex(3) + "-"
    base = Path(f"/tmp/idsp-runce-{prefix[:-1]}")
    base.mkdir(mode=0o711)
    (base / "idsp-home").mkdir()
    saved = {k: os.environ.get(k) for k in ("IDSP_HOME", "IDSP_CONFIG", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL")}
    os.environ["IDSP_HOME"] = str(base / "idsp-home")
    for k in ("IDSP_CONFIG", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL"):
        os.environ.pop(k, None)
    svc = server = agent = None
    try:
        svc, case, server, agent = start_world(prefix, base, build=_ce_case)
        git(case.root, "commit", "-qm", "approved", "--no-verify", "--allow-empty")
        yield {"svc": svc, "case": case, "prefix": prefix}
    finally:
        if svc is not None:
            stop_world(svc, server, agent, prefix, base)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_ce_kits_official_pass_runs_through_the_runner_and_registers(world):
    svc, case = world["svc"], world["case"]
    answer, lines = run_and_wait(svc, "tok-pim", {"commit": head(case), "purpose": "gebruik"}, timeout=900,
                                 case_id=case.id)  # fmt: skip
    assert answer["status"] == "FINISHED", lines[-4000:]
    for stage in ("generate", "validate", "train", "evaluate", "report"):
        assert f"Running stage '{stage}'" in lines, lines[-4000:]
    assert answer["official"] and answer["approval_ids"]
    run = run_tags(svc, answer["mlflow_run_id"])
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    metrics = {m["key"] for m in run["data"]["metrics"]}
    assert tags["idsp.official"] == "true" and tags["idsp.commit"] == head(case)
    assert "lift_at_capacity" in metrics and "fairness_triggers" in metrics  # train and evaluate logged here
    started = [e for e in audit.entries(path=svc.log.path)
               if e["event"] == "run.started" and e["data"]["run_id"] == answer["mlflow_run_id"]]  # fmt: skip
    assert started and started[0]["data"]["runner"] == f"{world['prefix']}svc-runner"
    with svc.client("tok-pim") as c:
        r = c.post(f"api/cases/{case.id}/models",
                   json={"run_id": answer["mlflow_run_id"], "name": f"{case.id}-risicoselectie"})  # fmt: skip
    assert r.status_code == 201, r.text
    got = httpx.get(f"{svc.mlflow_url}/api/2.0/mlflow/registered-models/get", auth=svc.mlflow_auth("pim"),
                    params={"name": f"{case.id}-risicoselectie"})  # fmt: skip
    assert got.status_code == 200 and got.json()["registered_model"]["latest_versions"][0]["version"] == "1"
