"""The review workflow end to end: init, answer, submit, four-eyes approvals, the gate opens."""

from __future__ import annotations

from legal_ethics import gate, state


def test_a_correct_approval_opens_the_gate(approved_case):
    st = state.evaluate(approved_case)
    assert st.status == "approved", st.reasons
    decision = gate.check(approved_case, ["inspecties"])
    assert decision.allowed, decision.reasons
    assert decision.official
    assert decision.checklist_hash == st.content_sha256
    assert len(decision.approval_ids) == 3
    assert set(decision.bindings) == {"case", "checklist", "code", "environment", "data", "params"}
    assert decision.bindings["data"]["inspecties"]


def test_exploratory_run_needs_no_approval(case):
    decision = gate.check(case, ["synthetisch"])
    assert decision.allowed and not decision.official


def test_official_run_without_approval_is_refused_with_reason(case):
    decision = gate.check(case, ["inspecties"])
    assert not decision.allowed
    assert any("not been submitted" in r for r in decision.reasons)
