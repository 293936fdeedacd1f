"""Helpers for the CE-marking tests: a case made with `idsp case new --type ce_markering`,
`dvc repro` in it, and its checklist answered and approved with real reviewer keys."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from testkit.ethics import passing_value
from testkit.tools import REPO, VENV_BIN, tool_env  # noqa: F401  (re-exported to the tests)

ZAAK = "NVWA-2026-000031"


def new_case(dest: Path, name: str = "ce-speelgoed", rows: int = 30_000) -> Path:
    """A CE-marking case from the template, with a small number of generated rows."""
    from idsp.cli import run

    code = run(["case", "new", name, "--type", "ce_markering", "--defaults", "--data", f"zaaknummer={ZAAK}",
                "--dest", str(dest)])  # fmt: skip
    assert code == 0
    root = dest / name
    params = root / "params.yaml"
    params.write_text(params.read_text().replace("rows: 200000", f"rows: {rows}"), encoding="utf-8")
    git(root, "commit", "-qam", "smaller synthetic data for the test", "--no-verify")
    return root


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=tool_env())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def dvc_repro(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.path.join(VENV_BIN, "dvc"), "repro", *args], cwd=root, capture_output=True, text=True,
        env=tool_env(**env), timeout=900,
    )  # fmt: skip


REVIEWERS = {"alice": "jurist", "carol": "gemandateerd-verantwoordelijke", "dave": "ethicus"}


def register_reviewers(keys_dir: Path) -> dict[str, Path]:
    from legal_ethics import reviewers

    out = {}
    for user, role in REVIEWERS.items():
        pair = reviewers.keygen(keys_dir / f"{user}.pem")
        reviewers.register(user, [role], pair.public_key, name=user.title(), actor="admin")
        out[user] = pair.path
    return out


DOCS = {
    "proxy-review": ("docs/proxy-review.md", "# Proxy review\n\nlisting_gpsr_info_complete: kept for now, measured.\n"),
    "rechtvaardigingstoets": ("docs/rechtvaardigingstoets.md", "# Rechtvaardigingstoets\n\nPer trigger: doel, geschiktheid, noodzaak, proportionaliteit.\n"),
    "biasanalyse-rapport": ("reports/fairness.json", None),
    "discriminatieprotocol": ("docs/discriminatieprotocol.md", "# Discriminatieprotocol\n"),
    "DPIA-document": ("docs/dpia.md", "# DPIA\n"),
}


def answer_blocking(case, *, skip: tuple[str, ...] = (), actor: str = "pim") -> None:
    from legal_ethics import checklist, workflow

    for path, text in DOCS.values():
        if text is not None:
            (case.root / path).parent.mkdir(parents=True, exist_ok=True)
            (case.root / path).write_text(text, encoding="utf-8")
    for item in checklist.load_definition(case).items:
        if not item.blocking or item.key in skip:
            continue
        evidence = [DOCS[e][0] for e in item.required_evidence]
        workflow.answer(case, item.key, passing_value(item), rationale="Zie bewijs.", evidence=evidence, actor=actor)


def justify(case, actor: str = "pim") -> None:
    from legal_ethics import workflow

    workflow.answer(
        case, "ce.rechtvaardigingstoets", "gerechtvaardigd",
        rationale="Elke trigger in reports/fairness.json is getoetst; zie het document.",
        evidence=[DOCS["rechtvaardigingstoets"][0]], actor=actor,
    )  # fmt: skip


def approve(case, keys: dict[str, Path]) -> list:
    from legal_ethics import workflow

    return [workflow.decide(case, "approve", role=role, key_path=keys[user], actor=user) for user, role in REVIEWERS.items()]
