"""The review pages in Debian's Chromium (Playwright, headless) against the real service: the
reviewer makes a non-extractable Ed25519 key with WebCrypto and enrols, the admin approves
the enrolment on the admin page, the reviewer opens "Te beoordelen" and the checklist, sees
exactly what is signed, and signs in the browser; the real gate then counts the approval,
and keeps the case closed while another required role is still missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from legal_ethics import gate, state
from tests.service.test_review_api import _cookie, decide, enrol, served_case

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture
def hub_case(tmp_path, idsp_home, monkeypatch):
    yield from served_case(tmp_path, monkeypatch)


def _context(browser, svc, name: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="nl-NL")
    cookie = _cookie(svc, f"tok-{name}")
    ctx.add_cookies([{"name": k, "value": v, "url": svc.url} for k, v in cookie.items()])
    return ctx


def test_enrol_approve_and_sign_in_chromium(hub_case):
    from playwright.sync_api import expect, sync_playwright

    svc = hub_case
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian chromium missing at {CHROMIUM}: run scripts/setup.sh")
    cfg = svc.service.review.decisions.config
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            anna = _context(browser, svc, "anna").new_page()
            errors: list[str] = []
            anna.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            anna.on("pageerror", lambda e: errors.append(str(e)))
            anna.goto(svc.url + "review/enrol")
            expect(anna.locator("#key-state")).to_have_text("geen")
            anna.click("#enrol")
            expect(anna.locator("#enrol-result")).to_contain_text("Aangemeld met sleutel", timeout=15_000)
            # drawn again: her pending key is listed and the button no longer offers a first key
            expect(anna.locator("#my-keys")).to_contain_text("wacht op goedkeuring")
            expect(anna.locator("#enrol")).to_have_text("Vervang de sleutel in deze browser door een nieuwe")
            # the private key is a non-extractable CryptoKey in IndexedDB
            extractable = anna.evaluate("""async () => {
                const db = await new Promise(r => { const q = indexedDB.open('idsp-review', 1); q.onsuccess = () => r(q.result); });
                const rec = await new Promise(r => { const q = db.transaction('keys').objectStore('keys').get('anna'); q.onsuccess = () => r(q.result); });
                return [rec.privateKey.extractable, rec.privateKey.algorithm.name, rec.privateKey.type];
            }""")
            assert extractable == [False, "Ed25519", "private"]
            entry = svc.client("tok-anna").get("api/reviewers").json()["reviewers"][0]
            assert entry["keys"][0]["status"] == "pending" and entry["keys"][0]["source"] == "webcrypto"

            admin = _context(browser, svc, "root").new_page()
            admin.goto(svc.url + "review/admin")
            admin.check("#role-anna-jurist")
            admin.click("#approve-anna")
            expect(admin.locator("#admin-message")).to_contain_text("anna is goedgekeurd")

            anna.goto(svc.url + "review/")
            expect(anna.locator("#queue")).to_contain_text("ce-risico")
            IMG.mkdir(exist_ok=True)
            anna.screenshot(path=str(IMG / "review-queue.png"), full_page=True)
            anna.click("#queue a")
            anna.wait_for_url("**/review/ce-risico/use")
            anna.screenshot(path=str(IMG / "review-page.png"))
            anna.select_option("#role", "jurist")
            anna.click("#show-payload")
            expect(anna.locator("#payload-box")).to_be_visible()
            content = state.evaluate(svc.case, config=cfg).content_sha256
            expect(anna.locator("#payload-summary")).to_contain_text(content)
            expect(anna.locator("#payload-summary")).to_contain_text("goedkeuren")
            anna.locator("#payload-box h3").scroll_into_view_if_needed()
            anna.screenshot(path=str(IMG / "review-sign.png"))
            anna.click("#sign")
            expect(anna.locator("#decide-result")).to_contain_text("Vastgelegd", timeout=15_000)
            # the page is drawn again: her signature stands in the table of required signatures
            expect(anna.locator("#roles")).to_contain_text("anna")
            assert not errors, errors
        finally:
            browser.close()

    st = state.evaluate(svc.case, config=cfg)
    assert st.signed_roles.get("jurist") == "anna", st.reasons
    # another required role is still missing: the gate stays closed and says which
    decision = gate.check(svc.case, ["inspecties"], config=cfg)
    assert not decision.allowed and any("has not signed" in r for r in decision.reasons)
    others = {"privacy-officer": "bob", "gemandateerd-verantwoordelijke": "carol", "ethicus": "dirk"}
    for role in st.definition.signoff_roles:
        if role != "jurist":
            key = enrol(svc, others[role], [role], admin="root")
            assert decide(svc, others[role], key, role=role).status_code == 201
    assert gate.check(svc.case, ["inspecties"], config=cfg).allowed
