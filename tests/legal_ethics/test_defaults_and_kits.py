"""One source per default (approval validity) and the explicit registry of case kits."""

from __future__ import annotations

import pytest
from idsp.case_file import CASE_TYPES, Policy
from idsp.config import Ethics
from idsp.defaults import APPROVAL_VALID_DAYS, GENERIC_CASE_TYPE
from idsp.errors import CaseError

import casuistiek
from casuistiek.ce_markering import ethics as ce_ethics
from legal_ethics import checklist, init_checklist, profiles, render
from legal_ethics.schema import ChecklistDefinition


def test_every_schema_takes_the_approval_validity_from_one_constant():
    assert Policy().approval_valid_days == APPROVAL_VALID_DAYS
    assert Ethics().approval_valid_days == APPROVAL_VALID_DAYS
    assert ChecklistDefinition.model_fields["validity_days"].default == APPROVAL_VALID_DAYS


def test_the_review_page_shows_the_validity_an_approval_will_get(make_case):
    c = make_case(policy={"approval_valid_days": 200})
    init_checklist(c, actor="pim")
    assert checklist.load_definition(c).validity_days == APPROVAL_VALID_DAYS
    v = render.view(c)
    assert v.valid_days == 200
    assert "geldigheid 200 dagen" in render.render_markdown(v)
    assert "geldigheid 200 dagen" in render.render_html(v)


def test_every_case_type_but_generic_has_a_kit():
    assert set(casuistiek.KITS) == set(CASE_TYPES) - {GENERIC_CASE_TYPE}


def test_a_kit_adds_its_items_and_roles_from_the_registry(make_case):
    c = make_case(case_type="ce_markering")
    init_checklist(c, actor="pim")
    defn = checklist.load_definition(c)
    assert {i.key for i in ce_ethics.items()} <= {i.key for i in defn.items}
    assert "ethicus" in defn.signoff_roles


def test_a_case_type_without_a_kit_is_refused_not_given_a_shorter_checklist(make_case, monkeypatch):
    monkeypatch.setattr(profiles, "_CASE_TYPES", {})
    c = make_case(case_type="ce_markering")
    with pytest.raises(CaseError, match="case type 'ce_markering' has no case kit") as err:
        init_checklist(c, actor="pim")
    assert "case_type" in str(err.value.where) and "casuistiek.KITS" in str(err.value.fix)
    assert not checklist.has_checklist(c)
