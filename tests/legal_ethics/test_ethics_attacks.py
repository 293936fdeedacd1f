"""The attacks of issue 3: each is refused with a reason a reviewer understands."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from idsp.case import Case
from idsp.errors import Refused, UserError

from legal_ethics import approvals, checklist, gate, reviewers, state, workflow
from legal_ethics.reviewers import RegistryError


def _reasons(case, datasets=("inspecties",), **kw) -> str:
    decision = gate.check(case, list(datasets), **kw)
    assert not decision.allowed, "the gate should have refused"
    return "\n".join(decision.reasons)


def _edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _forge(case, keypair, *, reviewer: str, role: str, decision: str = "approve", **changes):
    """Write a signed decision straight into review.yaml, bypassing the workflow's checks."""
    st = state.evaluate(case)
    payload = approvals.build_payload(
        decision=decision, case_id=case.id, checklist_id=st.definition.id, submission_id=st.submission.id,
        content_sha256=st.content_sha256, item_hashes=checklist.item_hashes(st.definition, st.answers),
        evidence=checklist.evidence_hashes(st.answers), bindings={}, role=role, reviewer=reviewer,
        public_key=keypair.public_key, at=datetime.now(UTC), valid_days=365,
    )
    payload.update(changes)
    signed = approvals.sign(payload, keypair)
    review = checklist.load_review(case)
    checklist.save(case, checklist.REVIEW_FILE, review.model_copy(update={"decisions": (*review.decisions, signed)}))
    return signed


# --- four-eyes and roles -------------------------------------------------------------


class TestFourEyes:
    def test_author_cannot_approve_through_the_workflow(self, case, keys, kit):
        kit.answer_all(case, only_blocking=True)  # pim answers ...
        workflow.submit(case, actor="pim")
        with pytest.raises(Refused, match="four-eyes"):  # ... and pim is also a jurist
            workflow.decide(case, "approve", role="jurist", key_path=keys["pim"], actor="pim")

    def test_self_approval_written_by_hand_does_not_count(self, case, keys, kit):
        kit.answer_all(case, only_blocking=True)
        workflow.submit(case, actor="pim")
        _forge(case, reviewers.load_key(keys["pim"]), reviewer="pim", role="jurist")
        kit.approve_all(case, keys, people=("bob", "carol"))
        st = state.evaluate(case)
        assert st.status == "in_review"
        assert any("pim answered items" in r and "four-eyes" in r for r in st.reasons)
        # pim holds the jurist role too, but may not sign his own work: only alice is named.
        assert "role Jurist has not signed (reviewers with this role: alice)" in _reasons(case)

    def test_submitter_cannot_approve(self, case, keys, kit):
        kit.answer_all(case, actor="dave", only_blocking=True)
        workflow.submit(case, actor="alice")
        with pytest.raises(Refused, match="four-eyes"):
            workflow.decide(case, "approve", role="jurist", key_path=keys["alice"], actor="alice")

    def test_every_required_role_must_sign(self, case, keys, kit):
        kit.answer_all(case, only_blocking=True)
        workflow.submit(case, actor="pim")
        kit.approve_all(case, keys, people=("alice", "bob"))
        st = state.evaluate(case)
        assert st.status == "in_review"
        reasons = _reasons(case)
        assert "role Gemandateerd verantwoordelijke has not signed (reviewers with this role: carol)" in reasons

    def test_one_person_cannot_fill_two_roles(self, case, keys, tmp_path, kit):
        pair = reviewers.keygen(tmp_path / "multi.pem")
        reviewers.register("max", ["jurist", "privacy-officer"], pair.public_key, actor="admin")
        kit.answer_all(case, only_blocking=True)
        workflow.submit(case, actor="pim")
        workflow.decide(case, "approve", role="jurist", key_path=pair.path, actor="max")
        workflow.decide(case, "approve", role="privacy-officer", key_path=pair.path, actor="max")
        kit.approve_all(case, keys, people=("carol",))
        st = state.evaluate(case)
        assert st.status == "in_review"
        assert any("a different person must sign each role" in r for r in st.reasons)

    def test_reviewer_without_the_role_is_refused(self, case, keys, kit):
        kit.answer_all(case, only_blocking=True)
        workflow.submit(case, actor="pim")
        with pytest.raises(Refused, match="does not hold the role"):
            workflow.decide(case, "approve", role="privacy-officer", key_path=keys["alice"], actor="alice")
        forged = _forge(case, reviewers.load_key(keys["alice"]), reviewer="alice", role="privacy-officer")
        st = state.evaluate(case)
        assert any(forged.id in r and "does not hold the role privacy-officer" in r for r in st.reasons)

    def test_someone_elses_key_is_refused(self, case, keys, kit):
        kit.answer_all(case, only_blocking=True)
        workflow.submit(case, actor="pim")
        with pytest.raises(Refused, match="belongs to reviewer alice"):
            workflow.decide(case, "approve", role="jurist", key_path=keys["alice"], actor="mallory")


# --- forged and copied signatures ----------------------------------------------------


class TestSignatures:
    def test_forged_signature(self, approved_case):
        path = checklist.ethics_dir(approved_case) / "review.yaml"

        def flip(data):
            sig = data["decisions"][0]["signature"]
            data["decisions"][0]["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]

        _edit_yaml(path, flip)
        assert "the signature is invalid" in _reasons(approved_case)

    def test_payload_edited_to_another_role(self, approved_case):
        path = checklist.ethics_dir(approved_case) / "review.yaml"
        _edit_yaml(path, lambda d: d["decisions"][0]["payload"].update(role="ethicus"))
        reasons = _reasons(approved_case)
        assert "signature is invalid" in reasons and "role Jurist has not signed" in reasons

    def test_display_copy_is_never_trusted(self, approved_case):
        path = checklist.ethics_dir(approved_case) / "review.yaml"
        _edit_yaml(path, lambda d: d["decisions"][0].update(role="ethicus", reviewer="dave"))
        assert state.evaluate(approved_case).status == "approved"  # only the signed payload counts

    def test_stray_forged_decision_is_reported_as_warning(self, approved_case, tmp_path):
        stranger = reviewers.keygen(tmp_path / "stranger.pem")
        _forge(approved_case, reviewers.load_key(stranger.path), reviewer="eve", role="jurist", decision="revoke")
        decision = gate.check(approved_case, ["inspecties"])
        assert decision.allowed  # a forged revocation cannot stop a run either
        assert any("not in the reviewer registry" in w for w in decision.warnings)

    def test_signature_copied_from_another_case(self, approved_case, keys, make_case, tmp_path):
        other_root = tmp_path / "other"
        import shutil

        shutil.copytree(approved_case.root, other_root)
        _edit_yaml(other_root / "case.yaml", lambda d: d.update(id="ander-zaak"))
        other = Case.open(other_root)
        # Same folder content, other case id: the definition's case_id no longer matches.
        _edit_yaml(checklist.ethics_dir(other) / "checklist.yaml", lambda d: d.update(case_id="ander-zaak", id="ander-zaak-ethics"))
        reasons = _reasons(other)
        assert "signed for case ce-risico" in reasons and "copied from elsewhere" in reasons

    def test_unknown_key(self, case, keys, tmp_path, kit):
        kit.answer_all(case, only_blocking=True)
        workflow.submit(case, actor="pim")
        stranger = reviewers.keygen(tmp_path / "stranger.pem")
        with pytest.raises(Refused, match="not in the reviewer registry"):
            workflow.decide(case, "approve", role="jurist", key_path=stranger.path, actor="eve")
        _forge(case, reviewers.load_key(stranger.path), reviewer="alice", role="jurist")
        assert any("not in the reviewer registry" in r for r in state.evaluate(case).reasons)

    def test_registry_edited_by_hand_is_not_trusted(self, approved_case, idsp_home):
        path = reviewers.registry_path()
        _edit_yaml(path, lambda d: d["reviewers"][0].update(roles=["jurist", "privacy-officer"]))  # alice
        reasons = _reasons(approved_case)
        assert "registry entry of alice was changed outside `idsp ethics reviewer add`" in reasons

    def test_key_swapped_in_registry_is_not_trusted(self, approved_case, tmp_path):
        mallory = reviewers.keygen(tmp_path / "mallory.pem")
        path = reviewers.registry_path()
        _edit_yaml(path, lambda d: d["reviewers"][0].update(public_key=mallory.public_key))
        reasons = _reasons(approved_case)
        assert "not in the reviewer registry" in reasons  # alice's real key is gone

    def test_writable_registry_is_refused(self, approved_case):
        path = reviewers.registry_path()
        os.chmod(path, 0o666)
        with pytest.raises(RegistryError, match="writable by group or others"):
            gate.check(approved_case, ["inspecties"])

    def test_registry_inside_the_case_is_refused(self, approved_case, monkeypatch):
        from idsp.errors import ConfigError

        monkeypatch.setenv("IDSP_PATHS__REVIEWERS", str(approved_case.root / "reviewers.yaml"))
        with pytest.raises(ConfigError, match="inside the case folder"):
            gate.check(approved_case, ["inspecties"])

    def test_key_file_readable_by_others_is_refused(self, keys):
        os.chmod(keys["alice"], 0o644)
        with pytest.raises(UserError, match="chmod 600"):
            reviewers.load_key(keys["alice"])


# --- content, evidence, data and code changed after approval -------------------------


class TestTamperedChecklist:
    def test_answer_edited_after_approval(self, approved_case):
        path = checklist.ethics_dir(approved_case) / "answers.yaml"
        _edit_yaml(path, lambda d: d["answers"]["ak.grw-02"].update(value="deels"))
        reasons = _reasons(approved_case)
        assert state.evaluate(approved_case).status == "draft"
        assert "ak.grw-02 changed after approval" in reasons and "by alice (Jurist)" in reasons

    def test_answer_changed_through_the_workflow_needs_new_approval(self, approved_case):
        workflow.answer(approved_case, "ak.grw-02", "deels", rationale="nog niet af", actor="pim")
        assert "ak.grw-02 changed after approval" in _reasons(approved_case)

    def test_definition_edited_after_approval(self, approved_case):
        path = checklist.checklist_path(approved_case)

        def unblock(data):
            for item in data["items"]:
                if item["key"] == "ak.grw-02":
                    item["blocking"] = False

        _edit_yaml(path, unblock)
        assert "ak.grw-02 changed after approval" in _reasons(approved_case)

    def test_evidence_file_edited_after_approval(self, approved_case):
        (approved_case.root / "docs" / "rechtvaardiging.md").write_text("# Andere tekst\n", encoding="utf-8")
        reasons = _reasons(approved_case)
        assert "evidence file docs/rechtvaardiging.md of answer profiling.justification changed" in reasons

    def test_data_changed(self, approved_case):
        dvc = approved_case.root / "data" / "inspecties.csv.dvc"
        old = yaml.safe_load(dvc.read_text())["outs"][0]["md5"]
        new = hashlib.md5(b"other data").hexdigest()
        dvc.write_text(dvc.read_text().replace(old, new))
        reasons = _reasons(approved_case)
        assert "dataset inspecties changed since approval" in reasons
        assert f"{old[:12]}… -> {new[:12]}…" in reasons

    def test_data_file_edited_without_dvc_add(self, approved_case):
        (approved_case.root / "data" / "inspecties.csv").write_text("kvk_pseudo,product,uitkomst\nP9,x,1\n")
        assert "the file differs from its DVC record" in _reasons(approved_case)

    def test_code_changed(self, approved_case):
        (approved_case.root / "src" / "train.py").write_text("print('other model')\n")
        assert "the code (the committed git tree; outside git every file of the case) changed since approval" in _reasons(approved_case)

    def test_params_changed(self, approved_case):
        (approved_case.root / "params.yaml").write_text("seed: 7\n")
        assert "params.yaml changed since approval" in _reasons(approved_case)

    def test_policy_without_code_binding_ignores_code(self, make_case, keys, kit):
        from legal_ethics import init_checklist

        c = make_case(policy={"approval_binds": ["checklist", "data"]})
        init_checklist(c, actor="pim")
        kit.answer_all(c, only_blocking=True)
        workflow.submit(c, actor="pim")
        kit.approve_all(c, keys)
        (c.root / "src" / "train.py").write_text("print('other model')\n")
        assert gate.check(c, ["inspecties"]).allowed

    def test_dataset_without_dvc_record(self, approved_case):
        (approved_case.root / "data" / "inspecties.csv.dvc").unlink()
        assert "dataset inspecties has no DVC record" in _reasons(approved_case)


# --- expiry, rejection, revocation ---------------------------------------------------


class ExpiredApproval:
    """The clock four years on: every approval is past its validity."""

    now = datetime.now(UTC) + timedelta(days=4 * 365)


def test_expired_approval(approved_case):
    st = state.evaluate(approved_case, now=ExpiredApproval.now)
    assert st.status == "expired"
    reasons = _reasons(approved_case, now=ExpiredApproval.now)
    assert "expired on" in reasons and "approved again" in reasons


def _valid_days(case) -> int:
    payload = state.evaluate(case).approvals[0].payload
    return (datetime.fromisoformat(payload["expires_at"]) - datetime.fromisoformat(payload["at"])).days


def test_approvals_are_valid_1095_days_by_default(approved_case):
    assert _valid_days(approved_case) == 1095
    at = datetime.fromisoformat(state.evaluate(approved_case).approvals[0].payload["at"])
    assert state.evaluate(approved_case, now=at + timedelta(days=1094)).status == "approved"
    assert state.evaluate(approved_case, now=at + timedelta(days=1095)).status == "expired"


def test_case_policy_or_platform_config_shortens_validity(make_case, keys, kit, monkeypatch):
    from legal_ethics import init_checklist

    c = make_case(policy={"approval_valid_days": 200})
    init_checklist(c, actor="pim")
    kit.answer_all(c, only_blocking=True)
    workflow.submit(c, actor="pim")
    kit.approve_all(c, keys, people=("alice",))
    monkeypatch.setenv("IDSP_ETHICS__APPROVAL_VALID_DAYS", "90")
    kit.approve_all(c, keys, people=("bob",))
    days = sorted(
        (datetime.fromisoformat(d.payload["expires_at"]) - datetime.fromisoformat(d.payload["at"])).days
        for d in checklist.load_review(c).decisions
    )
    assert days == [90, 200]


def test_approval_for_a_role_the_checklist_does_not_need_is_refused(case, keys, kit):
    kit.answer_all(case, only_blocking=True)
    workflow.submit(case, actor="pim")
    with pytest.raises(Refused, match="Ethicus is not a sign-off role"):
        workflow.decide(case, "approve", role="ethicus", key_path=keys["dave"], actor="dave")


def test_rejection(case, keys, kit):
    kit.answer_all(case, only_blocking=True)
    workflow.submit(case, actor="pim")
    workflow.decide(case, "reject", role="jurist", key_path=keys["alice"], comment="grondslag ontbreekt", actor="alice")
    assert state.evaluate(case).status == "rejected"
    assert "rejected by alice (Jurist)" in _reasons(case) and "grondslag ontbreekt" in _reasons(case)
    with pytest.raises(UserError, match="needs a reason"):
        workflow.decide(case, "reject", role="jurist", key_path=keys["alice"], actor="alice")


def test_revocation_closes_the_gate_until_resubmitted(approved_case, keys):
    workflow.decide(approved_case, "revoke", role="jurist", key_path=keys["alice"], comment="incident 42", actor="alice")
    assert state.evaluate(approved_case).status == "revoked"
    assert "revoked by alice" in _reasons(approved_case)


def test_revocation_deleted_from_review_yaml_still_applies(approved_case, keys):
    workflow.decide(approved_case, "revoke", role="jurist", key_path=keys["alice"], comment="incident 42", actor="alice")
    _edit_yaml(checklist.ethics_dir(approved_case) / "review.yaml",
               lambda d: d.update(decisions=[x for x in d["decisions"] if x["decision"] != "revoke"]))
    assert state.evaluate(approved_case).status == "revoked"
    assert "was removed from review.yaml; it still applies" in _reasons(approved_case)


def test_review_record_rolled_back_to_an_older_submission(approved_case, keys, kit):
    folder = checklist.ethics_dir(approved_case)
    snapshot = {name: (folder / name).read_text() for name in ("answers.yaml", "review.yaml")}
    workflow.answer(approved_case, "ak.grw-02", "deels", rationale="nieuwe bevinding", actor="pim")
    workflow.submit(approved_case, actor="pim")
    workflow.decide(approved_case, "reject", role="jurist", key_path=keys["alice"], comment="zie bevinding", actor="alice")
    for name, text in snapshot.items():  # roll both files back to the approved state
        (folder / name).write_text(text)
    st = state.evaluate(approved_case)
    assert st.status == "draft"
    assert "is missing from review.yaml" in _reasons(approved_case)


def test_resubmission_after_revocation_needs_new_signatures(approved_case, keys, kit):
    workflow.decide(approved_case, "revoke", role="jurist", key_path=keys["alice"], comment="incident 42", actor="alice")
    workflow.answer(approved_case, "ak.grw-02", "voldaan", rationale="opnieuw getoetst na incident", actor="pim")
    workflow.submit(approved_case, actor="pim")
    assert state.evaluate(approved_case).status == "in_review"
    kit.approve_all(approved_case, keys)
    assert gate.check(approved_case, ["inspecties"]).allowed


def test_blocking_answer_that_fails_keeps_the_gate_closed(case, keys, kit):
    kit.answer_all(case, only_blocking=True)
    workflow.answer(case, "ak.grw-02", "niet_voldaan", actor="pim")
    workflow.submit(case, actor="pim")
    kit.approve_all(case, keys)
    reasons = _reasons(case)
    assert "blocking item ak.grw-02 (Geen discriminatie) is answered 'niet_voldaan'" in reasons


def test_prohibited_ai_never_runs(make_case, keys, kit):
    from legal_ethics import init_checklist

    c = make_case({"personal_data": True, "risk_profiling": "none", "ai_act_risk": "prohibited"})
    init_checklist(c, actor="pim")
    kit.answer_all(c, only_blocking=True)
    workflow.submit(c, actor="pim")
    kit.approve_all(c, keys)
    assert state.evaluate(c).status == "approved"
    assert "prohibited AI practice (AI Act art. 5)" in _reasons(c)


def test_unanswered_blocking_items_cannot_be_submitted(case):
    with pytest.raises(Refused, match="blocking items are not answered"):
        workflow.submit(case, actor="pim")


# --- malformed files and concurrency -------------------------------------------------


def test_malformed_yaml_names_file_and_line(approved_case):
    path = checklist.ethics_dir(approved_case) / "answers.yaml"
    text = path.read_text().splitlines()
    text.insert(4, "  broken: [unclosed")
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(UserError) as err:
        gate.check(approved_case, ["inspecties"])
    assert "answers.yaml, line" in err.value.message and "not valid YAML" in err.value.message


def test_invalid_field_names_file_and_field(approved_case):
    path = checklist.checklist_path(approved_case)
    _edit_yaml(path, lambda d: d.update(signoff_roles=["koning"]))
    with pytest.raises(UserError) as err:
        state.evaluate(approved_case)
    assert "checklist.yaml" in err.value.message and "signoff_roles" in err.value.message and "koning" in err.value.message


def test_two_reviewers_approving_at_once_lose_nothing(case, keys, kit):
    kit.answer_all(case, only_blocking=True)
    workflow.submit(case, actor="pim")
    roles = {"alice": "jurist", "bob": "privacy-officer", "carol": "gemandateerd-verantwoordelijke"}
    barrier = threading.Barrier(3)
    errors = []

    def sign(user):
        try:
            barrier.wait()
            workflow.decide(case, "approve", role=roles[user], key_path=keys[user], actor=user)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(u,)) for u in roles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(checklist.load_review(case).decisions) == 3
    assert state.evaluate(case).status == "approved"
