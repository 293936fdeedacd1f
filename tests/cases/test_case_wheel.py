"""From an installed wheel: the template is found in idsp/_templates, cases are made and updated."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from casekit import REPO, TEMPLATE, ZAAK, add_v2, git, tool_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """Build the idsp wheel and install it the way pip does a pure wheel: unpacked on a path."""
    out = tmp_path_factory.mktemp("wheel")
    uv = Path(sys.executable).parent / "uv"
    cmd = [str(uv), "build", "--wheel", "-o", str(out)] if uv.exists() else [
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), "."
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    wheel = next(out.glob("idsp-*.whl"))
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _idsp(site: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    code = "import sys; from idsp.cli import run; sys.exit(run(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=tool_env(PYTHONPATH=str(site), **env),
        timeout=600,
    )


def test_wheel_holds_every_template_file(wheel_site):
    shipped = {p.relative_to(TEMPLATE) for p in TEMPLATE.rglob("*") if p.is_file()}
    inside = wheel_site / "idsp" / "_templates" / "case"
    assert {p.relative_to(inside) for p in inside.rglob("*") if p.is_file()} == shipped


def test_wheel_finds_its_own_template_and_makes_and_updates_a_case(wheel_site, tmp_path):
    probe = subprocess.run(
        [sys.executable, "-c", "import idsp.case_template as t; print(t.template_root())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=tool_env(PYTHONPATH=str(wheel_site)),
    )
    root = Path(probe.stdout.strip())
    assert root == wheel_site / "idsp" / "_templates" / "case", probe.stderr

    home = tmp_path / "home"
    made = _idsp(
        wheel_site, tmp_path, "case", "new", "wheel-case", "--defaults", "--json",
        "--data", f"zaaknummer={ZAAK}", "--dest", str(tmp_path / "cases"),
        IDSP_HOME=str(home),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    case = Path(json.loads(made.stdout)["path"])
    assert (case / "case.yaml").is_file()

    (case / "data" / "synthetic" / "mine.csv").write_text("sector;aantal\nbouw;3\n")
    git(case, "add", "-A")
    git(case, "commit", "-q", "--no-verify", "-m", "my suite")

    add_v2(root)  # the next idsp release, installed over this one
    updated = _idsp(wheel_site, case, "case", "update", "--json", IDSP_HOME=str(home))
    assert updated.returncode == 0, updated.stdout + updated.stderr
    result = json.loads(updated.stdout)  # the migration's own output went to stderr
    assert "moved data/synthetic/mine.csv" in updated.stderr
    assert (case / "data" / "examples" / "mine.csv").is_file()
    assert (result["from_version"], result["to_version"], result["conflicts"]) == (
        "1.0.0",
        "2.0.0",
        [],
    )
    assert "## Reporting" in (case / "README.md").read_text()


def test_wheel_holds_the_page_templates_and_style_sheets(wheel_site):
    """The service's and the hub's templates and static files are package data of the wheel."""
    package = REPO / "platform" / "idsp"
    for folder in ("service/templates", "service/static", "hub/templates"):
        shipped = {p.name for p in (package / folder).iterdir() if p.is_file()}
        inside = {p.name for p in (wheel_site / "idsp" / folder).iterdir()}
        assert shipped and shipped <= inside, (folder, shipped - inside)
