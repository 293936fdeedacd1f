"""The case pages over HTTP with the service's own login cookie (as a browser after the hub's
OAuth): what a lead, an owner, a member and an outsider see and may do, the XSRF token every
form POST needs, escaping, and refusals named by field in Dutch.

The hub is the servicekit's token table and there is no root case agent (making a case and a
member's access at once are tests/service/test_case_pages_live.py); everything the page checks
before the agent is reached is tested here, with the registry's state after each refusal.
"""

from __future__ import annotations

import re

import pytest
from idsp.service.case_api import CaseMaker

from tests.service.servicekit import user_model
from tests.service.test_review_api import _cookie


@pytest.fixture
def svc(served):
    served.service.case_maker = CaseMaker(agent_socket=None)
    served.tokens["tok-lena"] = user_model("lena", ["projectleiders"])
    with served.service.cases.registry.changing() as cases:
        cases["ce-1"]["owners"] = ["lena"]
        cases["ce-1"]["title"] = '<script>alert("x")</script> & co'
    return served


def browser(svc, name: str):
    c = svc.client()
    c.cookies.update(_cookie(svc, f"tok-{name}"))
    return c


def xsrf(page) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


FORM = {"case_id": "bruggen-2026", "title": "Onderhoud bruggen", "zaaknummer": "ILT-2026-004512",
        "case_type": "generic", "inspectorates": "ILT"}  # fmt: skip


def test_my_cases_lists_mine_escaped_and_hides_the_lead_form_from_others(svc):
    with browser(svc, "alice") as c:
        r = c.get("cases/")
    assert r.status_code == 200, r.text
    assert 'href="/services/idsp/cases/ce-1"' in r.text and "ce-2" not in r.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in r.text
    assert '<script>alert("x")' not in r.text
    assert 'id="zaak-form"' not in r.text and "Nieuwe zaak" not in r.text
    assert re.search(r'href="/services/idsp/cases/" aria-current="page">Mijn zaken<', r.text)
    with browser(svc, "lena") as c:
        r = c.get("cases/")
    assert 'id="zaak-form"' in r.text and ">Nieuwe zaak<" in r.text
    assert '<option value="ce_markering">CE-markering</option>' in r.text
    assert "duurt ongeveer een halve minuut" in r.text  # the wait is said before the click


def test_a_form_post_without_the_xsrf_token_is_refused_and_changes_nothing(svc):
    with browser(svc, "lena") as c:
        c.get("cases/")  # the page set its XSRF cookie; the form's token is left out
        r = c.post("cases/", data=FORM)
        assert r.status_code == 403 and 'id="error"' in r.text
        r = c.post("cases/ce-1", data={"actie": "toevoegen", "gebruiker": "bob"})
        assert r.status_code == 403
        r = c.post(
            "cases/", data={**FORM, "_xsrf": "2|abc|def|123"}
        )  # a token the page did not issue
        assert r.status_code == 403
    assert svc.service.cases.registry.get("bruggen-2026") is None
    assert svc.service.cases.registry.get("ce-1")["members"] == ["alice"]


def test_a_non_lead_is_refused_in_dutch_even_when_posting_the_form(svc):
    with svc.service.cases.registry.changing() as cases:  # an owner of a case, not a lead
        cases["ce-1"]["owners"] = ["alice", "lena"]
    with browser(svc, "alice") as c:
        token = xsrf(c.get("cases/ce-1"))  # her own case's member form hands out the token
        r = c.post("cases/", data={**FORM, "_xsrf": token})
    assert r.status_code == 403
    assert "Alleen projectleiders maken zaken" in r.text
    assert svc.service.cases.registry.get("bruggen-2026") is None


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"case_id": "../etc"}, "case_id", "Zaak-id: gebruik 3 tot 64 kleine letters"),
        ({"zaaknummer": "12345"}, "zaaknummer", "Zaaknummer: de vorm is CODE-JJJJ-NNNNNN"),
        ({"title": "  "}, "title", "Titel: vul een korte titel in."),
        ({"case_type": "kernreactor"}, "case_type", "Soort zaak: kies een van de soorten"),
        ({"inspectorates": "FBI"}, "inspectorates", "Inspectie: kies een inspectie"),
        ({"case_id": "ce-1"}, "case_id", "Zaak-id: er is al een zaak &#39;ce-1&#39;."),
    ],
)
def test_a_bad_answer_is_named_by_field_and_the_form_keeps_the_answers(svc, change, field, words):
    with browser(svc, "lena") as c:
        token = xsrf(c.get("cases/"))
        r = c.post("cases/", data={**FORM, **change, "_xsrf": token})
    assert r.status_code in (400, 409), r.text
    assert f'<p class="idsp-field-error" id="fout-{field}">{words}' in r.text, r.text
    assert re.search(
        rf'id="{field}" name="{field}"[^>]*aria-invalid="true" aria-describedby="fout-{field}"',
        r.text,
    )
    assert 'value="Onderhoud bruggen"' in r.text or field == "title"
    assert svc.service.cases.registry.get("bruggen-2026") is None


def test_without_the_case_agent_the_form_says_so_and_leaves_no_reservation(svc):
    with browser(svc, "lena") as c:
        token = xsrf(c.get("cases/"))
        r = c.post("cases/", data={**FORM, "_xsrf": token})
    assert r.status_code == 503
    assert "Het maken van zaken werkt nu niet op deze hub" in r.text
    assert "Technische toelichting" in r.text and "no case agent" in r.text
    assert svc.service.cases.registry.get("bruggen-2026") is None


def test_the_case_page_shows_members_read_only_to_a_member_and_forms_to_the_owner(svc):
    with browser(svc, "alice") as c:
        r = c.get("cases/ce-1")
    assert r.status_code == 200, r.text
    assert 'id="lid-alice"><td>alice</td><td>lid</td>' in r.text
    assert 'id="lid-lena"><td>lena</td><td>eigenaar</td>' in r.text
    assert (
        'id="alleen-lezen"' in r.text
        and 'id="lid-form"' not in r.text
        and "verwijder-" not in r.text
    )
    assert 'href="/user/alice/lab/tree/cases/ce-1"' in r.text
    assert "&lt;script&gt;" in r.text and '<script>alert("x")' not in r.text
    with browser(svc, "lena") as c:
        r = c.get("cases/ce-1")
    assert 'id="lid-form"' in r.text and 'id="verwijder-alice"' in r.text
    assert "enige eigenaar" in r.text and 'id="verwijder-lena"' not in r.text


def test_a_case_of_others_and_an_unknown_case_get_one_answer(svc):
    with browser(svc, "bob") as c:
        theirs, unknown = c.get("cases/ce-1"), c.get("cases/ce-nothing-here")
    assert theirs.status_code == unknown.status_code == 404
    assert "Zaak ce-1 is niet een van uw zaken, of bestaat niet." in theirs.text
    assert theirs.text.replace("ce-1", "X") == unknown.text.replace("ce-nothing-here", "X")
    with svc.service.cases.registry.changing() as cases:  # bob owns ce-2: its page has forms
        cases["ce-2"]["owners"] = ["bob"]
    with browser(svc, "bob") as c:
        token = xsrf(c.get("cases/ce-2"))
        r = c.post("cases/ce-1", data={"actie": "toevoegen", "gebruiker": "bob", "_xsrf": token})
    assert r.status_code == 404
    assert svc.service.cases.registry.get("ce-1")["members"] == ["alice"]


def test_a_member_who_is_not_an_owner_cannot_add_or_remove(svc):
    with (
        svc.service.cases.registry.changing() as cases
    ):  # her own ce-2's page has a form (and the token)
        cases["ce-2"]["owners"] = ["alice"]
    with browser(svc, "alice") as c:
        assert 'id="alleen-lezen"' in c.get("cases/ce-1").text
        token = xsrf(c.get("cases/ce-2"))
        for data in ({"actie": "toevoegen", "gebruiker": "bob"},
                     {"actie": "bevestig-verwijderen", "gebruiker": "lena"}):  # fmt: skip
            r = c.post("cases/ce-1", data={**data, "_xsrf": token})
            assert r.status_code == 403
            assert "Alleen een eigenaar van de zaak voegt leden toe of verwijdert ze." in r.text
    case = svc.service.cases.registry.get("ce-1")
    assert (case["owners"], case["members"]) == (["lena"], ["alice"])


def test_the_owner_is_asked_to_confirm_a_removal_and_a_bad_name_is_named(svc):
    with browser(svc, "lena") as c:
        token = xsrf(c.get("cases/ce-1"))
        r = c.post(
            "cases/ce-1", data={"actie": "verwijderen", "gebruiker": "alice", "_xsrf": token}
        )
        assert r.status_code == 200
        assert ">Ja, verwijder alice uit ce-1</button>" in r.text and "Nee, annuleren" in r.text
        assert "verliest meteen de toegang" in r.text
        assert svc.service.cases.registry.get("ce-1")["members"] == ["alice"]  # only asked
        r = c.post(
            "cases/ce-1", data={"actie": "toevoegen", "gebruiker": "<b>Bob</b>", "_xsrf": token}
        )
        assert r.status_code == 400
        assert (
            '<p class="idsp-field-error" id="fout-gebruiker">Gebruikersnaam: vul de naam in'
            in r.text
        )
        assert 'value="&lt;b&gt;Bob&lt;/b&gt;"' in r.text
        r = c.post("cases/ce-1", data={"actie": "toevoegen", "gebruiker": "alice", "_xsrf": token})
        assert r.status_code == 303 and "melding=" in r.headers["Location"]
        assert (
            "alice is al lid van deze zaak."
            in c.get(svc.url.split("/services/")[0] + r.headers["Location"]).text
        )
