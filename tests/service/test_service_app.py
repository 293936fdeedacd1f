"""The platform service's API with JupyterHub's real HubOAuth, a stand-in hub token table,
and the real hash-chained log: identity comes from the hub, never from the request."""

from __future__ import annotations

import json

from idsp.service import ACCESS_SCOPE
from idsp.service.auditlog import SERVICE_ACTOR, USER_EVENTS, AuditLog

from legal_ethics import audit


def _entries(svc):
    return list(audit.entries(path=svc.log.path))


def test_whoami_is_the_user_behind_the_token(served):
    r = served.client("tok-alice").get("api/whoami")
    assert r.status_code == 200
    assert r.json() == {
        "name": "alice",
        "groups": ["case-ce-1", "inspectorate-ilt"],
        "admin": False,
        "kind": "user",
        "mode": "hub",
    }
    assert served.client("tok-bob").get("api/whoami").json()["name"] == "bob"


def test_no_hub_identity_is_401_with_what_to_send(served):
    for client in (served.client(), served.client("not-a-hub-token")):
        r = client.get("api/whoami")
        assert r.status_code == 401
        assert "JUPYTERHUB_API_TOKEN" in r.json()["fix"]
    # a name in a header or query is no identity
    r = served.client().get(
        "api/whoami", params={"user": "alice"}, headers={"X-Remote-User": "alice"}
    )
    assert r.status_code == 401


def test_a_user_without_the_service_scope_and_a_service_token_are_refused(served):
    r = served.client("tok-mallory").get("api/whoami")
    assert r.status_code == 403 and ACCESS_SCOPE in r.json()["error"]
    served.tokens["tok-culler"]["scopes"].append(ACCESS_SCOPE)
    r = served.client("tok-culler").get("api/whoami")
    assert r.status_code == 403 and "only hub users" in r.json()["error"]


def test_an_event_is_appended_with_the_proved_actor(served):
    r = served.client("tok-alice").post(
        "api/audit",
        json={"event": "answered", "case_id": "ce-1", "data": {"item": "avg-01", "answer": "ja"}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["actor"] == "alice" and r.json()["seq"] == 2  # after the service's log.created
    first, last = _entries(served)
    assert (first["event"], first["actor"]) == ("log.created", SERVICE_ACTOR)
    assert (last["event"], last["actor"], last["case_id"]) == ("answered", "alice", "ce-1")
    assert last["data"] == {"item": "avg-01", "answer": "ja"}
    assert last["prev"] == first["hash"]


def test_a_body_that_names_another_actor_is_refused(served):
    alice = served.client("tok-alice")
    r = alice.post("api/audit", json={"event": "answered", "case_id": "ce-1", "actor": "bob"})
    assert r.status_code == 403
    message = r.json()["error"]
    assert (
        "'bob'" in message and "'alice'" in message and "never a name from the request" in message
    )
    assert len(_entries(served)) == 1  # nothing written
    # naming oneself is no forgery
    r = alice.post("api/audit", json={"event": "submitted", "case_id": "ce-1", "actor": "alice"})
    assert r.status_code == 201


def test_users_cannot_write_decisions_or_service_fields(served):
    alice = served.client("tok-alice")
    for event in ("approved", "rejected", "run.started", "reviewer.registered", "log.created", "member.added"):
        r = alice.post("api/audit", json={"event": event, "case_id": "ce-1"})
        assert r.status_code == 403, event
        assert "cannot record" in r.json()["error"] and "answered" in r.json()["error"]
    bad = [
        ({"case_id": "ce-1"}, "`event` is missing"),
        ({"event": "answered"}, "`case_id` is missing"),
        ({"event": "answered", "case_id": "ce-1", "os_user": "root"}, "unknown field"),
        ({"event": "answered", "case_id": "ce-1", "data": {"actor": "bob"}}, "may not set actor"),
        # the provenance mark is the service's: a user who set it could pass for the service
        ({"event": "answered", "case_id": "ce-1", "data": {"recorded_by": "service:idsp"}}, "may not set recorded_by"),
        ({"event": "answered", "case_id": "ce-1", "data": [1]}, "must be a JSON object"),
    ]
    for body, words in bad:
        r = alice.post("api/audit", json=body)
        assert r.status_code == 400 and words in r.json()["error"], (body, r.text)
    r = alice.post("api/audit", content=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    r = alice.post(
        "api/audit",
        content=json.dumps({"event": "answered", "case_id": "ce-1", "data": {"x": "y" * 70_000}}),
    )
    assert r.status_code == 413
    assert len(_entries(served)) == 1
    assert USER_EVENTS == {"answered", "submitted"}


def test_events_only_for_ones_own_cases_and_no_probing_for_ids(served):
    alice = served.client("tok-alice")
    theirs = alice.post("api/audit", json={"event": "answered", "case_id": "ce-2"})
    nowhere = alice.post("api/audit", json={"event": "answered", "case_id": "ce-999"})
    assert theirs.status_code == nowhere.status_code == 403
    assert theirs.json()["error"].replace("ce-2", "X") == nowhere.json()["error"].replace(
        "ce-999", "X"
    )


def test_each_user_lists_only_their_own_cases(served):
    mine = served.client("tok-alice").get("api/cases").json()["cases"]
    assert [c["id"] for c in mine] == ["ce-1"]
    assert mine[0]["title"] == "CE-markering speelgoed" and mine[0]["zaaknummer"] == "Z-1"
    assert [c["id"] for c in served.client("tok-bob").get("api/cases").json()["cases"]] == ["ce-2"]
    assert served.client("tok-mallory").get("api/cases").status_code == 403
    assert served.client().get("api/cases").status_code == 401


def test_verify_reports_intact_then_broken_then_missing(served):
    alice = served.client("tok-alice")
    alice.post("api/audit", json={"event": "answered", "case_id": "ce-1"})
    report = alice.get("api/audit/verify").json()
    assert report["status"] == "intact" and report["entries"] == 2 and report["head"]["seq"] == 2
    assert served.client().get("api/audit/verify").status_code == 401

    lines = served.log.path.read_text().splitlines()
    lines[1] = lines[1].replace('"alice"', '"bob"')
    served.log.path.write_text("\n".join(lines) + "\n")
    report = alice.get("api/audit/verify").json()
    assert report["status"] == "broken" and "was edited" in report["problems"][0]

    served.log.path.unlink()
    report = alice.get("api/audit/verify").json()
    assert report["status"] == "missing" and report["entries"] == 0
    assert "missing" in report["problems"][0]
    # and it stays missing: nothing starts a new chain that would hide the deletion
    r = alice.post("api/audit", json={"event": "answered", "case_id": "ce-1"})
    assert r.status_code == 409 and "missing" in r.json()["error"]
    assert AuditLog(served.log.folder).open() == "missing"
    assert not served.log.path.exists()


def test_an_emptied_log_is_broken_even_without_its_head_file(tmp_path):
    log = AuditLog(tmp_path / "audit")
    assert log.open() == "created"
    assert log.open() == "present"
    log.path.write_text("")
    log.head.unlink()
    report = log.verify()
    assert report["status"] == "broken" and "entries were removed" in report["problems"][0]


def test_the_page_sends_browsers_to_the_hub_login_and_greets_in_dutch(served):
    r = served.client().get("")
    assert r.status_code == 302
    assert (
        "/hub/api/oauth2/authorize" in r.headers["location"] and "state=" in r.headers["location"]
    )
    r = served.client("tok-alice").get("")
    assert r.status_code == 200
    assert 'Ingelogd als <strong id="user">alice</strong>' in r.text
    assert "ce-1" in r.text and "ce-2" not in r.text and "Status: intact" in r.text
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert served.client("tok-mallory").get("").status_code == 403
