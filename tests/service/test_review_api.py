"""The review API of the platform service: the reviewer registry and signed decisions, with the
real tornado app, JupyterHub's real HubOAuth, a stand-in hub token table, real Ed25519 keys,
a real case with a submitted checklist and the real gate reading what the service wrote."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from idsp.case import Case
from testkit.ethics import answer_all, case_tree
from testkit.files import build_tree

from legal_ethics import audit, gate, init_checklist, reviewers, state, workflow
from tests.service.servicekit import ServedService, user_model

PEOPLE = {"pim": [], "anna": [], "bob": [], "carol": [], "dirk": [], "root": []}


def _tokens() -> dict[str, dict]:
    out = {f"tok-{n}": user_model(n, ["case-ce-risico"]) for n in PEOPLE}
    out["tok-root"]["admin"] = True
    out["tok-dirk"]["admin"] = True
    out["tok-eve"] = user_model("eve", [])  # not a member of the case
    return out


class Key:
    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        raw = self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = base64.b64encode(raw).decode()

    def sign(self, text: str) -> str:
        return base64.b64encode(self.private.sign(text.encode("utf-8"))).decode()


@pytest.fixture
def hub_case(tmp_path, idsp_home, monkeypatch):
    yield from served_case(tmp_path, monkeypatch)


def served_case(tmp_path, monkeypatch):
    """The service on a thread over one case with a checklist that pim answered and submitted."""
    for var in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "IDSP_SERVICE_URL"):
        monkeypatch.delenv(var, raising=False)
    root = build_tree(tmp_path / "cases" / "ce-risico", case_tree())
    case = Case.open(root)
    init_checklist(case, actor="pim")
    answer_all(case, actor="pim", only_blocking=True)
    workflow.submit(case, actor="pim", purpose="use")
    index = tmp_path / "index.yaml"
    index.write_text(yaml.safe_dump({"cases": [{"id": "ce-risico", "path": str(root), "title": "Risico",
                                                "members": list(PEOPLE)}]}))
    with ServedService(tmp_path / "state", index, tmp_path / "cases", _tokens()) as svc:
        svc.case = case
        yield svc


def enrol(svc, name: str, roles: list[str], admin: str = "root") -> Key:
    key = Key()
    r = svc.client(f"tok-{name}").post("api/reviewers/enrol", json={"public_key": key.public, "source": "webcrypto"})
    assert r.status_code == 201, r.text
    if roles:
        r = svc.client(f"tok-{admin}").post(f"api/reviewers/{name}/approve", json={"roles": roles})
        assert r.status_code == 200, r.text
    return key


def payload(svc, name: str, **query) -> dict:
    r = svc.client(f"tok-{name}").get("api/cases/ce-risico/decisions/payload", params={"purpose": "use", **query})
    assert r.status_code == 200, r.text
    return r.json()


def decide(svc, name: str, key: Key, kind: str = "approve", role: str | None = None, reason: str = "", **over):
    query = {"kind": kind, "comment": reason, **({"role": role} if role else {}), "public_key": key.public}
    shown = payload(svc, name, **query)
    body = {"purpose": "use", "kind": kind, "payload": shown["payload"], "signature": key.sign(shown["canonical"]),
            "reason": reason, **over}
    return svc.client(f"tok-{name}").post("api/cases/ce-risico/decisions", json=body)


# --- the registry ---------------------------------------------------------------------


def test_enrol_then_admin_approves_roles_and_the_file_is_the_services_own(hub_case):
    svc = hub_case
    key = Key()
    r = svc.client("tok-anna").post("api/reviewers/enrol", json={"public_key": key.public, "source": "webcrypto"})
    assert r.status_code == 201
    entry = r.json()
    assert entry["username"] == "anna" and entry["keys"][0]["status"] == "pending"
    # anna sees only her own entry; the admin sees all
    assert [e["username"] for e in svc.client("tok-anna").get("api/reviewers").json()["reviewers"]] == ["anna"]
    assert svc.client("tok-bob").get("api/reviewers").json() == {"reviewers": []}
    # a pending key is no reviewer yet
    assert svc.client("tok-pim").get("api/reviewers/registry").json() == {"reviewers": []}
    r = svc.client("tok-root").post("api/reviewers/anna/approve", json={"roles": ["jurist"]})
    assert r.status_code == 200, r.text
    k = r.json()["keys"][0]
    assert (k["status"], k["approved_by"], r.json()["roles"]) == ("active", "root", ["jurist"])
    trust = svc.client("tok-pim").get("api/reviewers/registry").json()["reviewers"]
    assert trust[0]["username"] == "anna" and trust[0]["keys"][0]["public_key"] == key.public
    path = svc.log.folder.parent / "reviewers.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    events = [(e["event"], e["actor"]) for e in audit.entries(path=svc.log.path)]
    assert ("reviewer.enrolled", "anna") in events and ("reviewer.registered", "root") in events


def test_only_admins_approve_never_their_own_and_never_with_a_key(hub_case):
    svc = hub_case
    enrol(svc, "anna", [])
    r = svc.client("tok-bob").post("api/reviewers/anna/approve", json={"roles": ["jurist"]})
    assert r.status_code == 403 and "alleen een beheerder" in r.json()["error"]
    r = svc.client("tok-root").post("api/reviewers/anna/approve", json={"roles": ["jurist"], "public_key": "x"})
    assert r.status_code == 400 and "nooit een sleutel" in r.json()["error"]
    r = svc.client("tok-root").post("api/reviewers/anna/approve", json={"roles": ["paus"]})
    assert r.status_code == 400 and "onbekende rol" in r.json()["error"]
    enrol(svc, "root", [])
    r = svc.client("tok-root").post("api/reviewers/root/approve", json={"roles": ["jurist"]})
    assert r.status_code == 403 and "eigen aanmelding" in r.json()["error"]
    r = svc.client("tok-root").post("api/reviewers/nobody/approve", json={"roles": ["jurist"]})
    assert r.status_code == 409 and "geen sleutel die op goedkeuring wacht" in r.json()["error"]


def test_a_bad_key_and_anothers_key_are_refused(hub_case):
    svc = hub_case
    r = svc.client("tok-anna").post("api/reviewers/enrol", json={"public_key": "AAAA", "source": "webcrypto"})
    assert r.status_code == 400 and "geen Ed25519" in r.json()["error"]
    key = enrol(svc, "anna", ["jurist"])
    r = svc.client("tok-bob").post("api/reviewers/enrol", json={"public_key": key.public, "source": "webcrypto"})
    assert r.status_code == 409 and "al eerder aangemeld" in r.json()["error"]


def test_a_new_browser_revokes_the_old_key_but_not_its_decisions(hub_case):
    svc = hub_case
    old = enrol(svc, "anna", ["jurist"])
    r = decide(svc, "anna", old)
    assert r.status_code == 201, r.text
    first = r.json()["decision_id"]
    new = enrol(svc, "anna", ["jurist"])
    keys = svc.client("tok-anna").get("api/reviewers").json()["reviewers"][0]["keys"]
    assert [k["status"] for k in keys] == ["revoked", "active"]
    # the old key signs nothing more
    r = svc.client("tok-anna").get("api/cases/ce-risico/decisions/payload",
                                   params={"purpose": "use", "public_key": old.public})
    assert r.status_code == 403 and "ingetrokken" in r.json()["error"]
    # ... but its approval still counts at the gate, vouched by the service
    cfg = svc.service.review.decisions.config
    st = state.evaluate(svc.case, config=cfg)
    assert st.signed_roles.get("jurist") == "anna", st.reasons
    assert first in [v.decision.id for v in st.verdicts if v.ok]
    assert new.public != old.public


# --- decisions -------------------------------------------------------------------------


def test_approve_through_the_service_counts_at_the_gate(hub_case):
    svc = hub_case
    keys = {"anna": enrol(svc, "anna", ["jurist"]), "bob": enrol(svc, "bob", ["privacy-officer"]),
            "carol": enrol(svc, "carol", ["gemandateerd-verantwoordelijke"])}
    cfg = svc.service.review.decisions.config
    required = list(state.evaluate(svc.case, config=cfg).definition.signoff_roles)
    roles = {"jurist": "anna", "privacy-officer": "bob", "gemandateerd-verantwoordelijke": "carol"}
    for i, role in enumerate(required):
        r = decide(svc, roles[role], keys[roles[role]], role=role)
        assert r.status_code == 201, r.text
        if i < len(required) - 1:  # a role still missing keeps the gate closed
            assert r.json()["status"] == "in_review"
            assert not gate.check(svc.case, ["inspecties"], config=cfg).allowed
    assert r.json()["status"] == "approved"
    assert gate.check(svc.case, ["inspecties"], config=cfg).allowed
    logged = [e for e in audit.entries(path=svc.log.path) if e["event"] == "approved"]
    assert [e["actor"] for e in logged] == [roles[r] for r in required]


def test_a_signature_over_other_content_is_refused(hub_case):
    svc = hub_case
    key = enrol(svc, "anna", ["jurist"])
    shown = payload(svc, "anna", kind="approve")
    forged = {**shown["payload"], "content_sha256": "0" * 64}
    canonical = json.dumps(forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body = {"purpose": "use", "kind": "approve", "payload": forged, "signature": key.sign(canonical)}
    r = svc.client("tok-anna").post("api/cases/ce-risico/decisions", json=body)
    assert r.status_code == 409
    assert "de ondertekende inhoud wijkt af van wat u is getoond" in r.json()["error"]
    assert "content_sha256" in r.json()["error"]
    # a signature that is not over the payload sent
    body = {"purpose": "use", "kind": "approve", "payload": shown["payload"], "signature": key.sign(canonical)}
    r = svc.client("tok-anna").post("api/cases/ce-risico/decisions", json=body)
    assert r.status_code == 403 and "handtekening klopt niet" in r.json()["error"]
    assert not [e for e in audit.entries(path=svc.log.path) if e["event"] == "approved"]


def test_not_enrolled_pending_and_revoked_are_refused(hub_case):
    svc = hub_case
    r = svc.client("tok-bob").get("api/cases/ce-risico/decisions/payload", params={"purpose": "use"})
    assert r.status_code == 403 and "niet als beoordelaar aangemeld" in r.json()["error"]
    stranger = Key()
    body = {"purpose": "use", "kind": "approve", "signature": stranger.sign("x"),
            "payload": {"reviewer": "bob", "public_key": stranger.public}}
    r = svc.client("tok-bob").post("api/cases/ce-risico/decisions", json=body)
    assert r.status_code == 403 and "niet als beoordelaar aangemeld" in r.json()["error"]
    enrol(svc, "bob", [])
    r = svc.client("tok-bob").get("api/cases/ce-risico/decisions/payload", params={"purpose": "use"})
    assert r.status_code == 403 and "wacht nog op goedkeuring" in r.json()["error"]
    key = enrol(svc, "anna", ["jurist"])
    shown = payload(svc, "anna", kind="approve")
    kid = svc.client("tok-anna").get("api/reviewers").json()["reviewers"][0]["keys"][0]["key_id"]
    r = svc.client("tok-anna").post(f"api/reviewers/anna/keys/{kid}/revoke", json={"reason": "laptop kwijt"})
    assert r.status_code == 200
    body = {"purpose": "use", "kind": "approve", "payload": shown["payload"], "signature": key.sign(shown["canonical"])}
    r = svc.client("tok-anna").post("api/cases/ce-risico/decisions", json=body)
    assert r.status_code == 403 and "ingetrokken" in r.json()["error"]
    # a signed payload naming someone else
    r = svc.client("tok-bob").post("api/cases/ce-risico/decisions", json=body)
    assert r.status_code == 403 and "noemt 'anna'" in r.json()["error"]


def test_a_reviewer_who_answered_items_is_refused(hub_case):
    svc = hub_case
    key = enrol(svc, "pim", ["jurist"])
    r = decide(svc, "pim", key, role="jurist")
    assert r.status_code == 403
    assert "items beantwoord" in r.json()["error"] and "vier-ogen" in r.json()["error"]
    # the service's own log counts too: anna answered through the service (hub identity)
    r = svc.client("tok-anna").post("api/audit", json={"event": "answered", "case_id": "ce-risico"})
    assert r.status_code == 201
    key = enrol(svc, "anna", ["jurist"])
    r = decide(svc, "anna", key, role="jurist")
    assert r.status_code == 403 and "vier-ogen" in r.json()["error"]


def test_reject_needs_a_reason_and_the_data_scientist_sees_it(hub_case):
    svc = hub_case
    key = enrol(svc, "anna", ["jurist"])
    r = decide(svc, "anna", key, kind="reject")
    assert r.status_code == 400 and "reden" in r.json()["error"]
    r = decide(svc, "anna", key, kind="reject", reason="De grondslag ontbreekt bij de profilering.")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "rejected"
    st = state.evaluate(svc.case, config=svc.service.review.decisions.config)
    assert any("De grondslag ontbreekt" in x for x in st.reasons)


def test_not_a_member_of_the_case_gets_the_same_answer_as_no_case(hub_case):
    svc = hub_case
    enrol(svc, "eve", [])
    a = svc.client("tok-eve").get("api/cases/ce-risico/decisions/payload", params={"purpose": "use"})
    b = svc.client("tok-eve").get("api/cases/nope/decisions/payload", params={"purpose": "use"})
    assert a.status_code == b.status_code == 403
    assert a.json()["error"].replace("ce-risico", "X") == b.json()["error"].replace("nope", "X")


def test_hub_trust_ignores_the_users_own_registry_file(hub_case, idsp_home):
    """On the hub the registry comes from the service; a reviewers.yaml in the home is ignored."""
    svc = hub_case
    mine = reviewers.keygen(idsp_home / "k.pem")
    reviewers.register("pim", ["jurist"], mine.public_key, actor="pim")  # self-made reviewer
    cfg = svc.service.review.decisions.config
    assert reviewers.load_registry(cfg).by_username("pim") is None
    assert reviewers.load_registry().by_username("pim") is not None  # off the hub: the file


def _cookie(svc, token: str) -> dict[str, str]:
    """The service's own login cookie after the hub's OAuth, as the browser holds it."""
    from tornado.web import create_signed_value

    name = svc.service.hub_auth.cookie_name
    return {name: create_signed_value(b"x" * 32, name, token).decode()}


def test_a_browser_post_without_the_xsrf_token_is_refused(hub_case):
    svc = hub_case
    key = Key()
    body = {"public_key": key.public, "source": "webcrypto"}
    with svc.client() as c:
        c.cookies.update(_cookie(svc, "tok-anna"))
        assert c.get("api/whoami").json()["name"] == "anna"  # the cookie is a login for reading
        r = c.post("api/reviewers/enrol", json=body)
        assert r.status_code == 401 and "no hub identity" in r.json()["error"]
        # a token the page did not issue is no better
        r = c.post("api/reviewers/enrol", json=body, headers={"X-XSRFToken": "2|abc|def|123"})
        assert r.status_code == 401
    assert svc.client("tok-anna").get("api/reviewers").json() == {"reviewers": []}


def test_a_user_servers_gate_reads_registry_and_decisions_from_the_service(hub_case, monkeypatch):
    """As in pim's JupyterLab on the hub: the gate asks the service (server token) for the
    registry and for the decisions it recorded; a reviewers.yaml in pim's home is ignored, and
    a decision the service could not write into the case folder still counts."""
    svc = hub_case
    cfg = svc.service.review.decisions.config
    required = list(state.evaluate(svc.case, config=cfg).definition.signoff_roles)
    people = {"jurist": "anna", "privacy-officer": "bob", "gemandateerd-verantwoordelijke": "carol",
              "ethicus": "dirk"}
    for role in required:
        key = enrol(svc, people[role], [role], admin="root" if people[role] != "root" else "dirk")
        assert decide(svc, people[role], key, role=role).status_code == 201
    stored = svc.client("tok-pim").get("api/cases/ce-risico/decisions").json()["decisions"]
    assert len(stored) == len(required)
    # the case folder's review.yaml loses them (as if the service could not write there)
    review = svc.case.root / "ethics" / "review.yaml"
    data = yaml.safe_load(review.read_text())
    data["decisions"] = []
    review.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-pim")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    monkeypatch.setenv("IDSP_SERVICE_URL", svc.url)
    mine = reviewers.keygen(Path(os.environ["IDSP_HOME"]) / "pim.pem")
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")
    reviewers.register("pim", ["jurist"], mine.public_key, actor="pim")  # pim's own file: ignored
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-pim")
    assert reviewers.load_registry().by_username("pim") is None
    decision = gate.check(svc.case, ["inspecties"])
    assert decision.allowed, decision.reasons


def test_idsp_ethics_approve_on_the_hub_goes_through_the_service_with_a_cli_key(hub_case, monkeypatch, idsp_home):
    """A CLI key file still works on the hub: enrolled with source cli, approved by an admin;
    the service builds the payload, the key file signs it, the service records it."""
    svc = hub_case
    pair = reviewers.keygen(idsp_home / "anna-cli.pem")
    r = svc.client("tok-anna").post("api/reviewers/enrol", json={"public_key": pair.public_key, "source": "cli"})
    assert r.status_code == 201
    assert svc.client("tok-root").post("api/reviewers/anna/approve", json={"roles": ["jurist"]}).status_code == 200
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-anna")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    monkeypatch.setenv("IDSP_SERVICE_URL", svc.url)
    signed = workflow.decide(svc.case, "approve", role="jurist", key_path=pair.path)
    logged = [e for e in audit.entries(path=svc.log.path) if e["event"] == "approved"]
    assert [(e["actor"], e["data"]["decision_id"], e["data"]["source"]) for e in logged] == [
        ("anna", signed.id, "cli")]
    assert state.evaluate(svc.case).signed_roles.get("jurist") == "anna"
