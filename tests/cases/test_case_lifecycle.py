"""A case's life: made with git, DVC and hooks; its own tests and pipeline run; a newer
template arrives by three-way merge without losing the project lead's edits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from casekit import ZAAK, add_v2, git, new_args, tool_env

pytestmark = pytest.mark.slow


def _run(cmd, cwd, **env):
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env=tool_env(**env), timeout=600
    )


def test_new_case_is_a_ready_repository_whose_tests_and_pipeline_run(cli, tmp_path, idsp_home):
    dest = tmp_path / "cases"
    code, out, err = cli(
        *new_args("bridge-check", dest, "--data", "data_sources=inspecties", "--json")
    )
    assert code == 0, err
    made = json.loads(out)
    case = dest / "bridge-check"
    assert made["path"] == str(case) and made["template_version"] == "1.0.0"

    # git: one commit, nothing left over
    assert len(git(case, "log", "--oneline").splitlines()) == 1
    assert git(case, "status", "--porcelain") == ""
    tracked = git(case, "ls-files").splitlines()
    assert {"case.yaml", ".copier-answers.yml", ".dvc/config", "dvc.yaml"} <= set(tracked)
    # DVC: the case's own folder below the platform's default remote, which now exists
    remote = idsp_home / "dvc-remote" / "bridge-check"
    dvc_config = (case / ".dvc" / "config").read_text()
    assert "remote = shared" in dvc_config and f"url = {remote}\n" in dvc_config
    assert remote.is_dir()
    # hooks installed; the case in the platform's index
    assert (case / ".git" / "hooks" / "pre-commit").is_file()
    index = yaml.safe_load((idsp_home / "cases" / "index.yaml").read_text())["cases"]
    assert [(c["id"], c["path"], c["template_version"]) for c in index] == [
        ("bridge-check", str(case), "1.0.0")
    ]
    answers = yaml.safe_load((case / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v1.0.0" and answers["_src_path"] == "idsp-templates/case"
    # the checklist from legal_ethics, committed with the rest
    from idsp.case import Case

    import legal_ethics

    assert made["checklist"] == "ethics/checklist.yaml"
    assert "ethics/checklist.yaml" in tracked
    code, out, _ = cli("case", "status", "--json", "--no-runs")
    expected = legal_ethics.status(Case.open(case))
    assert json.loads(out)["cases"][0]["checklist"] == expected != "none"

    # the generated project's own tests pass
    proc = _run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider"], case
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout

    # and its pipeline runs
    proc = _run([sys.executable, "-m", "dvc", "repro"], case)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((case / "reports" / "metrics.json").read_text())
    assert metrics["inspections"] == 19 and metrics["suppressed_groups"] == 2
    assert (case / "dvc.lock").is_file()
    assert "data/processed" not in git(case, "status", "--porcelain")  # outputs ignored
    # raw data stays out of git, the .dvc pointer files that DVC writes do not
    ignored = _run(
        ["git", "check-ignore", "data/raw/inspecties.csv", "data/raw/inspecties.csv.dvc"], case
    )
    assert ignored.stdout.split() == ["data/raw/inspecties.csv"]


def _edit_and_commit(case):
    spec = (case / "case.yaml").read_text()
    (case / "case.yaml").write_text(
        spec.replace('purpose: ""', 'purpose: "Toezicht op de staat van bruggen"')
    )
    pipeline = case / "src" / "bridge_check" / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + "\n# local helper kept across template updates\n")
    (case / "data" / "synthetic" / "extra_sample.csv").write_text("inspectie_id;sector\n1;bouw\n")
    git(case, "add", "-A")
    # The idsp PII hook needs `idsp data scan`; hooks have their own test.
    git(case, "commit", "-q", "--no-verify", "-m", "local edits")


def test_update_keeps_local_edits_applies_the_template_and_runs_the_migration(
    cli, tmp_path, template_copy, monkeypatch
):
    monkeypatch.setenv("IDSP_CASE_TEMPLATE", str(template_copy))
    dest = tmp_path / "cases"
    assert cli(*new_args("bridge-check", dest))[0] == 0
    case = dest / "bridge-check"
    _edit_and_commit(case)

    code, out, _ = cli("case", "update", str(case))
    assert code == 0 and "nothing to do" in out

    add_v2(template_copy)  # a newer idsp ships template 2.0.0
    code, out, _ = cli("case", "status", str(dest), "--json", "--no-runs")
    assert json.loads(out)["cases"][0]["behind"] is True

    code, out, err = cli("case", "update", str(case), "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert (result["from_version"], result["to_version"]) == ("1.0.0", "2.0.0")
    assert result["conflicts"] == []
    assert result["migrations"] and result["migrations"][0].startswith("2.0.0:")

    spec = (case / "case.yaml").read_text()
    assert 'purpose: "Toezicht op de staat van bruggen"' in spec  # local edit kept
    assert 'template_version: "2.0.0"' in spec  # template change applied
    assert "# local helper kept" in (case / "src/bridge_check/pipeline.py").read_text()
    assert "## Reporting" in (case / "README.md").read_text()
    assert "title: Bevindingen" in (case / "params.yaml").read_text()
    # the template moved its example data and the paths that name it; the migration
    # moved the case's own file along
    assert (case / "data/examples/example.csv").is_file()
    assert (case / "data/examples/extra_sample.csv").is_file()
    assert not (case / "data/synthetic").exists()
    assert "path: data/examples/example.csv" in spec
    assert "data/examples/example.csv" in (case / "dvc.yaml").read_text()
    assert yaml.safe_load((case / ".copier-answers.yml").read_text())["_commit"] == "v2.0.0"
    assert {"README.md", "case.yaml", "params.yaml"} <= set(result["changed"])

    code, out, _ = cli("case", "status", str(dest), "--json", "--no-runs")
    assert json.loads(out)["cases"][0]["behind"] is False

    # the updated case still passes its own tests, and its pipeline runs on the moved data
    proc = _run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider"], case
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _run([sys.executable, "-m", "dvc", "repro"], case)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((case / "reports" / "metrics.json").read_text())["inspections"] == 19


def test_update_marks_conflicts_and_refuses_a_dirty_case(cli, tmp_path, template_copy, monkeypatch):
    monkeypatch.setenv("IDSP_CASE_TEMPLATE", str(template_copy))
    dest = tmp_path / "cases"
    assert cli(*new_args("bridge-check", dest))[0] == 0
    case = dest / "bridge-check"
    readme = case / "README.md"
    # the project lead rewrites the very lines where template 2.0.0 inserts a section
    readme.write_text(
        readme.read_text().replace(
            "No run on real or personal data starts before the checklist is approved.",
            "Geen run op echte data zonder goedgekeurde checklist.",
        )
    )
    add_v2(template_copy)

    code, _, err = cli("case", "update", str(case))
    assert code == 2 and "uncommitted changes" in err and "README.md" in err

    git(case, "commit", "-q", "--no-verify", "-am", "Dutch README")
    code, out, _ = cli("case", "update", str(case))
    assert code == 1, out
    assert "CONFLICT README.md" in out
    text = readme.read_text()
    assert "<<<<<<< before updating" in text and ">>>>>>> after updating" in text
    assert "Geen run op echte data" in text and "## Reporting" in text


def test_precommit_blocks_secrets_identifiers_and_strips_notebooks(cli, tmp_path):
    """The case's hooks run offline (repo: local, language: system)."""
    dest = tmp_path / "cases"
    assert cli(*new_args("hook-check", dest))[0] == 0
    case = dest / "hook-check"
    # a fresh case passes its own hooks: nothing to strip, no secrets, no identifiers
    proc = _run([sys.executable, "-m", "pre_commit", "run", "--all-files"], case)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(case, "status", "--porcelain") == ""

    (case / "src" / "hook_check" / "settings.py").write_text(
        'API_TOKEN = "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB"\n'
    )
    git(case, "add", "-A")
    proc = _run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "run",
            "detect-secrets",
            "--files",
            "src/hook_check/settings.py",
        ],
        case,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Potential secrets" in proc.stdout or "Secret" in proc.stdout

    nb = case / "notebooks" / "01_explore.ipynb"
    data = json.loads(nb.read_text())
    data["cells"][1]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": ["BSN 123456782\n"]}
    ]
    data["cells"][1]["execution_count"] = 3
    nb.write_text(json.dumps(data))
    proc = _run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "run",
            "nbstripout",
            "--files",
            "notebooks/01_explore.ipynb",
        ],
        case,
    )
    assert proc.returncode == 1  # files were modified by the hook
    stripped = json.loads(nb.read_text())
    assert stripped["cells"][1]["outputs"] == []

    # raw identifiers: the idsp hook refuses the file (needs `idsp data scan`)
    raw = case / "data" / "synthetic" / "contacts.csv"
    raw.write_text("naam;bsn;email\nA;111222333;a.jansen@example.nl\nB;123456782;b@example.org\n")
    clean = case / "data" / "synthetic" / "counts.csv"
    clean.write_text("sector;aantal\nbouw;3\ntransport;5\n")
    hook = [sys.executable, "-m", "pre_commit", "run", "idsp-no-raw-identifiers", "--files"]
    proc = _run([*hook, "data/synthetic/contacts.csv"], case)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "contacts.csv" in proc.stdout
    proc = _run([*hook, "data/synthetic/counts.csv"], case)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_failing_migration_is_reported_and_can_be_undone(
    cli, tmp_path, template_copy, monkeypatch
):
    monkeypatch.setenv("IDSP_CASE_TEMPLATE", str(template_copy))
    dest = tmp_path / "cases"
    assert cli(*new_args("bridge-check", dest))[0] == 0
    case = dest / "bridge-check"
    add_v2(template_copy)
    (template_copy / "versions/2.0.0/migrations/2.0.0.py").write_text("raise SystemExit(3)\n")

    code, out, err = cli("case", "update", str(case))
    assert code == 2, out + err
    assert "failed half-way" in err and "exited with 3" in err and "Traceback" not in err
    # the advice in the message gets the case back to where it was
    subprocess.run("git checkout -- . && git clean -fdq", shell=True, cwd=case, check=True)
    assert git(case, "status", "--porcelain") == ""
    assert yaml.safe_load((case / ".copier-answers.yml").read_text())["_commit"] == "v1.0.0"


def test_update_all_brings_the_fleet_along_and_reports_what_it_could_not(
    cli, tmp_path, template_copy, monkeypatch
):
    monkeypatch.setenv("IDSP_CASE_TEMPLATE", str(template_copy))
    for name in ("case-one", "case-two"):
        code, _, err = cli("case", "new", name, "--defaults", "--data", f"zaaknummer={ZAAK}")
        assert code == 0, err
    cases = {c["id"]: Path(c["path"]) for c in yaml.safe_load(
        (Path(os.environ["IDSP_HOME"]) / "cases" / "index.yaml").read_text()
    )["cases"]}  # fmt: skip
    (cases["case-two"] / "notes.md").write_text("work in progress\n")  # not committed
    add_v2(template_copy)

    code, out, err = cli("case", "update", "--all", "--json")
    assert code == 1, out + err
    items = {item["id"]: item for item in json.loads(out)}
    assert items["case-one"]["result"]["to_version"] == "2.0.0"
    assert items["case-one"]["result"]["conflicts"] == []
    assert "uncommitted changes" in items["case-two"]["refused"]
    assert "## Reporting" in (cases["case-one"] / "README.md").read_text()

    code, out, _ = cli("case", "update", "--all")  # case-one is done; case-two still waits
    assert code == 1 and "not updated case-two" in out and "case-one" not in out


def _kit_types() -> list[str]:
    from casekit import TEMPLATE
    from idsp.case_template import questions

    case_type = next(q for q in questions(TEMPLATE) if q.name == "case_type")
    return [t for t in case_type.choices if t != "generic"]  # generic: the test above


@pytest.mark.parametrize("case_type", _kit_types())
def test_every_case_kit_makes_a_case_whose_tests_and_hooks_pass(cli, tmp_path, case_type):
    dest = tmp_path / "cases"
    code, _, err = cli(*new_args("kit-case", dest, "--type", case_type))
    assert code == 0, err
    case = dest / "kit-case"
    assert git(case, "status", "--porcelain") == ""
    proc = _run(
        [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider"], case
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _run([sys.executable, "-m", "pre_commit", "run", "--all-files"], case)
    assert proc.returncode == 0, proc.stdout + proc.stderr
