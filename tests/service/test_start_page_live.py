"""The start page on a real hub, in Debian's Chromium: alice logs in through the hub's own
form, lands on /services/idsp/ and sees her case with its checklist status; the page loads
its styles under the strict CSP, is Dutch, has one <main>, and the keyboard reaches the
skip link first and then the menu in reading order. The hub's home links to the start page,
and shows the admin (only) how many sign-ups wait. Screenshots go to docs/img/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from idsp.case import Case
from idsp.config import load_config
from testkit.ethics import case_tree
from testkit.files import build_tree

from legal_ethics import checklist, init_checklist, workflow
from tests.hub.conftest import approved_user
from tests.service.test_service_live import _service_up, platform_home

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CASE = "ce-startpagina"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture(scope="module", autouse=True)
def start_case(hub_env):
    """Before the hub starts: a case of alice's with a real checklist, two questions
    answered by her (status "concept"), in the hub's case index."""
    platform_home(hub_env)
    shared = hub_env[1]
    tree = case_tree()
    spec = yaml.safe_load(tree["case.yaml"])
    spec.update(id=CASE, title="Risicoselectie speelgoed <kinderen>",
                members=[{"name": "Alice", "username": "alice", "role": "data-scientist"}])
    tree["case.yaml"] = yaml.safe_dump(spec, sort_keys=False)
    case = Case.open(build_tree(shared / "cases" / CASE, tree))
    config = load_config(environ={"IDSP_HOME": str(shared / "scratch")})  # not the hub's log
    init_checklist(case, actor="alice", config=config)
    items = [i for i in checklist.load_definition(case).items if i.answer_type == "text"][:2]
    workflow.answer_many(case, [{"key": i.key, "value": "Zie projectplan.", "rationale": "",
                                 "evidence": []} for i in items], actor="alice", config=config)
    index = shared / "index.yaml"
    data = yaml.safe_load(index.read_text())
    data["cases"].append({"id": CASE, "path": str(case.root), "title": spec["title"],
                          "zaaknummer": spec["zaaknummer"], "members": ["alice"]})
    index.write_text(yaml.safe_dump(data))
    return case


@pytest.fixture(scope="module")
def alice(hub, admin):
    user = approved_user(hub, admin, "alice")
    _service_up(hub)
    # Her first server start makes her OS account and gives it, and the service's account
    # (read only), the case folder's ACL entries: the service reads her checklist from then on.
    user.spawn(timeout=300)
    return user


def _browser(pw):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian chromium missing at {CHROMIUM}: run scripts/setup.sh")
    return pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def _login(browser, hub, name: str, password: str, next_path: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="nl-NL")
    page = ctx.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("favicon.ico") else None)
    page.goto(f"{hub.url}/hub/login?next={next_path}", timeout=60_000)
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    return page, problems


def test_alice_sees_her_case_and_its_status_on_the_start_page(hub, alice, admin):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page, problems = _login(browser, hub, "alice", alice.password, "/services/idsp/")
            page.wait_for_url("**/services/idsp/", timeout=60_000)
            expect(page.locator("#user")).to_have_text("alice")
            card = page.locator(f"#zaak-{CASE}")
            expect(card.locator("h3")).to_have_text("Risicoselectie speelgoed <kinderen>")  # text, not markup
            expect(card.locator(".idsp-status")).to_have_text("concept")
            expect(card).to_contain_text("ILT-2026-004512")
            expect(card).to_contain_text("data scientist")
            expect(card.get_by_role("link", name=f"Open {CASE} in JupyterLab")).to_have_attribute(
                "href", f"/user/alice/lab/tree/cases/{CASE}")
            expect(page.locator("#wacht")).to_contain_text("vragen nog te beantwoorden")
            assert page.locator("html").get_attribute("lang") == "nl"
            assert page.locator("main").count() == 1
            assert page.locator("#beheer").count() == 0  # alice is no admin
            # the style sheets came through the strict CSP: the menu is lint-blue
            colour = page.evaluate("getComputedStyle(document.querySelector('.idsp-nav')).backgroundColor")
            assert colour == "rgb(21, 66, 115)"
            IMG.mkdir(exist_ok=True)
            page.screenshot(path=str(IMG / "start-page.png"), full_page=True)
            # keyboard: skip link first, then the brand, the menu in reading order, logout
            order = []
            for _ in range(8):
                page.keyboard.press("Tab")
                order.append(page.evaluate("document.activeElement.textContent.trim().replace(/\\s+/g, ' ')"))
            assert order == ["Direct naar de inhoud", "IDSP Inspecties-DataSciencePlatform", "Start",
                             "Mijn zaken", "Te beoordelen", "MLflow", "Hub", "Uitloggen"], order
            page.keyboard.press("Shift+Tab")  # back to "Hub": the focus ring in the picture
            page.screenshot(path=str(IMG / "start-page-focus.png"))
            # the skip link takes the keyboard to the content
            page.reload()
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")
            assert page.evaluate("document.activeElement.id") == "inhoud"
            assert not problems, problems

            # the hub's home page points to the start page; no sign-up count for alice
            page.goto(f"{hub.url}/hub/home")
            expect(page.locator("#idsp-start")).to_have_attribute("href", "/services/idsp/")
            assert page.locator("#idsp-signups").count() == 0
        finally:
            browser.close()


def test_the_admin_sees_the_waiting_sign_up_on_the_hub_home_and_the_start_page(hub, alice, admin):
    from playwright.sync_api import expect, sync_playwright

    assert hub.user("dora").signup().status_code == 200  # signed up, not approved
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page, problems = _login(browser, hub, "admin", hub.admin_password(), "/hub/home")
            page.wait_for_url("**/hub/home", timeout=60_000)
            expect(page.locator("#idsp-signups")).to_contain_text("1 aanmelding wacht op goedkeuring")
            expect(page.locator("#idsp-signups a")).to_have_attribute("href", "/hub/authorize")
            page.screenshot(path=str(IMG / "hub-home-admin.png"))
            page.click("#idsp-start")
            page.wait_for_url("**/services/idsp/", timeout=60_000)
            expect(page.locator("#beheer")).to_contain_text("aanmeldingen bekijken en goedkeuren")
            expect(page.locator("#aanmeldingen")).to_have_attribute("href", "/hub/authorize")
            assert not problems, problems
        finally:
            browser.close()
