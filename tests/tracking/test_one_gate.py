"""One gate: `idsp ethics verify`, `case.run` and registration ask `legal_ethics.gate.check`,
the quality evidence included, so they cannot disagree (no tracking server is needed: a
refused run never reaches one)."""

from __future__ import annotations

import json

import pytest
from idsp.errors import GateRefused

from legal_ethics import gate, quality_evidence

NO_QUALITY = "dataset inspecties has no quality result for suite inspecties; run `idsp quality validate inspecties`"


def verify(cli, case) -> tuple[int, dict]:
    code, out, _ = cli("ethics", "verify", "--case", str(case.root), "--dataset", "inspecties", "--json")
    return code, json.loads(out)


def test_a_missing_quality_result_is_refused_by_verify_and_by_case_run_alike(approved_case, cli):
    code, decision = verify(cli, approved_case)
    assert code == 1 and decision["allowed"] is False
    assert NO_QUALITY in decision["reasons"]

    with pytest.raises(GateRefused) as err:
        with approved_case.run("train", datasets=["inspecties"]):
            pytest.fail("the body must not run")
    assert err.value.reasons == decision["reasons"]  # the same reasons, word for word


def test_a_passed_validation_opens_the_gate_and_changed_data_closes_it_again(approved_case, cli):
    from idsp import quality

    quality.validate("inspecties", case=approved_case)
    assert verify(cli, approved_case)[0] == 0
    decision = gate.check(approved_case, ["inspecties"])
    assert decision.allowed, decision.reasons
    (evidence,) = decision.quality
    assert evidence.state.startswith("passed 2/2") and evidence.data_match and len(evidence.files) == 2

    path = approved_case.dataset_path("inspecties")
    path.write_text(path.read_text() + path.read_text().splitlines()[-1] + "\n")
    (changed,) = quality_evidence.read_all(approved_case, ["inspecties"])
    assert not changed.data_match
    reasons = gate.check(approved_case, ["inspecties"]).reasons
    assert any("changed after its last quality validation" in r for r in reasons), reasons


def test_an_edited_quality_result_is_named(approved_case):
    from idsp import quality

    result = quality.validate("inspecties", case=approved_case)
    result.json_path.write_text(result.json_path.read_text().replace('"success": true', '"success": true '))
    problems = quality_evidence.read(approved_case, "inspecties").problems
    assert any("was edited after it was written" in p for p in problems), problems


def test_exploratory_runs_are_not_held_by_quality(case):
    decision = gate.check(case, ["synthetisch"])
    assert decision.allowed and not decision.official
    assert [e.dataset for e in decision.quality] == ["synthetisch"]
