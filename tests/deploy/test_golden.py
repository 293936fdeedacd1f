"""The rendered Kubernetes deployment, file by file, against known-good output in golden/.

A change to the renderer, to deploy/ or to the platform defaults shows up here as a diff to
review. After reviewing it, refresh the files with

    IDSP_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/deploy/test_golden.py -p no:cacheprovider

and commit golden/ together with the change.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from idsp.config import load_config
from idsp.deploy import kubernetes as k8s

GOLDEN = Path(__file__).resolve().parent / "golden" / "kubernetes"
UPDATE = os.environ.get("IDSP_UPDATE_GOLDEN") == "1"


def _cfg(tmp_path):
    lines = ["cases:"]
    for case_id, member in (("ce-1", "anna"), ("ce-2026-002", "bob")):
        folder = tmp_path / "cases" / case_id
        folder.mkdir(parents=True)
        (folder / "case.yaml").write_text(f"id: {case_id}\nmembers:\n  - {{name: X, username: {member}}}\n")
        lines.append(f"  - id: {case_id}\n    path: {folder}")
    (tmp_path / "index.yaml").write_text("\n".join(lines) + "\n")
    return load_config(environ={"IDSP_PATHS__CASE_INDEX": str(tmp_path / "index.yaml")})


def test_rendered_files_match_the_golden_files(tmp_path):
    rendered = k8s.rendered_files(_cfg(tmp_path))
    if UPDATE:
        for old in GOLDEN.rglob("*"):
            if old.is_file() and old.relative_to(GOLDEN).as_posix() not in rendered:
                old.unlink()
        for relative, text in rendered.items():
            (GOLDEN / relative).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / relative).write_text(text, encoding="utf-8")
    golden = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*") if p.is_file()}
    assert golden == set(rendered), "rendered files differ from golden/ (IDSP_UPDATE_GOLDEN=1 refreshes)"
    for relative, text in rendered.items():
        expected = (GOLDEN / relative).read_text(encoding="utf-8")
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), text.splitlines(keepends=True), f"golden/{relative}", "rendered"
            )
        )
        assert not diff, f"{relative} differs from the golden file (IDSP_UPDATE_GOLDEN=1 refreshes):\n{diff}"


def test_no_rendered_file_holds_a_temporary_path(tmp_path):
    # golden files must not depend on where the test ran
    for relative, text in k8s.rendered_files(_cfg(tmp_path)).items():
        assert str(tmp_path) not in text, relative
