"""Helpers for the case-project tests: paths, the tool environment, a newer template."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from testkit.tools import REPO, VENV_BIN, tool_env  # noqa: F401  (re-exported to the tests)

TEMPLATE = REPO / "templates" / "case"
ZAAK = "ILT-2026-004512"


V2_MIGRATION = '''\
"""Template 2.0.0 moved data/synthetic/ to data/examples/: move the case's own files too."""
import pathlib
import shutil

old, new = pathlib.Path("data/synthetic"), pathlib.Path("data/examples")
if old.is_dir():
    new.mkdir(parents=True, exist_ok=True)
    for item in sorted(old.iterdir()):
        if not (new / item.name).exists():
            shutil.move(str(item), str(new / item.name))
            print(f"moved {item} -> {new / item.name}")
    if not any(old.iterdir()):
        old.rmdir()
'''


def add_v2(template: Path) -> Path:
    """Add a release layer 2.0.0 to a copy of the case template.

    2.0.0 rewords a README line and adds a README section and a parameter, and moves
    data/synthetic/ to data/examples/: the files that name the folder change, a REMOVED
    entry drops the old folder, and a migration moves the case's own files along.
    """
    v1 = template / "versions" / "1.0.0"
    v2 = template / "versions" / "2.0.0"
    (v2 / "migrations").mkdir(parents=True)
    copier_yml = (v1 / "copier.yml").read_text(encoding="utf-8")
    copier_yml = copier_yml.replace('default: "1.0.0"', 'default: "2.0.0"').replace(
        "_migrations: []",
        textwrap.dedent(
            """\
            _migrations:
              - version: "2.0.0"
                command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/migrations/2.0.0.py"]
                when: "{{ _stage == 'after' }}"
            """
        ).rstrip(),
    )
    (v2 / "copier.yml").write_text(copier_yml, encoding="utf-8")
    (v2 / "migrations" / "2.0.0.py").write_text(V2_MIGRATION, encoding="utf-8")
    for name in ("README.md", "case.yaml", "dvc.yaml", "tests/test_pipeline.py", "params.yaml"):
        source = _layer_file(v1 / "project", name)
        text = source.read_text(encoding="utf-8").replace("data/synthetic", "data/examples")
        if name == "README.md":
            text = text.replace(
                "before the checklist is approved.",
                "before the checklist is approved and still valid.",
            ).replace(
                "## What is where",
                "## Reporting\n\nPut model cards and fairness reports in `reports/`.\n\n## What is where",
            )
        if name == "params.yaml":
            text += "report:\n  title: Bevindingen\n"
        target = v2 / source.relative_to(v1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (v2 / "project" / "data" / "examples").mkdir(parents=True)
    shutil.copy2(
        v1 / "project" / "data" / "synthetic" / "example.csv",
        v2 / "project" / "data" / "examples" / "example.csv",
    )
    (v2 / "REMOVED").write_text(
        "# moved to data/examples/\nproject/data/synthetic\n", encoding="utf-8"
    )
    return template


def _layer_file(project: Path, name: str) -> Path:
    """A template file, rendered (``.jinja``) or copied as it is."""
    for candidate in (project / f"{name}.jinja", project / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(project / name)


def git(repo: Path, *args: str) -> str:
    import subprocess

    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=tool_env())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def new_args(name: str, dest: Path, *extra: str) -> list[str]:
    return [
        "case",
        "new",
        name,
        "--defaults",
        "--data",
        f"zaaknummer={ZAAK}",
        "--dest",
        str(dest),
        *extra,
    ]


def build_case_folder(root: Path, *, version: str, zaaknummer: str = ZAAK) -> Path:
    """A minimal case folder as the template would leave it (no git), for status tests."""
    root.mkdir(parents=True)
    (root / "case.yaml").write_text(
        f"id: {root.name}\ntitle: T\nzaaknummer: {zaaknummer}\ninspectorates: [ILT]\n",
        encoding="utf-8",
    )
    (root / ".copier-answers.yml").write_text(
        f"_commit: v{version}\n_src_path: idsp-templates/case\nslug: {root.name}\n",
        encoding="utf-8",
    )
    return root
