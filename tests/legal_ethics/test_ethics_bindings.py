"""Bindings: what the gate and the run tags bind (checklist, code, data, params)."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
from idsp.errors import GateRefused

from legal_ethics import bindings, gate


def test_compute_follows_the_case_policy(make_case):
    c = make_case(policy={"approval_binds": ["data"]})
    # case.yaml is always bound: policy.approval_binds itself must not switch bindings off
    assert set(bindings.compute(c, ["inspecties"])) == {"case", "data"}


def test_data_md5_from_the_dvc_file_or_dvc_lock(make_case):
    c = make_case()
    dvc = c.root / "data" / "inspecties.csv.dvc"
    md5 = hashlib.md5((c.root / "data" / "inspecties.csv").read_bytes()).hexdigest()
    assert bindings.dvc_md5(c, "inspecties") == md5
    dvc.unlink()
    (c.root / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  prepare:\n    cmd: python src/prepare.py\n    outs:\n"
        f"    - path: data/inspecties.csv\n      md5: {md5}\n      size: 10\n"
    )
    assert bindings.dvc_md5(c, "inspecties") == md5
    assert bindings.dvc_md5(c, "synthetisch") is None


def test_code_hash_is_the_committed_tree_and_loose_code_is_named(make_case):
    c = make_case()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=c.root, check=True)
    subprocess.run([*git, "add", "src", "dvc.yaml", "params.yaml", "docs"], cwd=c.root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=c.root, check=True)
    before = bindings.code_hash(c.root, c)
    assert bindings.code_problems(c) == []
    (c.root / "src" / "scratch.py").write_text("print('untracked')\n")
    assert bindings.code_hash(c.root, c) == before  # the binding is what is committed ...
    assert "untracked or ignored code that Python could import instead of the committed code: src/scratch.py" \
        in bindings.code_problems(c)[0]  # ... and loose code is named
    (c.root / "src" / "scratch.py").unlink()
    (c.root / "src" / "train.py").write_text("print('edited, not committed')\n")
    assert bindings.code_hash(c.root, c) == before
    assert "uncommitted changes to src/train.py" in bindings.code_problems(c)[0]
    subprocess.run([*git, "commit", "-qam", "y"], cwd=c.root, check=True)
    assert bindings.code_hash(c.root, c) != before  # a new commit is other code
    # every tracked file counts, not a list of folders (docs/ too); the checklist is bound apart
    assert bindings.code_files(c.root, c) == [
        "docs/dpia.pdf", "docs/rechtvaardiging.md", "dvc.yaml", "params.yaml", "src/train.py"]


def test_require_raises_gate_refused_with_reasons(case):
    with pytest.raises(GateRefused) as err:
        gate.require(case, ["inspecties"])
    assert err.value.exit_code == 1 and err.value.reasons
    assert gate.require(case, ["synthetisch"]).allowed


def test_the_service_binds_a_members_repository_without_running_its_filters(make_case, tmp_path, monkeypatch):
    # A member writes the case's .git/config: a clean filter there would run as whoever calls
    # `git status`. The platform service (COMMITTED_ONLY_ENV) binds by reading objects only.
    c = make_case()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=c.root, check=True)
    subprocess.run([*git, "add", "src", "dvc.yaml", "params.yaml"], cwd=c.root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=c.root, check=True)
    ran = tmp_path / "filter-ran"
    subprocess.run(["git", "config", "filter.evil.clean", f"touch {ran}; cat"], cwd=c.root, check=True)
    (c.root / ".gitattributes").write_text("*.py filter=evil\n")
    train = c.root / "src" / "train.py"
    train.write_text("#" * len(train.read_text()))  # same size: git must read (and filter) it
    monkeypatch.setenv(bindings.COMMITTED_ONLY_ENV, "1")
    bound = bindings.code_hash(c.root, c)
    assert not any("uncommitted" in p for p in bindings.code_problems(c))
    assert not ran.exists()
    monkeypatch.delenv(bindings.COMMITTED_ONLY_ENV)
    assert bindings.code_hash(c.root, c) == bound  # the same committed tree either way
    # in the member's own process `git status` runs (and their own filter is their own affair)
    assert any("uncommitted changes to src/train.py" in p for p in bindings.code_problems(c))
    assert ran.exists()
