"""Algoritmeregister export: standard 1.0 field names, required fields, maximum lengths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from idsp.errors import UserError

from legal_ethics import register, workflow

SCHEMA = Path("/work/shared/upstream/minbzk/Algoritmeregister/backend/app/schemas/config/v1_0.json")


@pytest.fixture
def owned_case(make_case, kit, tmp_path):
    import yaml

    c = make_case()
    path = c.root / "case.yaml"
    data = yaml.safe_load(path.read_text())
    data["owners"][0]["email"] = "algoritmes@ilt.example.nl"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    from idsp.case import Case

    from legal_ethics import init_checklist

    c = Case.open(c.root)
    init_checklist(c, actor="pim")
    workflow.answer(c, "profiling.human-review", "voldaan", rationale="Een inspecteur beoordeelt elke selectie.", actor="pim")
    return c


def test_entry_is_filled_from_case_and_answers(owned_case):
    entry = register.build_entry(owned_case, categories=("Economie",))
    assert entry["name"] == "Risicoselectie CE-markering"
    assert entry["organization"] == "Inspectie Leefomgeving en Transport"
    assert entry["publication_category"] == "Impactvolle algoritmes"
    assert entry["contact_email"] == "algoritmes@ilt.example.nl"
    assert entry["human_intervention"] == "Een inspecteur beoordeelt elke selectie."
    assert entry["lawful_basis_grouping"] == [{"title": "Warenwet art. 32", "link": "https://wetten.overheid.nl/BWBR0001969"}]
    assert {"title": "Pre-scan DPIA"} in entry["impacttoetsen_grouping"]
    assert register.validate(entry) == []


def test_missing_required_field_is_refused(make_case):
    c = make_case()  # no owner e-mail
    from legal_ethics import init_checklist

    init_checklist(c, actor="pim")
    with pytest.raises(UserError, match="`contact_email` is required"):
        register.build_entry(c)


def test_too_long_and_not_permitted_values_are_named():
    entry = {"name": "x" * 101, "description_short": "d", "organization": "o", "status": "Klaar",
             "contact_email": "a@b", "publication_category": "Overige algoritmes", "lang": "nld", "begin_date": "2026-1"}
    problems = "\n".join(register.validate(entry))
    assert "`name` is 101 characters, at most 100 allowed" in problems
    assert "`status` = ['Klaar'] is not permitted" in problems
    assert "`begin_date` = '2026-1' must be YYYY-MM" in problems


@pytest.mark.skipif(not SCHEMA.exists(), reason="no upstream checkout on this machine")
def test_field_rules_match_the_official_standard():
    official = json.loads(SCHEMA.read_text())["properties"]
    assert set(register.FIELDS) == set(official) - {"lars", "publication_dt"}
    for name, (max_len, required) in register.FIELDS.items():
        assert official[name].get("max_length") == max_len, name
        assert (official[name].get("required") is True) == required, name
    for name, values in register.PERMITTED.items():
        assert tuple(official[name]["permitted_values"]) == values, name
