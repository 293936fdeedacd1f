"""The review on a real hub, in Debian's Chromium: a reviewer who never opens a terminal.

A project lead makes a case from her server; the data scientist answers and submits the
checklist for development in his. The jurist logs in to the hub in Chromium, enrols (a
WebCrypto key that never leaves her browser), the admin approves the enrolment through the
service's API, the jurist rejects with a reason (the data scientist sees it with
`idsp ethics status`), he submits again, she approves in the browser; with a second required
role still missing `idsp ethics verify` in his server stays closed, and when every role has
signed it opens. A hub admin's token gets 403 on another user's server.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import httpx
import pytest

from tests.hub.conftest import approved_user
from tests.service.test_service_cases_live import _api, _cli, _token
from tests.service.test_service_live import _service_up, platform_home

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CASE = "ce-review-live-1"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

PREPARE = r'''
import hashlib, json, pathlib, yaml
from idsp.case import Case
from legal_ethics import checklist, init_checklist, workflow
root = pathlib.Path.home() / "cases" / CASE
spec = yaml.safe_load((root / "case.yaml").read_text())
spec["profile"] = {"personal_data": True, "risk_profiling": "companies", "ai_act_risk": "minimal"}
spec["datasets"] = [{"name": "inspecties", "path": "data/inspecties.csv", "personal_data": True, "synthetic": False}]
(root / "case.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
data = "kvk_pseudo,product,uitkomst\nP001,speelgoed,1\nP002,lader,0\n"
(root / "data").mkdir(exist_ok=True)
(root / "data" / "inspecties.csv").write_text(data)
md5 = hashlib.md5(data.encode()).hexdigest()
(root / "data" / "inspecties.csv.dvc").write_text(f"outs:\n- md5: {md5}\n  size: {len(data)}\n  path: inspecties.csv\n")
for rel, text in {"docs/dpia.md": "# DPIA\n", "docs/rechtvaardiging.md": "# Rechtvaardigingstoets\n",
                  "reports/fairness.json": '{"selection_rate": {"ratio": 0.91}}'}.items():
    (root / rel).parent.mkdir(exist_ok=True)
    (root / rel).write_text(text)
EVIDENCE = {"biasanalyse-rapport": "reports/fairness.json", "rechtvaardigingstoets": "docs/rechtvaardiging.md",
            "discriminatieprotocol": "docs/rechtvaardiging.md", "DPIA-document": "docs/dpia.md"}
case = Case.open(root)
init_checklist(case, force=True)
defn = checklist.load_definition(case)
def value(item):
    if item.answer_type == "choice":
        return item.pass_values[0] if item.pass_values else item.options[0]
    if item.answer_type == "yes_no":
        return "yes" if item.expected is not False else "no"
    if item.answer_type == "number":
        return str(item.minimum if item.minimum is not None else 1)
    if item.answer_type == "date":
        return "2026-01-31"
    return "Beschreven in het projectplan, paragraaf 2."
later = checklist.use_items(defn)
entries = [{"key": i.key, "value": value(i), "rationale": "Zie bewijs.",
            "evidence": [EVIDENCE[e] for e in i.required_evidence]}
           for i in defn.items if i.blocking and i.key not in later and i.answer_type != "metric_check"]
workflow.answer_many(case, entries)
sub = workflow.submit(case, purpose="development")
print(json.dumps({"roles": list(defn.signoff_roles), "submission": sub.id}))
'''


@pytest.fixture(scope="module", autouse=True)
def platform(hub_env):
    return platform_home(hub_env)


@pytest.fixture(scope="module")
def people(hub, admin):
    users = {name: approved_user(hub, admin, name) for name in ("lena", "daan", "anna", "bob", "carol")}
    r = admin.api("POST", "/groups/projectleiders")
    assert r.status_code in (201, 409), r.text
    admin.add_to_group("projectleiders", ["lena"])
    _service_up(hub)
    hub.wait_tracking()
    for name in ("lena", "daan"):
        users[name].spawn()
    return users


@pytest.fixture(scope="module")
def submitted(hub, people):
    done = _cli(people["lena"], "case", "new", CASE, "--type", "generic", "--json",
                "--data", "zaaknummer=ILT-2026-000791", "--data", "title=Beoordeling in de browser")  # fmt: skip
    assert done["rc"] == 0, done
    lena = _token(people["lena"])
    for name in ("daan", "anna", "bob", "carol"):
        r = _api(hub, lena, "POST", f"api/cases/{CASE}/members", json={"user": name})
        assert r.status_code == 201, r.text
    out = people["daan"].run(PREPARE.replace("CASE", repr(CASE)))
    assert out["status"] == "ok", out
    return json.loads(out["stdout"].strip().splitlines()[-1])


def _case(hub) -> str:
    return str(Path(hub.env["IDSP_PATHS__CASES_ROOT"]) / CASE)


def _key_pair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, base64.b64encode(raw).decode()


def _browser_login(pw, hub, user):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="nl-NL")
    page.goto(f"{hub.url}/hub/login", timeout=60_000)
    page.fill("#username_input", user.name)
    page.fill("#password_input", user.password)
    page.click("#login_submit")
    page.wait_for_url("**/hub/**", timeout=60_000)
    return browser, page


def _sign_in_page(page, hub, kind: str, role: str, reason: str = "") -> str:
    from playwright.sync_api import expect

    page.goto(f"{hub.url}/services/idsp/review/{CASE}/development", timeout=60_000)
    page.check(f"#kind-{kind}")
    page.select_option("#role", role)
    if reason:
        page.fill("#reason", reason)
    page.click("#show-payload")
    expect(page.locator("#payload-box")).to_be_visible(timeout=30_000)
    page.click("#sign")
    expect(page.locator("#decide-result")).to_contain_text("Vastgelegd", timeout=30_000)
    return page.locator("#decide-result").inner_text()


def test_a_reviewer_enrols_rejects_and_approves_in_chromium_and_the_gate_follows(hub, admin, people, submitted):
    from playwright.sync_api import expect, sync_playwright

    roles = submitted["roles"]
    assert "jurist" in roles and len(roles) >= 2
    admin_token = _token(admin)
    with sync_playwright() as pw:
        browser, page = _browser_login(pw, hub, people["anna"])
        try:
            page.goto(f"{hub.url}/services/idsp/review/enrol", timeout=60_000)
            page.click("#enrol")
            expect(page.locator("#enrol-result")).to_contain_text("Aangemeld met sleutel", timeout=30_000)
            r = _api(hub, admin_token, "POST", "api/reviewers/anna/approve", json={"roles": ["jurist"]})
            assert r.status_code == 200, r.text
            page.goto(f"{hub.url}/services/idsp/review/", timeout=60_000)
            expect(page.locator("#queue")).to_contain_text(CASE)
            # reject with a reason: the data scientist sees it
            _sign_in_page(page, hub, "reject", "jurist", "De DPIA is niet ondertekend door de FG.")
            status = _cli(people["daan"], "ethics", "status", "--case", _case(hub))
            text = status["out"] + status["err"]
            assert "De DPIA is niet ondertekend door de FG." in text, status
            again = people["daan"].run(
                "import pathlib\nfrom idsp.case import Case\nfrom legal_ethics import workflow\n"
                f"workflow.submit(Case.open(pathlib.Path.home() / 'cases' / {CASE!r}), purpose='development')\n"
            )
            assert again["status"] == "ok", again
            _sign_in_page(page, hub, "approve", "jurist")
        finally:
            browser.close()
    # a second required role is still missing: the gate in daan's server stays closed
    closed = _cli(people["daan"], "ethics", "verify", "--purpose", "development", "--case", _case(hub))
    assert closed["rc"] == 1, closed
    # the other roles sign through the API with their own enrolled keys
    from legal_ethics.canonical import canonical_json

    for name, role in zip(("bob", "carol"), [r for r in roles if r != "jurist"], strict=False):
        key, public = _key_pair()
        token = _token(people[name])
        assert _api(hub, token, "POST", "api/reviewers/enrol", json={"public_key": public, "source": "cli"}).status_code == 201
        assert _api(hub, admin_token, "POST", f"api/reviewers/{name}/approve", json={"roles": [role]}).status_code == 200
        shown = _api(hub, token, "GET", f"api/cases/{CASE}/decisions/payload",
                     params={"purpose": "development", "kind": "approve", "role": role}).json()  # fmt: skip
        assert "payload" in shown, shown
        signature = base64.b64encode(key.sign(canonical_json(shown["payload"]))).decode()
        r = _api(hub, token, "POST", f"api/cases/{CASE}/decisions", json={
            "purpose": "development", "kind": "approve", "payload": shown["payload"], "signature": signature})
        assert r.status_code == 201, r.text
    opened = _cli(people["daan"], "ethics", "verify", "--purpose", "development", "--case", _case(hub))
    assert opened["rc"] == 0, opened


def test_a_decision_post_without_xsrf_or_with_a_forged_signature_is_refused(hub, people, submitted):
    token = _token(people["carol"])
    # a browser session without the XSRF token has no identity for a POST
    carol = people["carol"]
    carol.http.get(f"{hub.url}/services/idsp/review/", follow_redirects=True)
    r = carol.http.post(f"{hub.url}/services/idsp/api/reviewers/enrol", json={"public_key": "x", "source": "cli"})
    assert r.status_code == 401
    shown = _api(hub, _token(people["daan"]), "GET", f"api/cases/{CASE}/decisions/payload",
                 params={"purpose": "development"})  # fmt: skip
    assert shown.status_code == 403 and "niet als beoordelaar aangemeld" in shown.json()["error"]
    assert token


def test_an_admins_token_gets_403_on_another_users_server(hub, admin, people):
    token = _token(admin)
    r = httpx.get(f"{hub.url}/user/daan/api/status", headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    own = httpx.get(f"{hub.url}/user/daan/api/status",
                    headers={"Authorization": f"token {_token(people['daan'])}"}, timeout=30)  # fmt: skip
    assert own.status_code == 200
    # nor with the admin's browser session: the hub's OAuth to daan's server never hands the
    # admin a login that daan's server accepts (at most the hub's own "authorize" page)
    r = admin.http.get(f"{hub.url}/user/daan/lab", follow_redirects=True)
    served = r.status_code == 200 and r.url.path.startswith("/user/daan/")
    assert not served and not re.search(r"jp-main-dock-panel|JupyterLab", r.text), (r.status_code, str(r.url))
    print(f"\nadmin's browser at /user/daan/lab ends at {r.status_code} {r.url.path}")
    if r.url.path.endswith("/oauth2/authorize"):  # the admin clicks "Authorize": still refused
        found = re.findall(r'<input type="hidden" name="(_xsrf|scopes)" value="([^"]*)"', r.text)
        assert found, r.text[:500]
        form: dict[str, list[str]] = {}
        for name, value in found:
            form.setdefault(name, []).append(html.unescape(value))
        done = admin.http.post(str(r.url), data=form, follow_redirects=True)
        assert not (done.status_code == 200 and done.url.path.startswith("/user/daan/")), (
            done.status_code, str(done.url))
        assert done.status_code == 403, (done.status_code, str(done.url), done.text[:300])
        print(f"after 'Authorize': {done.status_code} {done.url.path}")
