"""Features have a rationale and no protected ground; the checklist items read the reports."""

from __future__ import annotations

import json

import pytest

from casuistiek.ce_markering import ethics, features, spec


def test_every_feature_has_a_rationale_and_none_is_protected_or_leaking():
    proof = features.check(features.FEATURES)
    assert proof["checks"] == {
        "features": len(features.FEATURES), "features_without_rationale": 0,
        "protected_or_group_features": 0, "leaking_features": 0,
    }  # fmt: skip
    names = {f.name for f in features.FEATURES}
    assert not names & {"operator_legal_form", "operator_size_class", "operator_country"}
    assert not {s for f in features.FEATURES for s in f.sources} & set(spec.POST_SELECTION_COLUMNS)
    # every column is either a feature source or excluded with a reason
    used = {s for f in features.FEATURES for s in f.sources}
    assert set(spec.COLUMN_NAMES) <= used | set(features.NOT_FEATURES)


def test_a_group_variable_as_feature_is_caught():
    bad = (*features.FEATURES, features.Feature("operator_legal_form", "category", ("operator_legal_form",), "x" * 30))
    assert features.check(bad)["checks"]["protected_or_group_features"] == 1


def test_excluding_an_unknown_feature_is_a_user_error():
    from idsp.errors import UserError

    with pytest.raises(UserError, match="ce_markering.features.exclude"):
        features.selected(["postcode"])


def _case(tmp_path, fairness: dict):
    import yaml
    from idsp.case import Case

    from legal_ethics import init_checklist

    spec_ = {
        "id": "ce-check", "title": "CE check", "zaaknummer": "NVWA-2026-000031", "inspectorates": ["NVWA"],
        "case_type": "ce_markering", "profile": {"risk_profiling": "companies", "ai_act_risk": "minimal"},
        "datasets": [{"name": "ce_cases", "path": "data/ce.parquet", "synthetic": False}],
    }  # fmt: skip
    (tmp_path / "case.yaml").write_text(yaml.safe_dump(spec_))
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "fairness.json").write_text(json.dumps(fairness))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rt.md").write_text("# Rechtvaardigingstoets\n")
    case = Case.open(tmp_path)
    init_checklist(case, actor="pim")
    return case


def test_a_trigger_demands_a_justification_entry_and_accepts_one(tmp_path):
    from legal_ethics import checklist, workflow

    case = _case(tmp_path, {"triggers": {"count": 3}})
    defn = checklist.load_definition(case)
    item = defn.item("ce.fairness.triggers")
    assert item.blocking and item.metric.justify_with == ethics.JUSTIFICATION
    assert defn.item(ethics.JUSTIFICATION) is not None and "ethicus" in defn.signoff_roles
    workflow.answer(case, "ce.fairness.triggers", actor="pim")  # the value is read from the report
    problems = checklist.item_problems(case, defn, checklist.load_answers(case))
    trigger = [p for p in problems if p.startswith("metric check ce.fairness.triggers")]
    assert trigger and "triggers a justification" in trigger[0] and "ce.rechtvaardigingstoets" in trigger[0]
    workflow.answer(case, ethics.JUSTIFICATION, "niet_gerechtvaardigd", rationale="niet te rechtvaardigen", actor="pim")
    problems = checklist.item_problems(case, defn, checklist.load_answers(case))
    assert any("gerechtvaardigd" in p for p in problems if "ce.fairness.triggers" in p)
    workflow.answer(case, ethics.JUSTIFICATION, "gerechtvaardigd", rationale="zie toets", evidence=["docs/rt.md"], actor="pim")
    problems = checklist.item_problems(case, defn, checklist.load_answers(case))
    assert not [p for p in problems if "ce.fairness.triggers" in p]
    from legal_ethics import render

    text = render.render_markdown(render.view(case))
    assert "rechtvaardiging vereist in `ce.rechtvaardigingstoets`" in text  # the reviewer reads the rule


def test_no_trigger_needs_no_justification(tmp_path):
    from legal_ethics import checklist, workflow

    case = _case(tmp_path, {"triggers": {"count": 0}})
    workflow.answer(case, "ce.fairness.triggers", actor="pim")
    defn = checklist.load_definition(case)
    assert not [p for p in checklist.item_problems(case, defn, checklist.load_answers(case)) if "ce.fairness" in p]


def test_checklists_without_the_new_field_keep_their_hash():
    from legal_ethics.schema import MetricCheck

    plain = MetricCheck(artifact="a.json", path="x", threshold=1)
    assert "justify_with" not in plain.model_dump(mode="json")
    assert MetricCheck(artifact="a.json", path="x", threshold=1, justify_with="k").model_dump()["justify_with"] == "k"
