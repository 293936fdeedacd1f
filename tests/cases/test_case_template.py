"""The case template: its release layers, and every combination of options rendered."""

from __future__ import annotations

import itertools
import json
import subprocess

import pytest
import yaml
from casekit import REPO, TEMPLATE, ZAAK, add_v2
from idsp.case import parse_case_file
from idsp.case_template import (
    materialise,
    migrations_between,
    newest_version,
    questions,
    template_root,
    template_versions,
)


def test_checkout_finds_the_template_in_the_repository(monkeypatch):
    monkeypatch.delenv("IDSP_CASE_TEMPLATE", raising=False)
    assert template_root() == TEMPLATE


def test_every_layer_declares_its_own_version():
    for tv in template_versions(TEMPLATE):
        config = yaml.safe_load((tv.path / "copier.yml").read_text(encoding="utf-8"))
        assert config["template_version"]["default"] == tv.version, tv.path
        assert config["_subdirectory"] == "project"


def test_materialise_tags_every_version_in_order(template_copy, tmp_path):
    add_v2(template_copy)
    repo = tmp_path / "repo"
    versions = materialise(repo, template_copy)
    assert [v.version for v in versions] == ["1.0.0", "2.0.0"]
    tags = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True).stdout.split()
    assert tags == ["v1.0.0", "v2.0.0"]
    # The REMOVED list of 2.0.0 took the old folder away; 1.0.0 still has it.
    assert not (repo / "project/data/synthetic").exists()
    assert (repo / "project/data/examples/example.csv").is_file()
    old = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "v1.0.0"], cwd=repo, capture_output=True, text=True
    ).stdout
    assert "project/data/synthetic/example.csv" in old
    assert newest_version(template_copy) == "2.0.0"
    assert migrations_between("1.0.0", "2.0.0", template_copy) == [
        "2.0.0: python migrations/2.0.0.py"
    ]
    assert migrations_between("2.0.0", "2.0.0", template_copy) == []
    assert migrations_between("1.0.0", "1.0.0", template_copy) == []


def test_a_layer_that_is_not_a_version_is_refused(template_copy):
    from idsp.errors import UserError

    (template_copy / "versions" / "next").mkdir()
    with pytest.raises(UserError, match="not a version number"):
        template_versions(template_copy)


def test_questions_match_the_issue():
    names = [q.name for q in questions(TEMPLATE)]
    assert names == [
        "slug", "title", "zaaknummer", "inspectorates", "project_lead", "case_type",
        "personal_data", "risk_profiling", "data_sources", "created",
    ]  # fmt: skip
    by_name = {q.name: q for q in questions(TEMPLATE)}
    assert by_name["case_type"].choices == ("generic", "ce_markering")
    assert by_name["risk_profiling"].choices == ("none", "companies", "natural_persons")
    assert by_name["inspectorates"].multiselect


COMBINATIONS = list(
    itertools.product(
        ("generic", "ce_markering"),  # case_type
        (False, True),  # personal_data
        ("none", "companies", "natural_persons"),  # risk_profiling
        (["ILT"], ["NVWA", "NLA", "other"]),  # inspectorates
        ("", "inspecties, KvK register,bedrijven-lijst"),  # data_sources
    )
)


@pytest.mark.parametrize(
    "case_type,personal_data,risk_profiling,inspectorates,data_sources",
    COMBINATIONS,
    ids=[
        "-".join(str(p) if not isinstance(p, list) else "+".join(p) for p in c) or "x"
        for c in COMBINATIONS
    ],
)
def test_every_combination_renders_clean(
    snapshot, tmp_path, case_type, personal_data, risk_profiling, inspectorates, data_sources
):
    import copier

    answers = {
        "slug": "bridge-check",
        "title": "Bruggen & viaducten: 'onderhoud'",
        "zaaknummer": ZAAK,
        "inspectorates": inspectorates,
        "project_lead": "Anne-Marie d'Hondt",
        "case_type": case_type,
        "personal_data": personal_data,
        "risk_profiling": risk_profiling,
        "data_sources": data_sources,
        "created": "2026-11-28",
    }
    dst = tmp_path / "bridge-check"
    copier.run_copy(str(snapshot), dst, data=answers, defaults=True, quiet=True, unsafe=True)

    files = [p for p in dst.rglob("*") if p.is_file()]
    for path in files:
        rel = path.relative_to(dst).as_posix()
        assert "{{" not in rel and "{%" not in rel, rel
        text = path.read_text(encoding="utf-8")
        assert "{{" not in text and "{%" not in text and "{#" not in text, rel
    spec = parse_case_file(dst / "case.yaml")
    assert spec.id == "bridge-check" and spec.zaaknummer == ZAAK
    assert spec.title == answers["title"]
    assert spec.owners[0].name == answers["project_lead"]
    assert spec.owners[0].role == "project_lead"
    assert spec.inspectorates == tuple(inspectorates)
    assert spec.case_type == case_type
    assert spec.profile.personal_data is personal_data
    if case_type == "generic":  # a case kit may set its own profile (CE: companies)
        assert spec.profile.risk_profiling == risk_profiling
    assert spec.template_version == newest_version(TEMPLATE)
    names = [d.name for d in spec.datasets]
    sources = ["inspecties", "kvk_register", "bedrijven_lijst"] if data_sources else []
    assert names[0] == "example" and len(set(names)) == len(names)
    assert names[len(names) - len(sources) :] == sources  # the first data sources, last
    for ds in spec.datasets[len(names) - len(sources) :]:
        assert ds.dvc and not ds.synthetic and ds.personal_data is personal_data
        assert (ds.pseudonymisation_domain is not None) is personal_data
    if case_type == "generic":
        assert names == ["example", *sources]
    assert (dst / "ce_markering").is_dir() is (case_type == "ce_markering")
    assert ("ce_markering/" in (dst / "README.md").read_text()) is (case_type == "ce_markering")
    for required in (
        "README.md", "dvc.yaml", "params.yaml", "jupytext.toml", ".pre-commit-config.yaml",
        ".gitignore", ".dvcignore", "src/bridge_check/pipeline.py", "tests/test_pipeline.py",
        "notebooks/01_explore.py", "notebooks/01_explore.ipynb", "gx/example.json",
        "ethics/README.md", ".copier-answers.yml",
    ):  # fmt: skip
        assert (dst / required).is_file(), required
    stages = yaml.safe_load((dst / "dvc.yaml").read_text())["stages"]
    assert {"prepare", "summarise"} <= set(stages)  # a case kit may add its own stages
    assert all("bridge_check.pipeline" in stages[name]["cmd"] for name in ("prepare", "summarise"))
    if case_type == "generic":
        assert set(stages) == {"prepare", "summarise"}
    json.loads((dst / "notebooks/01_explore.ipynb").read_text())


def test_notebook_pair_is_in_step(snapshot, tmp_path):
    import copier
    import jupytext

    dst = tmp_path / "pair-check"
    copier.run_copy(
        str(snapshot),
        dst,
        data={
            "slug": "pair-check",
            "zaaknummer": ZAAK,
            "project_lead": "A",
            "created": "2026-11-28",
        },
        defaults=True,
        quiet=True,
    )
    script = jupytext.read(dst / "notebooks/01_explore.py")
    notebook = jupytext.read(dst / "notebooks/01_explore.ipynb")
    assert [c.source for c in script.cells] == [c.source for c in notebook.cells]
    assert notebook.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert 'formats = "ipynb,py:percent"' in (dst / "jupytext.toml").read_text()


def test_precommit_hooks_are_local_and_cover_the_three_checks(snapshot):
    config = yaml.safe_load((snapshot / "project/.pre-commit-config.yaml").read_text())
    assert [r["repo"] for r in config["repos"]] == ["local"]
    hooks = {h["id"]: h for h in config["repos"][0]["hooks"]}
    assert all(h["language"] == "system" for h in hooks.values())
    assert hooks["nbstripout"]["entry"] == "nbstripout"
    assert hooks["detect-secrets"]["entry"] == "detect-secrets-hook"
    assert hooks["idsp-no-raw-identifiers"]["entry"] == "idsp data scan --fail-on-pii"


def test_repository_template_matches_wheel_layout():
    """pyproject force-includes templates/ as idsp/_templates: the wheel path the code uses."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include["templates"] == "idsp/_templates"


def test_released_layers_are_unchanged_in_the_repository():
    from idsp.case_template import check_released, released_digests

    assert "1.0.0" in released_digests(TEMPLATE)
    assert [tv.version for tv in check_released(TEMPLATE)][0] == "1.0.0"  # raises if a released layer was edited


def test_an_edited_released_layer_is_refused_before_anything_is_built(template_copy, tmp_path):
    from idsp.errors import UserError

    readme = next((template_copy / "versions" / "1.0.0" / "project").glob("README*"))
    readme.write_text(readme.read_text(encoding="utf-8") + "\nquietly changed\n", encoding="utf-8")
    with pytest.raises(UserError, match="released template layer 1.0.0 was edited") as exc:
        materialise(tmp_path / "repo", template_copy)
    assert "new layer" in exc.value.fix
    assert not (tmp_path / "repo").exists()


def test_only_the_newest_layer_may_be_unreleased(template_copy, tmp_path):
    from idsp.case_template import check_released, release
    from idsp.errors import UserError

    add_v2(template_copy)
    assert [tv.version for tv in check_released(template_copy)] == ["1.0.0", "2.0.0"]  # 2.0.0 in the works
    third = template_copy / "versions" / "3.0.0"
    third.mkdir()
    (third / "copier.yml").write_bytes((template_copy / "versions" / "2.0.0" / "copier.yml").read_bytes())
    with pytest.raises(UserError, match="2.0.0 is not released, but a newer layer follows"):
        check_released(template_copy)
    digest = release("2.0.0", template_copy)
    assert yaml.safe_load((template_copy / "released.yaml").read_text())["2.0.0"] == digest
    assert [tv.version for tv in check_released(template_copy)] == ["1.0.0", "2.0.0", "3.0.0"]
    with pytest.raises(UserError, match="already released"):
        release("2.0.0", template_copy)
