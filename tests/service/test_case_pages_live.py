"""The case pages on a real hub, in Debian's Chromium: lena (project lead) logs in through the
hub's own form, makes a case with the form "Nieuwe zaak" on "Mijn zaken", lands on the case's
page, and adds daan there; daan's server was running before and reads the case folder within
2 s of her click, without a respawn. The page loads under the strict CSP with no failed
request. The screenshot goes to docs/img/case-page.png.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.hub.conftest import approved_user
from tests.service.test_service_live import _service_up, platform_home
from tests.service.test_start_page_live import IMG, _browser, _login

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CASE = "ce-via-pagina-1"


@pytest.fixture(scope="module", autouse=True)
def platform(hub_env):
    return platform_home(hub_env)[0]


@pytest.fixture(scope="module")
def people(hub, admin):
    users = {name: approved_user(hub, admin, name) for name in ("lena", "daan")}
    r = admin.api("POST", "/groups/projectleiders")
    assert r.status_code in (201, 409), r.text
    admin.add_to_group("projectleiders", ["lena"])
    _service_up(hub)
    hub.wait_tracking()
    for user in users.values():
        user.spawn(timeout=300)
    return users


PROBE = f"""
import json, os, pathlib
case = pathlib.Path.home() / "cases" / {CASE!r}
try:
    print(json.dumps({{"read": len((case / "case.yaml").read_text()) > 0}}))
except OSError as exc:
    print(json.dumps({{"read": False, "why": type(exc).__name__}}))
"""


def _reads(daan, kernel) -> bool:
    out = daan.execute(kernel, PROBE)
    assert out["status"] == "ok", out
    return json.loads(out["stdout"].strip().splitlines()[-1])["read"]


def test_the_lead_makes_a_case_on_the_page_and_a_running_member_reads_it_at_once(hub, people):
    from playwright.sync_api import expect, sync_playwright

    lena, daan = people["lena"], people["daan"]
    kernel = daan.start_kernel()  # daan's server runs from before the case exists
    assert _reads(daan, kernel) is False
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page, problems = _login(browser, hub, "lena", lena.password, "/services/idsp/cases/")
            page.wait_for_url("**/services/idsp/cases/", timeout=60_000)
            expect(page.locator("#user")).to_have_text("lena")
            expect(page.get_by_role("heading", name="Nieuwe zaak")).to_be_visible()
            page.get_by_label("Zaak-id").fill(CASE)
            page.get_by_label("Titel").fill("Bruggen <onderhoud> via de pagina")
            page.get_by_label("Zaaknummer").fill("ILT-2026-000901")
            page.get_by_label("Soort zaak").select_option("generic")
            page.get_by_label("Inspectie").select_option("ILT")
            # what the progress line says while the service works (the tab keeps sessionStorage)
            page.evaluate("""() => new MutationObserver(() => sessionStorage.setItem('bezig',
                document.getElementById('bezig').textContent)).observe(document.getElementById('bezig'),
                {childList: true, characterData: true, subtree: true})""")
            t0 = time.monotonic()
            page.click("#maak-zaak")
            page.wait_for_url(
                re.compile(rf"/services/idsp/cases/{CASE}\?melding="), timeout=300_000
            )
            print(f"\ncase made on the page: {time.monotonic() - t0:.2f} s")
            expect(page.locator("#melding")).to_contain_text(f"Zaak {CASE} is gemaakt")
            assert "de zaak wordt gemaakt" in page.evaluate("sessionStorage.getItem('bezig')")
            expect(page.locator("#titel")).to_have_text(
                "Bruggen <onderhoud> via de pagina"
            )  # text, not markup
            expect(page.locator("#map")).to_have_attribute(
                "href", f"/user/lena/lab/tree/cases/{CASE}"
            )
            expect(page.locator("#lid-lena")).to_contain_text("eigenaar")

            page.get_by_label("Lid toevoegen").fill("daan")
            t0 = time.monotonic()
            page.click("#voeg-toe")
            expect(page.locator("#melding")).to_contain_text("daan is toegevoegd")
            readable = _reads(daan, kernel)
            seconds = time.monotonic() - t0
            print(
                f"member added on the page -> daan's running kernel reads the case: {seconds:.2f} s"
            )
            assert readable is True and seconds < 2.0
            expect(page.locator("#lid-daan")).to_contain_text("lid")
            IMG.mkdir(exist_ok=True)
            page.screenshot(path=str(IMG / "case-page.png"), full_page=True)

            # removal asks first; the second step takes his access away at once
            page.click("#verwijder-daan")
            expect(page.locator("#bevestig-daan")).to_have_text(f"Ja, verwijder daan uit {CASE}")
            page.click("#bevestig-daan")
            expect(page.locator("#melding")).to_contain_text("daan is verwijderd")
            assert _reads(daan, kernel) is False
            assert page.locator("#lid-daan").count() == 0
            assert not problems, problems
        finally:
            browser.close()
    # daan, no longer a member, gets the same answer as for a case that does not exist
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page, _ = _login(browser, hub, "daan", daan.password, f"/services/idsp/cases/{CASE}")
            page.wait_for_url(f"**/services/idsp/cases/{CASE}", timeout=60_000)
            expect(page.locator("#error")).to_have_text(
                f"Zaak {CASE} is niet een van uw zaken, of bestaat niet."
            )
            assert Path(IMG / "case-page.png").stat().st_size > 10_000
        finally:
            browser.close()
