"""The catalogue, the importer against small fixtures in the official formats, and the real upstream."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from legal_ethics import catalogue, importer

UPSTREAM = Path("/work/shared/upstream/minbzk")

# The 63 Algoritmekader requirements (vereisten) at task-registry 940ae02.
AK_REQUIREMENTS = (
    [f"aia-{i:02d}" for i in range(40)]
    + ["arc-01", "aut-01"]
    + [f"avg-{i:02d}" for i in range(1, 14)]
    + ["awb-01", "awb-02", "bio-01", "bzk-01", "dat-01", "grw-01", "grw-02", "woo-01"]
)


def test_all_63_algoritmekader_requirements_with_official_ids():
    assert len(AK_REQUIREMENTS) == 63
    reqs = {i.official_id: i for i in catalogue.catalogue("ak-vereisten").items}
    assert set(reqs) == {f"urn:nl:ak:ver:{r}" for r in AK_REQUIREMENTS}
    for urn, item in reqs.items():
        assert item.kind == "requirement" and item.instrument == "ak"
        assert item.title and item.text and item.legal_refs, urn
        assert item.source_url.startswith("https://minbzk.github.io/Algoritmekader/"), urn
        assert item.upstream_name_sha256 and len(item.upstream_name_sha256) == 64


def test_catalogue_has_every_instrument_the_issue_names():
    ids = {i.official_id for i in catalogue.items().values() if i.official_id}
    assert "urn:nl:iama:2.0:1.3.1" in ids  # IAMA 2.0 question level
    assert {f"urn:nl:dpia:3.0:{n}" for n in range(1, 21)} <= ids  # DPIA 3.0 sections
    assert {"urn:nl:ak:mtr:ver-03", "urn:nl:ak:mtr:imp-02", "urn:nl:ak:mtr:org-15"} <= ids
    instruments = {i.instrument for i in catalogue.items().values()}
    assert {"ak", "iama", "dpia", "aiact", "profiling", "ds-ethics"} <= instruments
    assert len([i for i in catalogue.items().values() if i.instrument == "iama"]) == 77
    assert catalogue.get("iama1.1.1.1").official_id == "urn:nl:aivt:tr:iama:1.0:1.1.1"  # IAMA 1.0, reference
    assert len(catalogue.catalogue("iama-1.0").items) == 57


def test_keys_are_unique_and_stable():
    keys = list(catalogue.items())
    assert len(keys) == len(set(keys))
    assert catalogue.get("ak.grw-02").official_id == "urn:nl:ak:ver:grw-02"
    legal = {r.act for r in catalogue.get("ak.grw-02").legal_refs}
    assert {"Grondwet", "EVRM"} <= legal


# --- importer on fixtures in the official formats ------------------------------------


def _req(urn: str, name: str) -> str:
    return yaml.safe_dump({"schema_version": "1.1.0", "name": name, "description": "x", "urn": urn,
                           "language": "nl", "subject": ["governance"], "lifecycle": ["ontwerp"]})


def _sha(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()


@pytest.fixture
def task_registry(tmp_path, kit):
    """A tiny task-registry checkout: all our requirements, one renamed, one gone, one new."""
    files = {}
    for item in catalogue.catalogue("ak-vereisten").items:
        rid = item.official_id.rsplit(":", 1)[1]
        if rid == "woo-01":
            continue  # removed upstream
        name = "Nieuwe titel voor het non-discriminatievereiste" if rid == "grw-02" else None
        files[f"{rid}-x.yaml"] = _req(item.official_id, name or f"title {rid}")
    files["aia-40-nieuw.yaml"] = _req("urn:nl:ak:ver:aia-40", "Een nieuw vereiste")
    return kit.build_tree(tmp_path / "task-registry", {"requirements": files}), files


def test_import_reports_added_removed_retitled(task_registry, monkeypatch):
    folder, files = task_registry
    # Make every title but grw-02 equal to what we pinned, by hashing the same text.
    cat = catalogue.catalogue("ak-vereisten")
    patched = tuple(
        i.model_copy(update={"upstream_name_sha256": _sha(f"title {i.official_id.rsplit(':', 1)[1]}")}) for i in cat.items
    )
    monkeypatch.setattr(catalogue, "catalogue", lambda cid: cat.model_copy(update={"items": patched}))
    (d,) = importer.diff(folder)
    assert d.catalogue == "ak-vereisten"
    assert d.added == ["urn:nl:ak:ver:aia-40"]
    assert d.removed == ["urn:nl:ak:ver:woo-01"]
    assert d.retitled == ["urn:nl:ak:ver:grw-02"]


def test_import_par_dpia_form_iama(tmp_path, kit):
    iama = {
        "name": "IAMA", "urn": "urn:nl:iama", "version": "2.1",
        "tasks": [
            {"task": "Inleiding", "id": "0", "is_official_id": False, "type": ["task_group"], "tasks": []},
            {"task": "Deel 1", "id": "1.0", "is_official_id": False, "type": ["task_group"], "tasks": [
                {"task": "Aanleiding", "id": "1.1", "type": ["task_group"], "tasks": [
                    {"task": "Wat is de aanleiding?", "id": "1.1.1", "type": ["open_text"]},
                    {"task": "Nieuwe vraag", "id": "1.1.9", "type": ["open_text"]},
                ]},
                {"task": "Wie zijn betrokken?", "id": "1.4.1", "is_official_id": True, "type": ["task_group"], "tasks": [
                    {"task": "A) Bij ontwikkeling", "id": "1.4.1.1", "is_official_id": False, "type": ["open_text"]},
                ]},
            ]},
        ],
    }
    folder = kit.build_tree(tmp_path / "par", {"sources": {"iama.yaml": yaml.safe_dump(iama, allow_unicode=True)}})
    (d,) = importer.diff(folder)
    assert d.catalogue == "iama-2.0"
    assert d.version_upstream == "2.1" and d.version_ours == "2.0"
    assert d.added == ["urn:nl:iama:1.1.9"]
    assert "urn:nl:iama:1.1.1" not in d.removed and "urn:nl:iama:1.4.1" not in d.removed
    assert "urn:nl:iama:1.3.1" in d.removed
    assert d.upstream_count == 3


def test_import_refuses_a_folder_without_official_files(tmp_path):
    from idsp.errors import UserError

    (tmp_path / "x.yaml").write_text("a: 1\n")
    with pytest.raises(UserError, match="no official catalogue files"):
        importer.diff(tmp_path)


@pytest.mark.skipif(not UPSTREAM.exists(), reason="no upstream checkout on this machine")
def test_catalogue_matches_the_pinned_upstream():
    diffs = {d.catalogue: d for d in importer.diff(UPSTREAM)}
    assert set(diffs) == {"ak-vereisten", "ak-maatregelen", "iama-1.0", "iama-2.0", "dpia-3.0"}
    for d in diffs.values():
        assert not d.changed, d.as_dict()
    assert diffs["ak-vereisten"].upstream_count == 63
