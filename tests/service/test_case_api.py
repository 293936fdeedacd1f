"""The case routes of the platform service without a hub or an agent: who may ask, and the
same answer for a case that is not yours and one that does not exist.

The hub is the servicekit's token table; the root agent is absent (its own tests are
tests/hub/test_case_agent.py, the whole path tests/service/test_service_cases_live.py).
"""

from __future__ import annotations

import pytest
from idsp.service.case_api import CaseMaker

from tests.service.servicekit import user_model


@pytest.fixture
def cases(served):
    served.service.case_maker = CaseMaker(agent_socket=None)
    served.tokens["tok-lena"] = user_model("lena", ["projectleiders"])
    return served


def test_only_a_project_lead_makes_a_case_and_is_told_which_group(cases):
    r = cases.client("tok-alice").post("api/cases", json={"case_id": "ce-new-1", "data": {}})
    assert r.status_code == 403
    assert (
        "projectleiders" in r.json()["error"]
        and "only project leads make cases" in r.json()["error"]
    )
    assert "projectleiders" in r.json()["fix"]


def test_a_bad_case_id_or_field_is_400_and_nothing_is_reserved(cases):
    lena = cases.client("tok-lena")
    r = lena.post("api/cases", json={"case_id": "../etc", "data": {}})
    assert r.status_code == 400 and "is not a case id" in r.json()["error"]
    r = lena.post("api/cases", json={"case_id": "ce-new-1", "path": "/etc"})
    assert r.status_code == 400 and "unknown field(s) path" in r.json()["error"]
    r = lena.post("api/cases", json={"case_id": "ce-1", "data": {}})  # imported from the index
    assert r.status_code == 409 and "already exists" in r.json()["error"]
    # without an agent: 503, and the id is free again (no half-made entry in the registry)
    r = lena.post("api/cases", json={"case_id": "ce-new-1", "data": {}})
    assert r.status_code == 503 and "no case agent" in r.json()["error"]
    assert cases.service.cases.registry.get("ce-new-1") is None


def test_members_are_for_owners_and_others_get_one_answer(cases):
    with cases.service.cases.registry.changing() as registry:
        registry["ce-1"]["owners"] = ["lena"]
    alice, lena = cases.client("tok-alice"), cases.client("tok-lena")
    assert lena.get("api/cases/ce-1/members").json() == {
        "case_id": "ce-1",
        "owners": ["lena"],
        "members": ["alice"],
    }
    answers = [
        alice.get("api/cases/ce-1/members"),  # a member, not an owner
        cases.client("tok-bob").post("api/cases/ce-1/members", json={"user": "bob"}),
        alice.get("api/cases/ce-nothing-here/members"),
    ]
    assert {r.status_code for r in answers} == {403}
    assert len({r.json()["error"].replace("ce-nothing-here", "ce-1") for r in answers}) == 1
    r = lena.post("api/cases/ce-1/members", json={"user": "Robert'); --"})
    assert r.status_code == 400 and "hub user name" in r.json()["error"]
    r = lena.delete("api/cases/ce-1/members/lena")
    assert r.status_code == 400 and "only owner" in r.json()["error"]


def test_my_cases_come_from_the_registry_not_from_hub_groups(cases):
    # alice's hub group case-ce-1 alone makes nobody a member; the registry names her
    with cases.service.cases.registry.changing() as registry:
        registry["ce-1"]["members"] = []
    assert cases.client("tok-alice").get("api/cases").json() == {"cases": []}
    listed = cases.client("tok-bob").get("api/cases").json()["cases"]
    assert [(c["id"], c["role"]) for c in listed] == [("ce-2", "member")]
