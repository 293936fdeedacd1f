"""The case end to end: `idsp case new --type ce_markering`, `dvc repro` tracked in a real
MLflow server, the report; then the data marked real and the gate holding the run until
the checklist (with its justification entry) is approved."""

from __future__ import annotations

import json

import pytest
import yaml
from cekit import answer_blocking, approve, dvc_repro, git, justify, new_case, register_reviewers

pytestmark = pytest.mark.slow


def _runs(server_url: str, case_id: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server_url)
    exp = client.get_experiment_by_name(case_id)
    return [] if exp is None else client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def _mark_real(root) -> None:
    spec = yaml.safe_load((root / "case.yaml").read_text())
    for ds in spec["datasets"]:
        if ds["name"] == "ce_cases":
            ds["synthetic"] = False
    (root / "case.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))


def test_pipeline_end_to_end_and_the_gate_holds_real_data_until_approval(tmp_path, tracked, idsp_home):
    from idsp.case import Case

    from legal_ethics import gate, workflow

    env = {"IDSP_HOME": str(idsp_home), "IDSP_TRACKING__URI": tracked.url, "IDSP_TRACKING__RETRIES": "2"}
    root = new_case(tmp_path / "cases")

    # -- 1. exploratory: synthetic data, every stage runs and is tracked ------------------------
    proc = dvc_repro(root, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in ("generate", "validate", "train", "evaluate", "report"):
        assert f"Running stage '{stage}'" in proc.stdout
    fairness = json.loads((root / "reports/fairness.json").read_text())
    evaluation = json.loads((root / "reports/evaluation.json").read_text())
    assert fairness["triggers"]["count"] > 0 and fairness["random_arm"]["n"] >= 100
    assert evaluation["at_capacity"]["lift"] > 1
    assert json.loads((root / "reports/quality.json").read_text())["success"] is True
    html = (root / "reports/ce_report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert "Findings" in html and "synthetic" in html and "{{" not in html
    runs = _runs(tracked.url, "ce-speelgoed")
    assert [r.info.run_name for r in runs] == ["ce-train", "ce-evaluate", "ce-report"]
    assert all(r.info.status == "FINISHED" and r.data.tags["idsp.official"] == "false" for r in runs)
    assert runs[1].data.metrics["lift_at_capacity"] == pytest.approx(evaluation["at_capacity"]["lift"])
    assert "fairness.demographic_parity_ratio" in runs[1].data.metrics  # the platform's fairlearn report
    git(root, "add", "-A")
    git(root, "commit", "-qm", "exploratory run", "--no-verify")

    # -- 2. the data are marked real: the gate holds the run ----------------------------------
    _mark_real(root)
    case = Case.open(root)
    assert case.dataset("ce_cases").official
    answer_blocking(case, skip=("ce.rechtvaardigingstoets",))
    reasons = gate.check(case, ["ce_cases"]).reasons
    assert any("ce.fairness.triggers" in r and "triggers a justification" in r for r in reasons), reasons
    justify(case)
    reasons = gate.check(case, ["ce_cases"]).reasons
    assert not any("ce.fairness" in r for r in reasons), reasons
    workflow.submit(case, actor="pim")
    proc = dvc_repro(root, env=env)
    assert proc.returncode != 0
    assert "gate refused" in proc.stderr and "has not signed" in proc.stderr, proc.stderr[-2000:]
    assert len(_runs(tracked.url, "ce-speelgoed")) == 3  # a refused run creates nothing in MLflow

    # -- 3. approved: the official run goes through, tagged with the approvals ------------------
    keys = register_reviewers(tmp_path / "keys")
    decisions = approve(case, keys)
    assert gate.check(case, ["ce_cases"]).allowed, gate.check(case, ["ce_cases"]).reasons
    proc = dvc_repro(root, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # case.yaml changed, so train reruns; its model is byte-identical, so DVC rightly skips
    # evaluate and report: their approved outputs still hold.
    official = [r for r in _runs(tracked.url, "ce-speelgoed") if r.data.tags["idsp.official"] == "true"]
    assert [r.info.run_name for r in official] == ["ce-train"]
    assert official[0].info.status == "FINISHED"
    approval = official[0].data.tags["idsp.approval"]
    assert approval != "none" and all(d.id in approval for d in decisions)
    from mlflow.tracking import MlflowClient

    versions = MlflowClient(tracking_uri=tracked.url).search_model_versions("name='ce-speelgoed-risicoselectie'")
    assert [v.run_id for v in versions] == [official[0].info.run_id]  # only an approved run registers
    assert json.loads((root / "reports/fairness.json").read_text()) == fairness  # same data, same report
    assert gate.check(case, ["ce_cases"]).allowed  # the evidence the reviewers saw is unchanged
