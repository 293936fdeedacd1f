"""The attacks of issue 13 that need no tracking server: each shows the attack, then the
refusal and the words the user reads. Real git and real DVC where the attack is about them.

Classes (issue 13): 1 code binding, 2 case.yaml bound, 4 order from the log, 5 the checklist
cannot be weakened, 6 data read is data bound (folders), 7 bounded input. Classes 3 and 6
inside a run need MLflow: ``test_attacks_issue13_tracking.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from idsp.case import Case
from idsp.errors import CaseError, ConfigError, GateRefused, Refused, UserError

from legal_ethics import bindings, checklist, gate, init_checklist, state, workflow

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefghijklmno", "bcdefghijklmnop", strict=False)
)


def _reasons(case, datasets=("inspecties",)) -> str:
    decision = gate.check(case, list(datasets))
    assert not decision.allowed, "the gate should have refused"
    return "\n".join(decision.reasons)


def _edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _reopen(case) -> Case:
    return Case.open(case.root)


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run([*GIT, *args], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _dataset(case, name: str, **changes) -> Case:
    def change(d):
        for ds in d["datasets"]:
            if ds["name"] == name:
                ds.update(changes)
                for key in [k for k, v in changes.items() if v is None]:
                    ds.pop(key)

    _edit_yaml(case.root / "case.yaml", change)
    return _reopen(case)


# --- class 7: bounded input ---------------------------------------------------------------


class TestBoundedInput:
    def test_an_alias_bomb_in_checklist_yaml_is_refused_at_once_by_status(self, case, cli, monkeypatch):
        (checklist.checklist_path(case)).write_text(BOMB, encoding="utf-8")
        monkeypatch.chdir(case.root)
        started = time.monotonic()
        code, out, err = cli("ethics", "status")
        assert time.monotonic() - started < 10  # refused, not expanded
        assert code == 2 and "Traceback" not in err
        assert "checklist.yaml, line" in err and "alias bomb" in err

    def test_review_yaml_linked_to_dev_zero_is_named_not_a_memory_error(self, approved_case, cli, monkeypatch):
        review = checklist.ethics_dir(approved_case) / "review.yaml"
        review.unlink()
        review.symlink_to("/dev/zero")
        with pytest.raises(UserError) as err:
            gate.check(approved_case, ["inspecties"])
        assert "review.yaml: the review record is a device (a link to /dev/zero), not a regular file" in err.value.message
        monkeypatch.chdir(approved_case.root)
        code, _, text = cli("ethics", "verify", "--dataset", "inspecties")
        assert code == 2 and "a link to /dev/zero" in text and "MemoryError" not in text

    def test_answers_yaml_as_a_fifo_does_not_hang(self, approved_case):
        answers = checklist.ethics_dir(approved_case) / "answers.yaml"
        answers.unlink()
        os.mkfifo(answers)
        with pytest.raises(UserError, match="answers.yaml: the answers file is a FIFO, not a regular file"):
            state.evaluate(approved_case)

    def test_review_yaml_as_a_folder_is_named(self, approved_case):
        review = checklist.ethics_dir(approved_case) / "review.yaml"
        review.unlink()
        review.mkdir()
        with pytest.raises(UserError, match="review.yaml: the review record is a folder"):
            state.evaluate(approved_case)

    def test_an_oversized_case_yaml_is_refused_with_its_size(self, make_case):
        c = make_case()
        with open(c.root / "case.yaml", "a", encoding="utf-8") as fh:
            fh.write("# " + "x" * (2 * 1024 * 1024) + "\n")
        with pytest.raises(CaseError) as err:
            Case.open(c.root)
        assert "case.yaml: the case file is 2,097,766 bytes, more than the 1,048,576 this kind of file may have" \
            in err.value.message

    def test_deep_nesting_in_answers_yaml_is_refused(self, approved_case):
        (checklist.ethics_dir(approved_case) / "answers.yaml").write_text("x: " + "[" * 500 + "]" * 500 + "\n")
        with pytest.raises(UserError, match="answers.yaml, line 1, column .*nests deeper than 100 levels"):
            state.evaluate(approved_case)

    def test_an_alias_bomb_in_platform_yaml_is_a_config_error(self, tmp_path, monkeypatch, cli):
        from idsp.config import load_config

        path = tmp_path / "platform.yaml"
        path.write_text(BOMB, encoding="utf-8")
        monkeypatch.setenv("IDSP_CONFIG", str(path))
        with pytest.raises(ConfigError, match="platform.yaml, line .*alias bomb"):
            load_config()

    def test_evidence_leaving_the_case_is_refused(self, approved_case, tmp_path):
        outside = tmp_path / "outside.md"
        outside.write_text("# Rechtvaardigingstoets\n")  # the same bytes as the attached evidence
        answers = checklist.ethics_dir(approved_case) / "answers.yaml"
        _edit_yaml(answers, lambda d: d["answers"]["profiling.justification"]["evidence"][0].update(
            path="../outside.md"))
        assert "evidence file ../outside.md of answer profiling.justification lies outside the case folder" in \
            _reasons(approved_case)

    def test_evidence_replaced_by_a_link_leaving_the_case_is_refused(self, approved_case, tmp_path):
        evidence = approved_case.root / "docs" / "rechtvaardiging.md"
        outside = tmp_path / "elsewhere.md"
        shutil.copy(evidence, outside)
        evidence.unlink()
        evidence.symlink_to(outside)  # same content, but reviewers cannot see where it lives
        assert "evidence file docs/rechtvaardiging.md of answer profiling.justification lies outside the case folder" \
            in _reasons(approved_case)

    def test_a_quality_result_linked_to_dev_zero(self, make_case, cli, monkeypatch):
        """Beyond the issue: the gate reads stored quality results from the case folder too."""
        c = _dataset(make_case(), "inspecties", suite="inspecties")
        folder = c.root / "quality" / "inspecties"
        folder.mkdir(parents=True)
        (folder / "20260101T000000.json").symlink_to("/dev/zero")
        with pytest.raises(UserError, match=r"the quality result is a device \(a link to /dev/zero\)"):
            gate.check(c, ["inspecties"])
        (folder / "20260101T000000.json").unlink()
        (folder / "20260101T000000.json").write_text("{not json")
        monkeypatch.chdir(c.root)
        code, _, err = cli("ethics", "verify", "--dataset", "inspecties")
        assert code == 2 and "20260101T000000.json: the quality result is not valid JSON" in err

    def test_a_dvc_record_linked_to_dev_zero_is_no_record(self, approved_case):
        record = approved_case.root / "data" / "inspecties.csv.dvc"
        record.unlink()
        record.symlink_to("/dev/zero")
        assert "dataset inspecties has no DVC record" in _reasons(approved_case)


# --- class 2: case.yaml is bound ------------------------------------------------------------


class TestCaseYamlBound:
    AGAIN = "submit again (`idsp ethics submit`) and have every sign-off role"

    def test_approval_binds_cut_down_after_approval(self, approved_case):
        c = _reopen(approved_case)
        _edit_yaml(c.root / "case.yaml", lambda d: d.update(policy={"approval_binds": ["checklist"]}))
        c = _reopen(c)
        (c.root / "src" / "train.py").write_text("print('other model')\n")
        reasons = _reasons(c)
        assert "case.yaml changed since approval" in reasons
        assert "policy.approval_binds: ['checklist', 'code', 'data', 'params'] -> ['checklist']" in reasons
        assert self.AGAIN in reasons and "Jurist" in reasons

    def test_a_personal_dataset_redeclared_synthetic_stays_official(self, approved_case):
        c = _dataset(approved_case, "inspecties", personal_data=False, synthetic=True)
        reasons = _reasons(c)
        assert "dataset inspecties was declared real or personal data when approval dec-" in reasons
        assert "which would make a run on it exploratory" in reasons
        with pytest.raises(GateRefused):
            with c.run("train", datasets=["inspecties"]):
                pytest.fail("the body must not run")

    def test_redeclared_dataset_with_its_approvals_cut_from_review_yaml(self, approved_case):
        """Beyond the issue: the audit log remembers which datasets the approvals saw as official."""
        review = checklist.ethics_dir(approved_case) / "review.yaml"
        _edit_yaml(review, lambda d: d.update(decisions=[]))
        c = _dataset(approved_case, "inspecties", personal_data=False, synthetic=True)
        assert "dataset inspecties was declared real or personal data when approval dec-" in _reasons(c)

    def test_removing_the_suite_needs_a_new_approval(self, make_case, keys, kit):
        c = make_case()
        c = _dataset(c, "inspecties", suite="inspecties")
        init_checklist(c, actor="pim")
        kit.answer_all(c, only_blocking=True)
        workflow.submit(c, actor="pim")
        kit.approve_all(c, keys)
        c = _dataset(c, "inspecties", suite=None)
        reasons = _reasons(c)
        assert "case.yaml changed since approval" in reasons and "dataset inspecties: suite 'inspecties' -> None" in reasons

    def test_an_approval_that_does_not_bind_case_yaml_does_not_count(self, approved_case, keys):
        """Beyond the issue: approvals given before case.yaml was bound must be renewed."""
        payloads = [d.payload for d in checklist.load_review(approved_case).decisions]
        assert all("case" in p["bindings"] for p in payloads)
        reasons = gate._case_reason({}, bindings.case_binding(approved_case), "approval X by alice", ["Jurist"])
        assert reasons == ("approval X by alice does not bind case.yaml (it was given before IDSP bound it); "
                           "submit again (`idsp ethics submit`) and have every sign-off role (Jurist) approve again")


# --- class 5: the checklist itself cannot be weakened --------------------------------------


class TestChecklistNotWeakened:
    def _weaken(self, case, change) -> None:
        _edit_yaml(checklist.checklist_path(case), change)

    def test_an_item_removed_before_submission(self, case, kit):
        kit.answer_all(case, only_blocking=True)
        self._weaken(case, lambda d: d.update(items=[i for i in d["items"] if i["key"] != "ak.grw-02"]))
        with pytest.raises(Refused) as err:
            workflow.submit(case, actor="pim")
        assert "ethics/checklist.yaml lacks item(s) ak.grw-02 that the case profile requires" in err.value.message
        assert "`idsp ethics init --force`" in err.value.message

    def test_a_sign_off_role_removed_before_submission(self, case, kit, cli, monkeypatch):
        kit.answer_all(case, only_blocking=True)
        self._weaken(case, lambda d: d.update(signoff_roles=["jurist"]))
        monkeypatch.chdir(case.root)
        code, _, err = cli("ethics", "submit")
        assert code == 1
        assert "lacks sign-off role(s) privacy-officer, gemandateerd-verantwoordelijke" in " ".join(err.split())

    def test_a_role_removed_after_approval_closes_the_gate(self, approved_case):
        self._weaken(approved_case, lambda d: d.update(signoff_roles=["jurist"]))
        assert "lacks sign-off role(s) privacy-officer, gemandateerd-verantwoordelijke" in _reasons(approved_case)

    def test_a_profile_without_personal_data_beside_a_personal_dataset(self, make_case, kit, keys):
        c = make_case({"personal_data": False, "risk_profiling": "companies", "ai_act_risk": "minimal"})
        init_checklist(c, actor="pim")
        assert "privacy-officer" not in checklist.load_definition(c).signoff_roles  # silently dropped ...
        kit.answer_all(c, only_blocking=True)
        with pytest.raises(Refused) as err:
            workflow.submit(c, actor="pim")  # ... but not submitted
        assert ("case.yaml's profile says personal_data: false, but dataset(s) inspecties are declared personal"
                in err.value.message)

    def test_a_blocking_item_made_non_blocking_or_a_longer_validity(self, case, kit):
        """Beyond the issue: softer items and a longer validity are weakening too."""
        kit.answer_all(case, only_blocking=True)

        def soften(d):
            d["validity_days"] = 3650
            for item in d["items"]:
                if item["key"] == "ak.grw-02":
                    item["blocking"] = False

        self._weaken(case, soften)
        with pytest.raises(Refused) as err:
            workflow.submit(case, actor="pim")
        assert "makes blocking item(s) ak.grw-02 non-blocking" in err.value.message
        assert "lets an approval last 3650 days, more than the 1095" in err.value.message


# --- class 4: order from the log -----------------------------------------------------------


def test_a_rolled_back_answers_file_and_reordered_review_cannot_revive_an_approval(approved_case, keys):
    folder = checklist.ethics_dir(approved_case)
    answers_then = (folder / "answers.yaml").read_text()
    first = checklist.load_review(approved_case).submissions[-1].id
    workflow.answer(approved_case, "ak.grw-02", "deels", rationale="nieuwe bevinding", actor="pim")
    workflow.submit(approved_case, actor="pim")
    workflow.decide(approved_case, "reject", role="jurist", key_path=keys["alice"], comment="zie bevinding", actor="alice")
    # the attack: answers back as approved, and the old submission moved to the end of review.yaml
    (folder / "answers.yaml").write_text(answers_then)
    _edit_yaml(folder / "review.yaml", lambda d: d.update(
        submissions=sorted(d["submissions"], key=lambda s: s["id"] == first)))
    assert checklist.load_review(approved_case).submissions[-1].id == first
    st = state.evaluate(approved_case)
    assert st.status != "approved" and st.submission.id != first  # the log says which one is current
    second = st.submission.id
    assert (f"the checklist changed after submission {second} by pim (the latest submission in the audit log)"
            in _reasons(approved_case))


def test_the_state_takes_its_order_from_the_events_it_is_given(approved_case, keys):
    """The seam for the platform service: events passed in decide the order, not review.yaml."""
    events = state.log_events()
    assert state.evaluate(approved_case, events=events).status == "approved"
    workflow.answer(approved_case, "ak.grw-02", "deels", rationale="nieuwe bevinding", actor="pim")
    workflow.submit(approved_case, actor="pim")
    later = state.log_events()
    assert state.evaluate(approved_case, events=later).status == "in_review"


# --- class 1: the code binding is the committed git tree ----------------------------------


@pytest.fixture
def git_case(make_case, keys, kit) -> Case:
    """An approved case in a git repository with everything committed (data by DVC)."""
    c = make_case()
    (c.root / ".gitignore").write_text("/data/inspecties.csv\n/data/synthetisch.csv\n")
    _git(c.root, "init", "-q")
    _git(c.root, "add", ".")
    _git(c.root, "commit", "-qm", "case")
    init_checklist(c, actor="pim")
    kit.answer_all(c, only_blocking=True)
    workflow.submit(c, actor="pim")
    kit.approve_all(c, keys)
    _git(c.root, "add", "ethics")
    _git(c.root, "commit", "-qm", "approved checklist")  # committing the review does not void it
    assert gate.check(c, ["inspecties"]).allowed, gate.check(c, ["inspecties"]).reasons
    return c


class TestCodeIsTheCommittedTree:
    def test_an_untracked_package_shadowing_the_code(self, git_case):
        pkg = git_case.root / "src" / "features"
        pkg.mkdir()
        (pkg / "__init__.py").write_text("LEAK = True\n")
        reasons = _reasons(git_case)
        assert ("untracked or ignored code that Python could import instead of the committed code: "
                "src/features/__init__.py; commit it or remove it") in reasons
        assert gate.check(git_case, ["synthetisch"]).allowed  # exploratory runs keep working

    def test_an_uncommitted_edit(self, git_case):
        (git_case.root / "src" / "train.py").write_text("print('other model')\n")
        assert "uncommitted changes to src/train.py: an official run runs the committed code" in _reasons(git_case)

    def test_a_committed_helper_outside_src(self, git_case):
        (git_case.root / "helpers.py").write_text("def features(): return 1\n")
        _git(git_case.root, "add", "helpers.py")
        _git(git_case.root, "commit", "-qm", "helper")
        assert "the code (the committed git tree; outside git every file of the case) changed since approval" \
            in _reasons(git_case)

    def test_code_hidden_by_a_private_ignore_rule(self, git_case):
        """Beyond the issue: .git/info/exclude hides a file from `git status` but not from Python."""
        with open(git_case.root / ".git" / "info" / "exclude", "a") as fh:
            fh.write("src/sneaky.py\n")
        (git_case.root / "src" / "sneaky.py").write_text("import os\n")
        assert "src/sneaky.py" in _reasons(git_case)

    def test_a_tracked_link_leaving_the_case(self, make_case, tmp_path):
        """Beyond the issue: a committed link would bind the link, not what it points to."""
        c = make_case()
        outside = tmp_path / "outside.py"
        outside.write_text("print('not in git')\n")
        (c.root / "src" / "model.py").symlink_to(outside)
        _git(c.root, "init", "-q")
        _git(c.root, "add", ".")
        _git(c.root, "commit", "-qm", "case")
        problems = bindings.code_problems(c)
        assert any(p.startswith("the tracked link src/model.py points outside the case folder") for p in problems)

    def test_a_pythonpath_outside_the_case(self, git_case, tmp_path, monkeypatch):
        """Beyond the issue: plain modules on PYTHONPATH shadow without any package metadata."""
        (tmp_path / "libs").mkdir()
        (tmp_path / "libs" / "sklearn.py").write_text("LEAK = True\n")
        monkeypatch.setenv("PYTHONPATH", str(tmp_path / "libs"))
        assert (f"PYTHONPATH names folders outside the case: {tmp_path / 'libs'}; an official run imports only the "
                "committed code and the platform's environment: unset it") in _reasons(git_case)
        monkeypatch.setenv("PYTHONPATH", str(git_case.root / "src"))  # the committed code itself is fine
        assert gate.check(git_case, ["inspecties"]).allowed

    def test_a_package_added_to_the_environment(self, git_case, tmp_path, monkeypatch):
        site = tmp_path / "site"
        info = site / "shadow_pkg-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shadow-pkg\nVersion: 1.0\n")
        monkeypatch.syspath_prepend(str(site))
        bindings.environment_hash.cache_clear()
        try:
            assert (f"packages from outside the platform's environment could be imported: shadow-pkg 1.0 ({site}); "
                    "take their folders off PYTHONPATH / sys.path for an official run") in _reasons(git_case)
        finally:
            bindings.environment_hash.cache_clear()


# --- class 6: folder datasets against their .dir record (real DVC) ------------------------


def test_a_folder_dataset_is_compared_with_its_dir_record(make_case, keys, kit):
    c = make_case()
    parts = c.root / "data" / "delen"
    parts.mkdir()
    (parts / "a.csv").write_text("kvk_pseudo,uitkomst\nP1,1\n")
    (parts / "b.csv").write_text("kvk_pseudo,uitkomst\nP2,0\n")
    _edit_yaml(c.root / "case.yaml", lambda d: d["datasets"].append(
        {"name": "delen", "path": "data/delen", "personal_data": True, "synthetic": False}))
    dvc = Path(sys.executable).parent / "dvc"
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=c.root, check=True, capture_output=True)
    subprocess.run([str(dvc), "add", "-q", "data/delen"], cwd=c.root, check=True, capture_output=True)
    c = _reopen(c)
    recorded = bindings.dvc_md5(c, "delen")
    from legal_ethics import data_read

    assert recorded.endswith(".dir") and data_read.dir_md5(parts) == recorded  # computed as DVC does
    init_checklist(c, actor="pim")
    kit.answer_all(c, only_blocking=True)
    workflow.submit(c, actor="pim")
    kit.approve_all(c, keys)
    assert gate.check(c, ["delen"]).allowed
    assert c.load("delen", file="a.csv").shape == (1, 2)
    (parts / "b.csv").write_text("kvk_pseudo,uitkomst\nP2,1\n")  # swapped without `dvc add`
    assert "dataset delen: the file differs from its DVC record" in _reasons(c, ["delen"])
    with pytest.raises(Refused) as err:
        c.load("delen", file="a.csv")
    assert "dataset delen changed: data/delen has md5" in err.value.message
    assert f"{recorded[:12]}… is recorded in its DVC record" in err.value.message
