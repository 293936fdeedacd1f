"""The review pages over HTTP with the service's own login cookie (as a browser after the
hub's OAuth): what a reviewer sees, evidence served safely, and the XSRF token the pages
hand to their script."""

from __future__ import annotations

import re

import pytest

from tests.service.test_review_api import _cookie, decide, enrol, served_case


@pytest.fixture
def hub_case(tmp_path, idsp_home, monkeypatch):
    yield from served_case(tmp_path, monkeypatch)


def browser(svc, name: str):
    c = svc.client()
    c.cookies.update(_cookie(svc, f"tok-{name}"))
    return c


def test_the_queue_lists_what_awaits_my_role(hub_case):
    svc = hub_case
    enrol(svc, "anna", ["jurist"])
    with browser(svc, "anna") as c:
        r = c.get("review/")
    assert r.status_code == 200, r.text
    assert 'id="queue"' in r.text and "ce-risico" in r.text and "gebruik" in r.text and "ILT" in r.text
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    with browser(svc, "bob") as c:  # not enrolled
        assert "nog niet aangemeld" in c.get("review/").text
    enrol(svc, "carol", [])
    with browser(svc, "carol") as c:
        assert "wacht op goedkeuring" in c.get("review/").text


def test_the_review_page_shows_items_evidence_changes_and_the_decision_form(hub_case):
    svc = hub_case
    enrol(svc, "anna", ["jurist"])
    with browser(svc, "anna") as c:
        r = c.get("review/ce-risico/use")
    assert r.status_code == 200, r.text
    page = r.text
    for words in ("Vereiste handtekeningen", "Wat is er veranderd", "alles is nieuw", "Uitkomst pre-scan DPIA",
                  'id="decide-form"', "Officieel id", "reports/fairness.json", "Door pim", "selection_rate",
                  'src="/services/idsp/static/review.js"', 'name="idsp-xsrf"',
                  "heeft nog niet ondertekend"):  # the gate's reasons in Dutch
        assert words in page, words
    assert "<script>" not in page  # no inline script under the CSP
    with browser(svc, "eve") as c:  # not a member: the same as a case that does not exist
        assert c.get("review/ce-risico/use").status_code == c.get("review/zzz-none/use").status_code == 404


def test_evidence_is_served_from_inside_the_case_only_and_sandboxed(hub_case, tmp_path):
    svc = hub_case
    (tmp_path / "outside.txt").write_text("geheim")
    (svc.case.root / "docs" / "link.txt").symlink_to(tmp_path / "outside.txt")
    (svc.case.root / "docs" / "x.html").write_text("<script>alert(1)</script>")
    with browser(svc, "anna") as c:
        r = c.get("review/ce-risico/file/reports/fairness.json")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        r = c.get("review/ce-risico/file/docs/x.html")
        assert r.headers["Content-Security-Policy"].startswith("sandbox")
        for path in ("docs/link.txt", "../../outside.txt", "docs/%2e%2e/%2e%2e/outside.txt", "nope.txt"):
            r = c.get(f"review/ce-risico/file/{path}")
            assert r.status_code == 404 and "geheim" not in r.text, path


def test_with_the_pages_xsrf_token_the_browser_post_is_accepted(hub_case):
    svc = hub_case
    from tests.service.test_review_api import Key

    with browser(svc, "anna") as c:
        page = c.get("review/enrol")
        token = re.search(r'name="idsp-xsrf" content="([^"]+)"', page.text).group(1)
        key = Key()
        r = c.post("api/reviewers/enrol", json={"public_key": key.public, "source": "webcrypto"},
                   headers={"X-XSRFToken": token})
        assert r.status_code == 201, r.text
        assert r.json()["username"] == "anna"


def test_the_admin_page_approves_with_the_form(hub_case):
    svc = hub_case
    enrol(svc, "anna", [])
    with browser(svc, "root") as c:
        page = c.get("review/admin")
        assert page.status_code == 200 and "anna" in page.text
        token = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        kid = re.search(r'name="key_id" value="([^"]+)"', page.text).group(1)
        r = c.post("review/admin", data={"_xsrf": token, "name": "anna", "key_id": kid, "roles": ["jurist"]})
        assert r.status_code == 302
        origin = svc.url.split("/services/")[0]
        assert "anna is goedgekeurd" in c.get(origin + r.headers["Location"]).text
    with browser(svc, "bob") as c:
        assert c.get("review/admin").status_code == 403
    assert svc.client("tok-anna").get("api/reviewers").json()["reviewers"][0]["roles"] == ["jurist"]


@pytest.mark.parametrize("kind", ["reject"])
def test_a_rejection_shows_on_the_page(hub_case, kind):
    svc = hub_case
    key = enrol(svc, "anna", ["jurist"])
    assert decide(svc, "anna", key, kind=kind, reason="Bewijs ontbreekt.").status_code == 201
    with browser(svc, "anna") as c:
        page = c.get("review/ce-risico/use").text
    assert "afgewezen" in page and "Afgewezen door anna (Jurist)" in page and "Bewijs ontbreekt." in page
