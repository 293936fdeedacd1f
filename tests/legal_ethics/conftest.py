"""Fixtures for legal_ethics: a case folder built inline, registered reviewers with real keys."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from idsp.case import Case
from testkit.ethics import EVIDENCE, answer_all, approve_all, case_tree, passing_value
from testkit.files import build_tree

from legal_ethics import reviewers, workflow


@pytest.fixture
def kit():
    """The helpers above for test modules (conftest cannot be imported under importlib mode)."""
    return types.SimpleNamespace(
        case_tree=case_tree, build_tree=build_tree, passing_value=passing_value, answer_all=answer_all,
        approve_all=approve_all, EVIDENCE=EVIDENCE,
    )


@pytest.fixture
def make_case(tmp_path, idsp_home):
    def _make(profile: dict | None = None, **kw) -> Case:
        root = build_tree(tmp_path / "case", case_tree(profile, **kw))
        return Case.open(root)

    return _make


@pytest.fixture
def case(make_case) -> Case:
    c = make_case()
    from legal_ethics import init_checklist

    init_checklist(c, actor="pim")
    return c


@pytest.fixture
def keys(tmp_path, idsp_home) -> dict[str, Path]:
    """Four registered reviewers, one role each, plus 'rob' who holds two roles."""
    people = {
        "alice": ["jurist"],
        "bob": ["privacy-officer"],
        "carol": ["gemandateerd-verantwoordelijke"],
        "dave": ["ethicus"],
        "pim": ["jurist"],  # the project lead is also a jurist: four-eyes must stop him
    }
    out = {}
    for user, roles in people.items():
        pair = reviewers.keygen(tmp_path / "keys" / f"{user}.pem")
        reviewers.register(user, roles, pair.public_key, name=user.title(), actor="admin")
        out[user] = pair.path
    return out


@pytest.fixture
def approved_case(case, keys) -> Case:
    answer_all(case, only_blocking=True)
    workflow.submit(case, actor="pim")
    approve_all(case, keys)
    return case
