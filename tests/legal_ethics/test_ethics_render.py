"""Renderers: golden files for Markdown and HTML, and HTML that is safe and self-contained."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from legal_ethics import catalogue, checklist, profiles, render, reviewers, workflow
from legal_ethics.schema import ChecklistDefinition, ChecklistItem, MetricCheck

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("IDSP_UPDATE_GOLDEN") == "1"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _fixed_key(path: Path, seed: int) -> Path:
    key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


@pytest.fixture
def golden_case(make_case, tmp_path, monkeypatch):
    # The golden checklist is a hand-picked excerpt, far smaller than the one the profile
    # gives, which submission refuses (tests/legal_ethics/test_attacks_issue13.py); here
    # only the rendering is under test.
    monkeypatch.setattr(profiles, "definition_problems", lambda case, defn: [])
    # Decision ids are signatures over the bindings: the installed packages differ per machine.
    from legal_ethics import bindings

    monkeypatch.setattr(bindings, "environment_hash", lambda: "golden-environment")
    c = make_case()
    items = (
        profiles.to_item(catalogue.get("ak.grw-02"), why="geldt voor elk algoritme voor een publieke taak", blocking=True),
        profiles.to_item(catalogue.get("iama.1.3.1"), why="IAMA aanbevolen", blocking=True, expected=False),
        profiles.to_item(catalogue.get("profiling.random-sample"), why="risicoprofilering van bedrijven", blocking=True, minimum=0.05),
        ChecklistItem(key="ce.fairness-ratio", instrument="local", kind="measure", section="CE-markering",
                      title="Selectieratio <rechtsvorm> binnen productcategorie", blocking=True,
                      answer_type="metric_check", why="zaaktype ce_markering",
                      metric=MetricCheck(artifact="reports/fairness.json", path="selection_rate.ratio", threshold=0.8),
                      responsible_role="data-scientist", reviewer_roles=("ethicus",), phase="use"),
        profiles.to_item(catalogue.get("ds.c-3"), why="data-science-ethiek, voor elke zaak"),
    )
    defn = ChecklistDefinition(
        id="ce-risico-ethics", case_id=c.id, title="Juridisch-ethische toets: Risicoselectie CE-markering",
        created=date(2026, 3, 1), profile=c.spec.profile.model_dump(mode="json"),
        prescan=profiles.prescan(c.spec).as_dict(), catalogues={"ak-vereisten": "940ae02"},
        signoff_roles=("jurist", "gemandateerd-verantwoordelijke"), items=items,
    )
    checklist.save(c, checklist.CHECKLIST_FILE, defn)
    workflow.answer(c, "ak.grw-02", "voldaan", rationale="Biasanalyse en rechtvaardigingstoets gedaan.",
                    evidence=["docs/rechtvaardiging.md"], actor="pim", now=T0)
    workflow.answer(c, "iama.1.3.1", "nee", actor="pim", now=T0)
    workflow.answer(c, "profiling.random-sample", "0,1", rationale="10% aselect.", actor="pim", now=T0)
    workflow.answer(c, "ce.fairness-ratio", actor="pim", now=T0)
    workflow.submit(c, actor="pim", now=T0)
    for user, role, seed in (("alice", "jurist", 1), ("carol", "gemandateerd-verantwoordelijke", 3)):
        key = _fixed_key(tmp_path / "keys" / f"{user}.pem", seed)
        reviewers.register(user, [role], reviewers.load_key(key).public_key, actor="admin")
        workflow.decide(c, "approve", role=role, key_path=key, actor=user, now=T0)
    return c


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_render_matches_golden_file(golden_case, fmt):
    text = render.RENDERERS[fmt](render.view(golden_case, now=T0, generated_at=T0))
    golden = GOLDEN / f"checklist{render.EXTENSIONS[fmt]}"
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"re-run with IDSP_UPDATE_GOLDEN=1 and review {golden}"


def test_html_is_self_contained_and_escaped(golden_case):
    text = render.render_html(render.view(golden_case, now=T0, generated_at=T0))
    assert "<script" not in text and "src=" not in text and "<link" not in text
    assert "Selectieratio &lt;rechtsvorm&gt; binnen productcategorie" in text
    assert "goedgekeurd" in text and "geldig" in text


def test_render_shows_what_a_jurist_needs(golden_case):
    text = render.render_markdown(render.view(golden_case, now=T0, generated_at=T0))
    for needle in (
        "urn:nl:ak:ver:grw-02", "Grondwet 1", "**Antwoord:** voldaan",
        "docs/rechtvaardiging.md", "Inhoudshash (sha256)", "| goedkeuring (gebruik) | Jurist | alice |", "blokkerend",
        "selection_rate.ratio", "Pre-scan DPIA",
    ):
        assert needle in text, needle
