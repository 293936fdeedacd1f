"""Answers are checked before anything is written: the rules of case.yaml, said plainly."""

from __future__ import annotations

import pytest
from casekit import TEMPLATE, ZAAK
from idsp.case_template import resolve_answers
from idsp.errors import UserError


def _resolve(name="bridge-check", **given):
    given.setdefault("zaaknummer", ZAAK)
    return resolve_answers(name, given, root=TEMPLATE)


def test_defaults_fill_everything_but_the_zaaknummer():
    answers = _resolve(zaaknummer="NVWA-2026-000017", project_lead="Jan Jansen")
    assert answers["slug"] == "bridge-check"
    assert answers["title"] == "Bridge check"
    assert answers["inspectorates"] == ["NVWA"]  # from the zaaknummer's prefix
    assert answers["case_type"] == "generic"
    assert answers["personal_data"] is False
    assert answers["risk_profiling"] == "none"
    with pytest.raises(UserError, match="no answer for `zaaknummer`"):
        resolve_answers("bridge-check", {}, root=TEMPLATE)


@pytest.mark.parametrize(
    "given,match",
    [
        ({"zaaknummer": "ILT-26-1"}, "form CODE-YYYY-NNNNNN"),
        ({"case_type": "asbest"}, "generic, ce_markering"),
        ({"inspectorates": "ILT,AFM"}, "one or more of ILT, NVWA"),
        ({"risk_profiling": "everyone"}, "none, companies, natural_persons"),
        ({"personal_data": "misschien"}, "not yes or no"),
        ({"data_sources": "ok, 9lives"}, "cannot be a dataset name"),
        ({"colour": "blue"}, "unknown or reserved answer colour"),
        ({"created": "2020-01-01"}, "unknown or reserved answer created"),
        ({"project_lead": "  "}, "`project_lead` is empty"),
    ],
)
def test_bad_answers_are_refused_with_the_fix(given, match):
    with pytest.raises(UserError, match=match) as info:
        _resolve(**given)
    assert info.value.exit_code == 2


def test_bad_name_is_refused():
    with pytest.raises(UserError, match="lower-case letters") as info:
        _resolve(name="Bridge_Check")
    assert info.value.where == "NAME"


def test_yes_no_in_dutch_and_english():
    assert _resolve(personal_data="ja")["personal_data"] is True
    assert _resolve(personal_data="no")["personal_data"] is False


def test_interactive_asks_again_after_a_bad_answer():
    asked = []
    replies = iter(["ILT-26-1", ZAAK])

    def ask(question, default, problem):
        asked.append((question.name, problem))
        if question.name == "zaaknummer":
            return next(replies)
        return default if default is not None else "Jan Jansen"

    answers = resolve_answers("bridge-check", {}, ask=ask, root=TEMPLATE)
    assert answers["zaaknummer"] == ZAAK
    zaak = [p for name, p in asked if name == "zaaknummer"]
    assert zaak[0] is None and "CODE-YYYY-NNNNNN" in zaak[1]


def test_new_case_checks_answers_it_is_given_directly(tmp_path):
    from idsp.case_projects import new_case

    answers = _resolve()
    with pytest.raises(UserError, match="answers are for 'bridge-check'"):
        new_case("other-case", answers, dest=tmp_path)
    with pytest.raises(UserError, match="zaaknummer"):
        new_case("bridge-check", answers | {"zaaknummer": "nope"}, dest=tmp_path)
    assert list(tmp_path.iterdir()) == []
