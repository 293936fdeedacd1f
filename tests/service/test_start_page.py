"""The start page and the service's page layout: statuses from real checklists, Dutch labels,
escaping, the admin block for admins only, and the layout's accessibility basics.

Checklists are made, answered, submitted and decided through legal_ethics's own API with
real reviewer keys (local mode: the registry and log of the test's own platform home).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from idsp.case import Case
from idsp.config import load_config
from idsp.service import pages
from idsp.service.overview import (
    INVALID,
    NO_TRUST,
    UNREADABLE,
    CaseStatus,
    CaseView,
    Overview,
    StartData,
)
from testkit.ethics import answer_all, approve_all, case_tree
from testkit.files import build_tree

from legal_ethics import init_checklist, reviewers, workflow

PREFIX = "/services/idsp/"
ALICE = {"name": "alice", "admin": False, "groups": []}
ROLES = {"alice": ["jurist"], "bob": ["privacy-officer"], "carol": ["gemandateerd-verantwoordelijke"]}


@pytest.fixture
def keys(tmp_path, idsp_home) -> dict[str, Path]:
    out = {}
    for user, roles in ROLES.items():
        pair = reviewers.keygen(tmp_path / "keys" / f"{user}.pem")
        reviewers.register(user, roles, pair.public_key, name=user.title(), actor="admin")
        out[user] = pair.path
    return out


@pytest.fixture
def make_case(tmp_path, idsp_home):
    def _make(case_id: str, title: str = "Risicoselectie CE-markering", checklist: bool = True) -> Case:
        tree = case_tree()
        tree["case.yaml"] = tree["case.yaml"].replace("id: ce-risico", f"id: {case_id}").replace(
            "title: Risicoselectie CE-markering", f"title: {title}"
        )
        case = Case.open(build_tree(tmp_path / "cases" / case_id, tree))
        if checklist:
            init_checklist(case, actor="pim")
        return case

    return _make


def _overview() -> Overview:
    config = load_config()
    return Overview(lambda: config)


def _entry(case: Case, **extra) -> dict:
    return {"id": case.id, "path": str(case.root), "title": case.spec.title,
            "zaaknummer": case.spec.zaaknummer, "case_type": case.spec.case_type, **extra}


# --- statuses, from the case's own files -------------------------------------------------


def test_a_new_checklist_is_concept_with_its_open_questions(make_case):
    case = make_case("ce-nieuw")
    st = _overview().status(case.root)
    assert st.key == "draft" and st.label == "concept"
    assert st.open_count == st.item_count > 0
    assert st.points == (f"{st.item_count} van de {st.item_count} vragen zijn nog niet beantwoord.",)
    assert len(st.open_items) == 5  # the first few titles, the rest counted


def test_submitted_approved_and_rejected_read_in_dutch_with_reasons(make_case, keys):
    ov = _overview()
    submitted = make_case("ce-ingediend")
    answer_all(submitted, only_blocking=True)
    workflow.submit(submitted, actor="pim", purpose="development")
    st = ov.status(submitted.root)
    assert st.key == "in_review" and st.label == "ingediend voor ontwikkeling"
    assert set(st.waiting_roles) == {"jurist", "privacy-officer", "gemandateerd-verantwoordelijke"}
    assert st.points[0].startswith("Wacht op ondertekening door: ") and "Jurist" in st.points[0]

    approved = make_case("ce-goed")
    answer_all(approved, only_blocking=True)
    workflow.submit(approved, actor="pim", purpose="development")
    approve_all(approved, keys)
    st = ov.status(approved.root)
    assert st.key == "approved:development" and st.label == "goedgekeurd voor ontwikkeling"
    assert st.css == "ontwikkeling" and st.points[0].startswith("Geldig tot ")
    assert "Jurist: alice" in st.signed

    rejected = make_case("ce-af")
    answer_all(rejected, only_blocking=True)
    workflow.submit(rejected, actor="pim")
    workflow.decide(rejected, "reject", role="jurist", key_path=keys["alice"], actor="alice",
                    comment="De grondslag voor profilering ontbreekt.")
    st = ov.status(rejected.root)
    assert st.key == "rejected" and st.label == "afgewezen" and st.css == "afgewezen"
    assert re.fullmatch(
        r"Afgewezen door alice \(Jurist\) op \d{4}-\d\d-\d\d: De grondslag voor profilering ontbreekt\.",
        st.points[0],
    )


def test_approved_for_use(make_case, keys):
    case = make_case("ce-gebruik")
    answer_all(case)
    workflow.submit(case, actor="pim", purpose="use")
    approve_all(case, keys)
    st = _overview().status(case.root)
    assert (st.key, st.label, st.css) == ("approved:use", "goedgekeurd voor gebruik", "gebruik")


def test_no_checklist_an_unreadable_folder_and_no_trust_each_say_so(make_case, tmp_path):
    bare = make_case("ce-kaal", checklist=False)
    assert _overview().status(bare.root).label == "geen checklist"
    gone = _overview().status(tmp_path / "cases" / "bestaat-niet")
    assert gone.label == "status nu niet leesbaar" and gone.points == (UNREADABLE,)
    (bare.root / "case.yaml").write_text("id: ce-kaal\n")  # no title, zaaknummer, ...: not valid
    invalid = _overview().status(bare.root)
    assert invalid.label == "status nu niet leesbaar" and invalid.points == (INVALID,)
    assert "invalid case file" in invalid.details[0] and "case.yaml" in invalid.details[0]
    untrusted = Overview(lambda: None).status(bare.root)
    assert untrusted.label == "status nu niet leesbaar" and untrusted.points == (NO_TRUST,)


def test_the_cache_follows_the_files(make_case):
    ov = _overview()
    case = make_case("ce-cache")
    first = ov.status(case.root)
    assert ov.status(case.root) is first  # nothing changed: the cached answer
    answer_all(case, only_blocking=True)
    again = ov.status(case.root)
    assert again is not first and again.open_count < first.open_count


def test_a_submitted_case_is_judged_again_only_when_its_own_trust_changes(make_case, keys):
    from legal_ethics import audit

    ov = _overview()
    draft = make_case("ce-blijft")
    submitted = make_case("ce-beoordeeld")
    answer_all(submitted, only_blocking=True)
    workflow.submit(submitted, actor="pim")
    first_draft, first_sub = ov.status(draft.root), ov.status(submitted.root)
    audit.append("answered", actor="daan", case_id="ce-ander", data={"item": "x"})  # another case
    assert ov.status(draft.root) is first_draft and ov.status(submitted.root) is first_sub
    workflow.decide(submitted, "reject", role="jurist", key_path=keys["alice"], actor="alice",
                    comment="Onvolledig.")  # its own event (and review.yaml)
    assert ov.status(submitted.root).key == "rejected"
    assert ov.status(draft.root) is first_draft  # a draft is judged without trust: untouched


def test_the_cache_outlives_a_restart_but_never_a_change(make_case, keys, tmp_path, monkeypatch):
    from idsp.service import overview as overview_module

    store = tmp_path / "state" / "start-page.json"
    store.parent.mkdir()
    config = load_config()
    draft, submitted = make_case("ce-bewaard"), make_case("ce-ingediend-bewaard")
    answer_all(submitted, only_blocking=True)
    workflow.submit(submitted, actor="pim")
    before = Overview(lambda: config, store=store)
    before.warm([_entry(draft), _entry(submitted)])
    assert oct(store.stat().st_mode & 0o777) == "0o600"

    judged = []
    real = overview_module.evaluate_case
    monkeypatch.setattr(overview_module, "evaluate_case", lambda p, c: judged.append(p.name) or real(p, c))
    after = Overview(lambda: config, store=store)  # a restarted service
    assert after.status(draft.root) == before.status(draft.root)
    assert after.status(submitted.root).key == "in_review"
    assert judged == []  # both from the saved cache
    workflow.decide(submitted, "reject", role="jurist", key_path=keys["alice"], actor="alice", comment="Nee.")
    assert after.status(submitted.root).key == "rejected" and judged == ["ce-ingediend-bewaard"]
    store.write_text("{not json")
    assert Overview(lambda: config, store=store).status(draft.root).key == "draft"  # judged again


def test_the_events_index_reads_only_new_lines_and_starts_over_on_a_new_log(tmp_path):
    from idsp.service.overview import CaseEvents

    log = tmp_path / "audit.jsonl"
    log.write_text('{"case_id": "a"}\n{"case_id": "b"}\n{"event": "reviewer.registered"}\n{"case_id": "a"')
    events = CaseEvents()
    assert dict(events.refresh(log)) == {"a": 1, "b": 1, None: 1}  # the unfinished line waits
    with log.open("a") as fh:
        fh.write('}\n')
    assert events.refresh(log)["a"] == 2
    log.unlink()
    log.write_text('{"case_id": "b"}\n')
    assert dict(events.refresh(log)) == {"b": 1}


# --- what awaits whom ---------------------------------------------------------------------


def test_what_awaits_the_member_the_lead_and_the_reviewer(make_case, keys):
    ov = _overview()
    draft = make_case("ce-concept")
    review = make_case("ce-review")
    answer_all(review, only_blocking=True)
    workflow.submit(review, actor="pim")
    rejected = make_case("ce-afgewezen")
    answer_all(rejected, only_blocking=True)
    workflow.submit(rejected, actor="pim")
    workflow.decide(rejected, "reject", role="privacy-officer", key_path=keys["bob"], actor="bob",
                    comment="Bewaartermijn onduidelijk.")
    cases = [_entry(draft, role="member"), _entry(review, role="member"), _entry(rejected, role="owner")]

    lead = ov.build("pim", cases, hub="/", prefix=PREFIX)
    kinds = {(w.kind, w.case_id) for w in lead.waiting}
    assert ("answer", "ce-concept") in kinds and ("rejected", "ce-afgewezen") in kinds
    assert "Bewaartermijn onduidelijk." in next(w.text for w in lead.waiting if w.kind == "rejected")
    assert [v.role for v in lead.cases] == ["lid", "lid", "projectleider (eigenaar)"]
    assert lead.cases[0].lab_url == "/user/pim/lab/tree/cases/ce-concept"

    # alice reviews as jurist: the submitted checklist awaits her, not the draft
    mine = ov.build("alice", [], hub="/", prefix=PREFIX, reviewer_roles=["jurist"], review_cases=cases)
    assert [(w.kind, w.case_id) for w in mine.waiting] == [("review", "ce-review")]
    assert "als Jurist" in mine.waiting[0].text and mine.waiting[0].href == PREFIX + "review/ce-review/use"
    # whoever answered the checklist is not asked to review it (four-eyes)
    assert ov.build("pim", [], hub="/", prefix=PREFIX, reviewer_roles=["jurist"], review_cases=cases).waiting == []
    # nor is a reviewer who already signed another role of it (one role per person)
    workflow.decide(review, "approve", role="privacy-officer", key_path=keys["bob"], actor="bob")
    both = ov.build("bob", [], hub="/", prefix=PREFIX, reviewer_roles=["jurist", "privacy-officer"],
                    review_cases=cases)
    assert both.waiting == []


# --- the page itself -----------------------------------------------------------------------


def _page(user=ALICE, cases=(), waiting=(), **extra) -> str:
    return pages.render(
        "start.html", user=user, prefix=PREFIX, title="Start", active="start",
        cases=list(cases), waiting=list(waiting), reviewer_roles=[], cases_problem="",
        pending_signups=None, audit_status="intact", audit_entries=3, xsrf_form_html="", **extra,
    )


def _view(title: str, status: CaseStatus) -> CaseView:
    return CaseView(id="ce-1", title=title, zaaknummer="ILT-2026-000001", case_type="algemeen",
                    role="lid", status=status, lab_url="/user/alice/lab/tree/cases/ce-1")


def test_a_case_title_with_script_is_text_and_labels_are_dutch():
    html = _page(cases=[_view("<script>alert('x')</script>", CaseStatus("draft", item_count=4, open_count=1))])
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    for label in ("Mijn zaken", "Wacht op mij", "Zaaknummer", "Soort zaak", "Mijn rol", "Checklist",
                  "3 van 4 vragen beantwoord", "Open ce-1 in JupyterLab", "Te beoordelen"):
        assert label in html
    assert 'data-status="draft">concept</span>' in html
    assert 'href="/user/alice/lab/tree/cases/ce-1"' in html


def test_a_name_from_the_hub_is_escaped_in_the_header_and_links():
    html = _page(user={"name": "a<b>\"c", "admin": False})
    assert 'Ingelogd als <strong id="user">a&lt;b&gt;&#34;c</strong>' in html
    assert 'href="/user/a%3Cb%3E%22c/lab"' in html


@pytest.mark.parametrize("key,label", [
    ("draft", "concept"), ("in_review", "ingediend voor gebruik"),
    ("approved:development", "goedgekeurd voor ontwikkeling"), ("approved:use", "goedgekeurd voor gebruik"),
    ("rejected", "afgewezen"), ("unreadable", "status nu niet leesbaar"),
])
def test_every_status_has_its_dutch_label_and_style(key, label):
    status = CaseStatus(key, purpose="use" if key == "in_review" else None)
    html = _page(cases=[_view("Zaak", status)])
    assert f'class="idsp-status idsp-status--{status.css}" data-status="{key}">{label}</span>' in html
    assert f".idsp-status--{status.css} " in (pages.STATIC / "idsp.css").read_text()


def test_the_admin_block_is_for_admins_only():
    assert 'id="beheer"' not in _page()
    admin = _page(user={"name": "root-admin", "admin": True})
    assert 'id="beheer"' in admin and 'href="/hub/authorize"' in admin and "(beheerder)" in admin
    counted = _page(user={"name": "root-admin", "admin": True}, **{})
    assert "aanmeldingen bekijken en goedkeuren" in counted


def test_the_layout_is_dutch_with_main_skip_link_and_one_current_menu_item():
    html = _page()
    assert html.startswith("<!doctype html>") and '<html lang="nl"' in html
    assert html.count("<main") == 1 and 'href="#inhoud"' in html and 'id="inhoud"' in html
    assert html.count('aria-current="page"') == 1
    assert re.search(r'aria-current="page">Start</a>', html)
    assert 'aria-label="Hoofdmenu"' in html
    for href in ("/services/idsp/review/", "/services/mlflow/", "/hub/home", "/hub/logout"):
        assert f'href="{href}"' in html
    assert "style=" not in html and "<script" not in html  # the CSP allows neither inline


def test_the_hub_root_follows_a_base_url():
    assert pages.hub_root("/idsp/services/idsp/") == "/idsp/"
    nav = {i.key: i.href for i in pages.navigation("/idsp/services/idsp/")}
    assert nav["mlflow"] == "/idsp/services/mlflow/" and nav["hub"] == "/idsp/hub/home"


def test_start_data_shape_is_what_the_template_reads():
    data = StartData(cases=[], waiting=[], reviewer_roles=())
    assert _page(cases=data.cases, waiting=data.waiting).count('id="wacht"') == 1


# --- served by the real app ------------------------------------------------------------------


def test_the_served_page_has_the_strict_csp_its_styles_and_dutch_errors(served):
    page = served.client("tok-alice").get("")
    assert page.status_code == 200 and page.headers["Content-Security-Policy"] == pages.CSP
    assert "'unsafe-inline'" not in pages.CSP
    css = served.client().get("static/idsp.css")  # no login needed for a style sheet
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    nlds = served.client().get("static/nlds/index.css")
    assert nlds.status_code == (200 if pages.nlds_available() else 404)
    for probe in ("static/../app.py", "static/%2E%2E/app.py", "static/..%2Fpages.css", "static/x.html"):
        assert served.client().get(probe).status_code in (403, 404), probe
    refused = served.client("tok-mallory").get("")
    assert refused.status_code == 403 and '<html lang="nl"' in refused.text
    assert "mallory mag de platformdienst niet gebruiken" in refused.text
