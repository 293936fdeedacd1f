"""Profiles: the DPIA pre-scan rules, which items a case gets, and case-type contributions."""

from __future__ import annotations

import json

import pytest
from idsp.case import CaseSpec
from idsp.errors import CaseError

from legal_ethics import checklist, gate, init_checklist, profiles, workflow
from legal_ethics.schema import ChecklistItem, MetricCheck


def spec(**profile) -> CaseSpec:
    return CaseSpec(id="zaak-een", title="t", zaaknummer="ILT-2026-000001", inspectorates=("ILT",), profile=profile)


@pytest.mark.parametrize(
    ("profile", "dpia"),
    [
        ({"personal_data": False}, "niet_van_toepassing"),
        ({"personal_data": True}, "niet_nodig"),
        ({"personal_data": True, "dpia_prescan": {"edpb_grootschalig": True}}, "aanbevolen"),
        ({"personal_data": True, "dpia_prescan": {"edpb_grootschalig": True, "edpb_koppelen_datasets": True}}, "verplicht"),
        ({"personal_data": True, "dpia_prescan": {"ap_cameratoezicht": True}}, "verplicht"),
        ({"personal_data": True, "dpia_prescan": {"nieuwe_wetgeving": True}}, "verplicht"),
        ({"personal_data": True, "dpia_prescan": {"risicoscore_boven_4": True}}, "verplicht"),
        ({"personal_data": True, "risk_profiling": "natural_persons"}, "verplicht"),  # AP list: profilering
        ({"personal_data": True, "automated_decision": True}, "aanbevolen"),  # one EDPB criterion
        ({"personal_data": True, "automated_decision": True, "special_categories": True}, "verplicht"),
    ],
)
def test_dpia_prescan_rules(profile, dpia):
    assert profiles.prescan(spec(**profile)).dpia == dpia


def test_prescan_other_instruments_and_explanations():
    out = profiles.prescan(spec(personal_data=True, ai_act_risk="high", dpia_prescan={
        "internationale_doorgifte_buiten_eer": True, "doorgifte_scc_of_overig": True,
        "digitale_dienst": True, "minderjarigen": True}))
    assert (out.dtia, out.iama, out.kia) == ("verplicht", "aanbevolen", "aanbevolen")
    assert "hoog_risico_ai (volgt uit profile.ai_act_risk = high)" in out.implied
    assert any(b.startswith("IAMA aanbevolen") for b in out.because)


def test_explicit_answer_wins_over_implied_one():
    out = profiles.prescan(spec(personal_data=True, risk_profiling="natural_persons",
                                dpia_prescan={"ap_profilering": False, "edpb_evaluatie_scoring": False}))
    assert out.dpia == "niet_nodig"


def test_unknown_prescan_key_is_a_user_error():
    with pytest.raises(CaseError, match="unknown DPIA pre-scan answer"):
        profiles.prescan(spec(personal_data=True, dpia_prescan={"edpb_typo": True}))


def _keys(case):
    return {i.key: i for i in checklist.load_definition(case).items}


def test_minimal_case_gets_the_general_items_only(make_case):
    c = make_case({"personal_data": False, "risk_profiling": "none", "ai_act_risk": "not_ai"})
    init_checklist(c, actor="pim")
    items = _keys(c)
    defn = checklist.load_definition(c)
    assert "ak.grw-02" in items and "ak.awb-01" in items and "aiact.classification" in items
    assert not any(k.startswith(("ak.avg-", "ak.aia-", "iama.", "dpia.", "profiling.")) for k in items)
    assert defn.signoff_roles == ("jurist", "gemandateerd-verantwoordelijke")


def test_risk_profiling_of_persons_with_high_risk_ai(make_case):
    c = make_case({"personal_data": True, "risk_profiling": "natural_persons", "ai_act_risk": "high",
                   "automated_decision": False})
    init_checklist(c, actor="pim")
    items = _keys(c)
    defn = checklist.load_definition(c)
    assert defn.prescan["dpia"] == "verplicht" and defn.prescan["iama"] == "aanbevolen"
    assert items["profiling.bias-analysis"].blocking and items["profiling.justification"].blocking
    assert items["profiling.random-sample"].minimum == 0.05
    assert items["iama.1.3.1"].blocking and items["iama.1.3.1"].expected is False
    assert items["dpia.20"].blocking and items["dpia.20"].required_evidence == ("DPIA-document",)
    assert items["ak.aia-27"].blocking and "ak.aia-09" in items  # high-risk requirements
    assert "ak.avg-10" in items  # profiling persons -> art. 22 AVG
    assert set(defn.signoff_roles) == {"privacy-officer", "jurist", "gemandateerd-verantwoordelijke", "ethicus"}


def test_init_refuses_to_overwrite_without_force(case):
    from idsp.errors import UserError

    with pytest.raises(UserError, match="already has a checklist"):
        init_checklist(case)
    init_checklist(case, force=True, actor="pim")


# --- case types ------------------------------------------------------------------------


def fairness_items(spec):
    return [ChecklistItem(
        key="ce.fairness-ratio", instrument="local", kind="measure", section="CE-markering",
        title="Selectieratio tussen rechtsvormen binnen productcategorie", blocking=True,
        answer_type="metric_check", why="case type ce_markering",
        metric=MetricCheck(artifact="reports/fairness.json", path="selection_rate.ratio", op=">=", threshold=0.8),
        responsible_role="data-scientist", reviewer_roles=("ethicus", "jurist"),
    )]


@pytest.fixture
def ce_case(make_case, monkeypatch):
    monkeypatch.setattr(profiles, "_CASE_TYPES", {})
    profiles.register_case_type("ce_markering", fairness_items, signoff_roles=("ethicus",))
    c = make_case(case_type="ce_markering")
    init_checklist(c, actor="pim")
    return c


def test_case_type_adds_items_and_roles(ce_case):
    defn = checklist.load_definition(ce_case)
    assert defn.item("ce.fairness-ratio").answer_type == "metric_check"
    assert "ethicus" in defn.signoff_roles


def test_metric_check_reads_the_artefact(ce_case):
    ans = workflow.answer(ce_case, "ce.fairness-ratio", actor="pim")
    assert ans.value == pytest.approx(0.91)
    assert ans.evidence[0].path == "reports/fairness.json"
    assert "meets >= 0.8" in ans.rationale


def test_failing_metric_keeps_the_gate_closed(ce_case, keys, kit):
    kit.answer_all(ce_case, only_blocking=True)
    workflow.submit(ce_case, actor="pim")
    kit.approve_all(ce_case, keys, people=("alice", "bob", "carol", "dave"))
    assert gate.check(ce_case, ["inspecties"]).allowed
    # The pipeline writes a new, worse fairness report.
    (ce_case.root / "reports" / "fairness.json").write_text(json.dumps({"selection_rate": {"ratio": 0.6}}))
    reasons = "\n".join(gate.check(ce_case, ["inspecties"]).reasons)
    assert "metric check ce.fairness-ratio" in reasons and "selection_rate.ratio = 0.6 fails >= 0.8" in reasons
    assert "evidence file reports/fairness.json of answer ce.fairness-ratio changed" in reasons


def test_metric_check_with_missing_path_says_what_is_missing(ce_case):
    from idsp.errors import UserError

    (ce_case.root / "reports" / "fairness.json").write_text('{"other": 1}')
    with pytest.raises(UserError, match="has no selection_rate.ratio"):
        workflow.answer(ce_case, "ce.fairness-ratio", actor="pim")


def triggered_items(spec):
    return [
        ChecklistItem(
            key="ce.triggers", instrument="local", kind="measure", section="CE-markering", title="Fairness-triggers",
            blocking=True, answer_type="metric_check", why="zaaktype ce_markering",
            metric=MetricCheck(artifact="reports/fairness.json", path="selection_rate.ratio", op=">=", threshold=0.8,
                               justify_with="ce.rechtvaardiging"),
        ),
        ChecklistItem(
            key="ce.rechtvaardiging", instrument="local", kind="measure", section="CE-markering",
            title="Rechtvaardigingstoets per trigger", answer_type="choice",
            options=("gerechtvaardigd", "niet_gerechtvaardigd", "nvt"), pass_values=("gerechtvaardigd",),
            required_evidence=("rechtvaardigingstoets",), why="zaaktype ce_markering",
        ),
    ]


def test_metric_review_trigger_needs_a_justification_entry(make_case, monkeypatch, keys, kit):
    monkeypatch.setattr(profiles, "_CASE_TYPES", {})
    profiles.register_case_type("ce_markering", triggered_items)
    c = make_case(case_type="ce_markering")
    init_checklist(c, actor="pim")
    (c.root / "reports" / "fairness.json").write_text(json.dumps({"selection_rate": {"ratio": 0.7}}))
    workflow.answer(c, "ce.triggers", actor="pim")
    reasons = "\n".join(checklist.item_problems(c, checklist.load_definition(c), checklist.load_answers(c)))
    assert "metric check ce.triggers (Fairness-triggers) triggers a justification" in reasons
    assert "answer item ce.rechtvaardiging" in reasons
    workflow.answer(c, "ce.rechtvaardiging", "gerechtvaardigd", rationale="Legitiem doel, noodzakelijk, evenredig.",
                    evidence=["docs/rechtvaardiging.md"], actor="pim")
    reasons = "\n".join(checklist.item_problems(c, checklist.load_definition(c), checklist.load_answers(c)))
    assert "ce.triggers" not in reasons


def test_justify_with_must_name_an_item():
    from pydantic import ValidationError

    from legal_ethics.schema import ChecklistDefinition

    item = triggered_items(None)[0]
    with pytest.raises(ValidationError, match="justify_with names 'ce.rechtvaardiging', which is not an item"):
        ChecklistDefinition(id="x-ethics", case_id="x", title="t", created="2026-01-01",
                            signoff_roles=("jurist",), items=(item,))
