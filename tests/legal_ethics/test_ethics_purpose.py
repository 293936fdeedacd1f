"""Two steps on real data: an approval for development lets runs build and evaluate the
model; the items judged on what those runs produce (phase "use") are answered from their
reports, and only an approval for use lets the model be put to use."""

from __future__ import annotations

import pytest
import yaml
from idsp.errors import Refused

from legal_ethics import checklist, gate, state, workflow
from legal_ethics.schema import ChecklistItem, MetricCheck

FAIRNESS = "reports/fairness.json"


@pytest.fixture
def staged_case(case, kit):
    """The case's checklist plus one blocking check on a report that only a run makes."""
    defn = checklist.load_definition(case)
    item = ChecklistItem(
        key="local.fairness-ratio", instrument="local", kind="measure", section="Eerlijkheid",
        title="Selectieratio binnen productcategorie", blocking=True, answer_type="metric_check", phase="use",
        metric=MetricCheck(artifact=FAIRNESS, path="selection_rate.ratio", threshold=0.8),
        why="test", responsible_role="data-scientist",
    )
    checklist.save(case, checklist.CHECKLIST_FILE, defn.model_copy(update={"items": (*defn.items, item)}))
    (case.root / FAIRNESS).unlink()  # no run on the real data has happened yet
    # what can be answered before such a run: the blocking items of phase development
    workflow.answer_many(case, [
        {"key": i.key, "value": kit.passing_value(i), "rationale": "Zie bewijs.",
         "evidence": [kit.EVIDENCE[e] for e in i.required_evidence]}
        for i in checklist.load_definition(case).items if i.blocking and i.phase == "development"
    ], actor="pim")
    return case


def test_submitting_for_use_names_the_items_that_wait_and_the_way_out(staged_case):
    with pytest.raises(Refused) as exc:
        workflow.submit(staged_case, actor="pim")
    assert "local.fairness-ratio" in exc.value.message and "profiling.bias-analysis" in exc.value.message
    assert "--purpose development" in exc.value.fix


def test_development_approval_allows_development_runs_only(staged_case, keys, kit):
    sub = workflow.submit(staged_case, actor="pim", purpose="development")
    assert sub.purpose == "development"
    kit.approve_all(staged_case, keys)
    st = state.evaluate(staged_case)
    assert st.status == "approved" and st.purpose == "development"
    assert all(v.payload["purpose"] == "development" for v in st.approvals)  # signed, not just recorded

    develop = gate.check(staged_case, ["inspecties"], purpose="development")
    assert develop.allowed, develop.reasons
    use = gate.check(staged_case, ["inspecties"], purpose="use")
    assert not use.allowed
    assert any("approved for development only" in r and "local.fairness-ratio" in r for r in use.reasons)


def test_editing_the_recorded_purpose_does_not_turn_development_into_use(staged_case, keys, kit):
    workflow.submit(staged_case, actor="pim", purpose="development")
    kit.approve_all(staged_case, keys)
    review_file = checklist.ethics_dir(staged_case) / checklist.REVIEW_FILE
    record = yaml.safe_load(review_file.read_text(encoding="utf-8"))
    record["submissions"][-1]["purpose"] = "use"
    review_file.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    st = state.evaluate(staged_case)
    assert st.submission.purpose == "use" and st.purpose == "development"
    assert not gate.check(staged_case, ["inspecties"], purpose="use").allowed


def test_a_reviewer_does_not_sign_a_purpose_edited_after_submission(staged_case, keys):
    workflow.submit(staged_case, actor="pim", purpose="development")
    review_file = checklist.ethics_dir(staged_case) / checklist.REVIEW_FILE
    record = yaml.safe_load(review_file.read_text(encoding="utf-8"))
    record["submissions"][-1]["purpose"] = "use"
    review_file.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    with pytest.raises(Refused, match="submitted for development"):
        workflow.decide(staged_case, "approve", role="jurist", key_path=keys["alice"], actor="alice")


def answer_use_items(case, kit) -> None:
    workflow.answer_many(case, [
        {"key": i.key, "value": kit.passing_value(i), "rationale": "Uit de ontwikkelruns.",
         "evidence": [kit.EVIDENCE[e] for e in i.required_evidence]}
        for i in checklist.load_definition(case).items
        if i.blocking and i.phase == "use" and i.answer_type != "metric_check"
    ], actor="pim")


def test_the_use_approval_is_judged_on_the_development_runs_report(staged_case, keys, kit):
    workflow.submit(staged_case, actor="pim", purpose="development")
    kit.approve_all(staged_case, keys)
    # a development run wrote the report; the metric item is answered from it
    (staged_case.root / FAIRNESS).write_text('{"selection_rate": {"ratio": 0.62}}', encoding="utf-8")
    workflow.answer(staged_case, "local.fairness-ratio", actor="pim")
    answer_use_items(staged_case, kit)
    assert state.evaluate(staged_case).status == "draft"  # new content: the development approval is spent
    workflow.submit(staged_case, actor="pim")  # for use
    kit.approve_all(staged_case, keys)
    st = state.evaluate(staged_case)
    assert st.status == "approved" and st.purpose == "use"
    refused = gate.check(staged_case, ["inspecties"], purpose="use")
    assert any("selection_rate.ratio = 0.62 fails >= 0.8" in r for r in refused.reasons), refused.reasons

    (staged_case.root / FAIRNESS).write_text('{"selection_rate": {"ratio": 0.91}}', encoding="utf-8")
    workflow.answer(staged_case, "local.fairness-ratio", actor="pim")
    answer_use_items(staged_case, kit)  # the bias-analysis evidence is the new report
    workflow.submit(staged_case, actor="pim")
    kit.approve_all(staged_case, keys)
    assert gate.check(staged_case, ["inspecties"], purpose="use").allowed
    assert gate.check(staged_case, ["inspecties"], purpose="development").allowed  # use covers development


def test_the_cli_submits_and_verifies_by_purpose(staged_case, keys, kit, cli, monkeypatch):
    import json

    monkeypatch.chdir(staged_case.root)
    monkeypatch.setenv("IDSP_USER", "pim")
    code, _, err = cli("ethics", "submit")
    assert code == 1 and "--purpose development" in " ".join(err.split())
    assert cli("ethics", "submit", "--purpose", "testing")[0] == 2
    code, out, _ = cli("ethics", "submit", "--purpose", "development", "--json")
    assert code == 0 and json.loads(out)["purpose"] == "development"
    kit.approve_all(staged_case, keys)
    code, out, _ = cli("ethics", "status", "--json")
    assert json.loads(out)["approved_for"] == "development"
    assert cli("ethics", "verify", "--purpose", "development")[0] == 0
    code, out, _ = cli("ethics", "verify")
    assert code == 1 and "approved for development only" in " ".join(out.split())
