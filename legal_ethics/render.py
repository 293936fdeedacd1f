"""The checklist for people: Markdown and self-contained HTML, chosen from a small registry.

Rule: renderers only read a ``View`` (built once from the case files by ``view``) and
return text; the same View always gives the same bytes (the time of rendering is passed
in), so the output can be checked against golden files. HTML is one file with inline CSS,
no scripts and no external links except the official sources, readable offline. Every
value from a file is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from idsp.config import load_config

from legal_ethics import checklist, state
from legal_ethics.reviewers import role_label
from legal_ethics.schema import Answer, ChecklistItem
from legal_ethics.workflow import validity_days

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig

DECISION_NL = {"approve": "goedkeuring", "reject": "afwijzing", "revoke": "intrekking"}
STATUS_NL = {
    "none": "geen checklist", "draft": "concept", "in_review": "ter beoordeling", "approved": "goedgekeurd",
    "rejected": "afgewezen", "expired": "verlopen", "revoked": "ingetrokken",
}


@dataclass(frozen=True)
class View:
    case_id: str
    case_title: str
    zaaknummer: str
    inspectorates: tuple[str, ...]
    st: state.ChecklistState
    open_points: list[str]
    generated_at: datetime
    # How long an approval given now lasts (the case and platform may shorten the
    # checklist's own validity); None without a checklist.
    valid_days: int | None = None


def view(
    case: CaseFile, *, config: PlatformConfig | None = None, now: datetime | None = None,
    generated_at: datetime | None = None,
) -> View:
    st = state.evaluate(case, config=config, now=now)
    points = list(st.reasons)
    valid_days = None
    if st.definition is not None:
        definition, answers, _, _ = st.loaded()
        points += checklist.evidence_problems(case, answers)
        points += checklist.item_problems(case, definition, answers)
        valid_days = validity_days(case, definition, config or load_config())
    spec = case.spec
    return View(
        case_id=spec.id, case_title=spec.title, zaaknummer=spec.zaaknummer, inspectorates=spec.inspectorates,
        st=st, open_points=points, generated_at=generated_at or now or datetime.now().astimezone(),
        valid_days=valid_days,
    )


def _value(answer: Answer | None) -> str:
    if answer is None or answer.value is None:
        return "— (niet beantwoord)"
    if answer.value is True:
        return "ja"
    if answer.value is False:
        return "nee"
    if isinstance(answer.value, float):
        return f"{answer.value:g}"
    return str(answer.value)


def _sections(items: tuple[ChecklistItem, ...]) -> list[tuple[str, list[ChecklistItem]]]:
    out: dict[str, list[ChecklistItem]] = {}
    for item in items:
        out.setdefault(item.section or "Overig", []).append(item)
    return list(out.items())


PURPOSE_NL = {"development": "ontwikkeling", "use": "gebruik"}


def _purpose_line(st) -> str:
    """What the approval allows, in words for the status line."""
    if st.status == "approved":
        if st.purpose == "development":
            return ("goedgekeurd voor ontwikkeling: modellen bouwen en toetsen op echte data; "
                    "nog niet voor gebruik (punten van fase gebruik volgen uit die runs)")
        return "goedgekeurd voor gebruik"
    if st.submission is not None:
        return f"ingediend voor {PURPOSE_NL.get(st.submission.purpose, st.submission.purpose)}"
    return "nog niet ingediend"


def _signatures(v: View) -> list[dict[str, Any]]:
    rows = []
    counting = {d.decision.id for d in v.st.approvals}
    for verdict in v.st.verdicts:
        p = verdict.payload
        rows.append({
            "id": verdict.decision.id,
            "decision": DECISION_NL.get(str(p.get("decision")), str(p.get("decision")))
            + f" ({PURPOSE_NL.get(str(p.get('purpose', 'use')), p.get('purpose'))})",
            "role": role_label(str(p.get("role", verdict.decision.role))),
            "reviewer": p.get("reviewer", verdict.decision.reviewer),
            "at": str(p.get("at", ""))[:19].replace("T", " "),
            "expires": str(p.get("expires_at", ""))[:10] or "—",
            "comment": p.get("comment", ""),
            "valid": verdict.ok,
            "counts": verdict.decision.id in counting,
            "problem": verdict.problem or "",
        })
    return rows


def _bound(v: View) -> list[str]:
    """What the counting approvals bind, one line each (data versions, code, parameters)."""
    lines: list[str] = []
    for verdict in v.st.approvals:
        b = verdict.payload.get("bindings", {})
        parts = [f"{name} md5 {md5}" for name, md5 in sorted((b.get("data") or {}).items())]
        for key in ("code", "params"):
            if b.get(key):
                parts.append(f"{key} sha256 {b[key]}")
        line = "; ".join(parts) or "(no data, code or parameters bound)"
        if line not in lines:
            lines.append(line)
    return lines


# --- Markdown ------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return _md_text(text).replace("|", "\\|").replace("\n", " ")


def _md_text(text: str) -> str:
    # Markdown viewers treat <...> as HTML and would hide it.
    return str(text).replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(v: View) -> str:
    st, d = v.st, v.st.definition
    lines = [f"# {d.title if d else v.case_title}", ""]
    lines += [
        f"- Zaak: **{v.case_id}** ({v.zaaknummer}), {', '.join(v.inspectorates)}",
        f"- Status: **{STATUS_NL.get(st.status, st.status)}** ({st.status}); {_purpose_line(st)}",
        f"- Inhoudshash (sha256): `{st.content_sha256 or '-'}`",
    ]
    if d:
        lines += [
            f"- Checklist: `{d.id}` versie {d.version}, opgesteld {d.created.isoformat()}, geldigheid {v.valid_days} dagen",
            f"- Vereiste ondertekening: {', '.join(role_label(r) for r in d.signoff_roles)}",
        ]
    lines += [f"- Gegenereerd: {v.generated_at.isoformat(timespec='seconds')}", ""]
    if d and d.prescan:
        lines += ["## Pre-scan DPIA", ""]
        lines += [f"- DPIA: {d.prescan.get('dpia')}; DTIA: {d.prescan.get('dtia')}; IAMA: {d.prescan.get('iama')}; KIA: {d.prescan.get('kia')}"]
        lines += [f"- {b}" for b in d.prescan.get("because", [])]
        lines.append("")
    lines += ["## Ondertekening", ""]
    sigs = _signatures(v)
    if sigs:
        lines += ["| besluit | rol | beoordelaar | datum | verloopt | handtekening | telt mee | id |", "|---|---|---|---|---|---|---|---|"]
        for s in sigs:
            ok = "geldig" if s["valid"] else f"ONGELDIG: {_md_escape(s['problem'])}"
            lines.append(
                f"| {s['decision']} | {_md_escape(s['role'])} | {_md_escape(s['reviewer'])} | {s['at']} | {s['expires']} | "
                f"{ok} | {'ja' if s['counts'] else 'nee'} | `{s['id']}` |"
            )
    else:
        lines.append("Nog geen besluiten.")
    lines.append("")
    for bound in _bound(v):
        lines.append(f"Goedkeuring gebonden aan: {bound}  ")
    lines += ["", "## Openstaande punten", ""]
    lines += [f"- {_md_escape(p)}" for p in v.open_points] or ["Geen."]
    lines.append("")
    if d:
        answers = st.answers.answers if st.answers else {}
        for section, items in _sections(d.items):
            lines += [f"## {section}", ""]
            for item in items:
                lines += _md_item(item, answers.get(item.key))
    return "\n".join(lines).rstrip() + "\n"


def _md_item(item: ChecklistItem, answer: Answer | None) -> list[str]:
    flag = " — **blokkerend**" if item.blocking else ""
    flag += " — fase gebruik (volgt uit runs onder een goedkeuring voor ontwikkeling)" if item.phase == "use" else ""
    head = f"### {item.key}: {_md_text(item.title)}{flag}"
    out = [head, ""]
    if item.official_id:
        link = f" ([bron]({item.source_url}))" if item.source_url else ""
        out.append(f"Officieel id: `{item.official_id}`{link}  ")
    if item.text:
        out.append(f"{_md_text(item.text)}  ")
    if item.legal_refs:
        refs = "; ".join(f"[{r.act} {r.article}".rstrip() + f"]({r.url})" if r.url else f"{r.act} {r.article}".rstrip() for r in item.legal_refs)
        out.append(f"Wettelijk kader: {refs}  ")
    out.append(f"Waarom: {item.why}  ")
    out.append(f"Verantwoordelijk: {role_label(item.responsible_role)}; beoordelaars: {', '.join(role_label(r) for r in item.reviewer_roles)}  ")
    if item.metric:
        m = item.metric
        justify = f"; niet gehaald: rechtvaardiging vereist in `{m.justify_with}`" if m.justify_with else ""
        out.append(f"Metriek: `{m.path}` in `{m.artifact}` {m.op} {m.threshold:g}{justify}  ")
    out.append("")
    out.append(f"**Antwoord:** {_value(answer)}  ")
    if answer is not None:
        if answer.rationale:
            out.append(f"**Toelichting:** {_md_text(answer.rationale)}  ")
        out.append(f"Door {answer.author} op {answer.at.isoformat(timespec='seconds')}  ")
        for ev in answer.evidence:
            out.append(f"Bewijs: `{ev.path}` sha256 `{ev.sha256}`  ")
    out.append("")
    return out


# --- HTML ----------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6rem;border-bottom:3px solid #154273;padding-bottom:.3rem}h2{color:#154273;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#eef2f7}.item{border:1px solid #d5d5d5;border-radius:4px;padding:.6rem .9rem;margin:.8rem 0}
.item h3{font-size:1rem;margin:.2rem 0 .4rem}.blocking{color:#a00;font-weight:600}.meta{color:#555;font-size:.85rem}
.answer{background:#f6f8fa;padding:.4rem .6rem;border-left:3px solid #154273;margin-top:.4rem}
.bad{color:#a00;font-weight:600}.good{color:#176b1d;font-weight:600}code{font-size:.85em;word-break:break-all}
.status{display:inline-block;padding:.1rem .5rem;border-radius:3px;background:#154273;color:#fff}
@media print{body{margin:0;max-width:none}.item{break-inside:avoid}}
""".strip()


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _link(url: str | None, text: str) -> str:
    if url and url.startswith(("https://", "http://")):
        return f'<a href="{_e(url)}">{_e(text)}</a>'
    return _e(text)


def render_html(v: View) -> str:
    st, d = v.st, v.st.definition
    title = d.title if d else v.case_title
    p = [
        "<!DOCTYPE html>", '<html lang="nl">', "<head>", '<meta charset="utf-8">',
        f"<title>{_e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>", f"<h1>{_e(title)}</h1>",
        "<table>",
        f"<tr><th>Zaak</th><td>{_e(v.case_id)} ({_e(v.zaaknummer)}), {_e(', '.join(v.inspectorates))}</td></tr>",
        f'<tr><th>Status</th><td><span class="status">{_e(STATUS_NL.get(st.status, st.status))}</span> ({_e(st.status)}); {_e(_purpose_line(st))}</td></tr>',
        f"<tr><th>Inhoudshash (sha256)</th><td><code>{_e(st.content_sha256 or '-')}</code></td></tr>",
    ]
    if d:
        p += [
            f"<tr><th>Checklist</th><td><code>{_e(d.id)}</code> versie {_e(d.version)}, opgesteld {_e(d.created.isoformat())}, geldigheid {v.valid_days} dagen</td></tr>",
            f"<tr><th>Vereiste ondertekening</th><td>{_e(', '.join(role_label(r) for r in d.signoff_roles))}</td></tr>",
        ]
    p += [f"<tr><th>Gegenereerd</th><td>{_e(v.generated_at.isoformat(timespec='seconds'))}</td></tr>", "</table>"]
    if d and d.prescan:
        p += ["<h2>Pre-scan DPIA</h2>", "<ul>",
              f"<li>DPIA: {_e(d.prescan.get('dpia'))}; DTIA: {_e(d.prescan.get('dtia'))}; IAMA: {_e(d.prescan.get('iama'))}; KIA: {_e(d.prescan.get('kia'))}</li>"]
        p += [f"<li>{_e(b)}</li>" for b in d.prescan.get("because", [])]
        p.append("</ul>")
    p.append("<h2>Ondertekening</h2>")
    sigs = _signatures(v)
    if sigs:
        p.append("<table><tr><th>besluit</th><th>rol</th><th>beoordelaar</th><th>datum</th><th>verloopt</th><th>handtekening</th><th>telt mee</th><th>id</th></tr>")
        for s in sigs:
            ok = '<span class="good">geldig</span>' if s["valid"] else f'<span class="bad">ONGELDIG</span>: {_e(s["problem"])}'
            comment = f"<br><span class=\"meta\">{_e(s['comment'])}</span>" if s["comment"] else ""
            p.append(
                f"<tr><td>{_e(s['decision'])}{comment}</td><td>{_e(s['role'])}</td><td>{_e(s['reviewer'])}</td><td>{_e(s['at'])}</td>"
                f"<td>{_e(s['expires'])}</td><td>{ok}</td><td>{'ja' if s['counts'] else 'nee'}</td><td><code>{_e(s['id'])}</code></td></tr>"
            )
        p.append("</table>")
    else:
        p.append("<p>Nog geen besluiten.</p>")
    for bound in _bound(v):
        p.append(f'<p class="meta">Goedkeuring gebonden aan: <code>{_e(bound)}</code></p>')
    p.append("<h2>Openstaande punten</h2>")
    if v.open_points:
        p += ["<ul>", *[f"<li>{_e(x)}</li>" for x in v.open_points], "</ul>"]
    else:
        p.append("<p>Geen.</p>")
    if d:
        answers = st.answers.answers if st.answers else {}
        for section, items in _sections(d.items):
            p.append(f"<h2>{_e(section)}</h2>")
            for item in items:
                p += _html_item(item, answers.get(item.key))
    p += ["</body>", "</html>"]
    return "\n".join(p) + "\n"


def _html_item(item: ChecklistItem, answer: Answer | None) -> list[str]:
    flag = ' <span class="blocking">blokkerend</span>' if item.blocking else ""
    flag += ' <span class="meta">fase gebruik</span>' if item.phase == "use" else ""
    out = [f'<div class="item" id="{_e(item.key)}">', f"<h3><code>{_e(item.key)}</code> {_e(item.title)}{flag}</h3>"]
    if item.official_id:
        out.append(f'<div class="meta">Officieel id: <code>{_e(item.official_id)}</code> — {_link(item.source_url, "bron")}</div>')
    if item.text:
        out.append(f"<p>{_e(item.text)}</p>")
    if item.legal_refs:
        refs = "; ".join(_link(r.url, f"{r.act} {r.article}".rstrip()) for r in item.legal_refs)
        out.append(f'<div class="meta">Wettelijk kader: {refs}</div>')
    out.append(f'<div class="meta">Waarom: {_e(item.why)}. Verantwoordelijk: {_e(role_label(item.responsible_role))}; '
               f"beoordelaars: {_e(', '.join(role_label(r) for r in item.reviewer_roles))}</div>")
    if item.metric:
        m = item.metric
        justify = f"; niet gehaald: rechtvaardiging vereist in <code>{_e(m.justify_with)}</code>" if m.justify_with else ""
        out.append(f'<div class="meta">Metriek: <code>{_e(m.path)}</code> in <code>{_e(m.artifact)}</code> {_e(m.op)} {m.threshold:g}{justify}</div>')
    out.append(f'<div class="answer"><strong>Antwoord:</strong> {_e(_value(answer))}')
    if answer is not None:
        if answer.rationale:
            out.append(f"<br><strong>Toelichting:</strong> {_e(answer.rationale)}")
        out.append(f'<br><span class="meta">Door {_e(answer.author)} op {_e(answer.at.isoformat(timespec="seconds"))}</span>')
        for ev in answer.evidence:
            out.append(f'<br><span class="meta">Bewijs: <code>{_e(ev.path)}</code> sha256 <code>{_e(ev.sha256)}</code></span>')
    out += ["</div>", "</div>"]
    return out


RENDERERS: dict[str, Callable[[View], str]] = {"md": render_markdown, "html": render_html}
EXTENSIONS = {"md": ".md", "html": ".html"}
