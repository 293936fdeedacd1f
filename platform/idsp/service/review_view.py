"""What the review pages show: the queue of a reviewer and one checklist, read from the case.

Rule: this module only reads (the case's checklist through ``legal_ethics.render.view`` and
``legal_ethics.state``, the service's own log for who answered what and when) and returns
plain data for the templates; nothing here decides or writes. "Wat is er veranderd" compares
the checklist now with the last approval that was signed for it (its signed item hashes,
evidence hashes and data bindings), or, without one, says that everything is new. An
evidence file is offered only if it lies inside the case folder (no link out of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idsp.case_file import CaseFile
from legal_ethics import audit, checklist, render
from legal_ethics import bindings as _bindings
from legal_ethics.reviewers import role_label
from legal_ethics.schema import Answer, ChecklistItem

INSTRUMENT_NL = {
    "ak": "Algoritmekader", "iama": "IAMA", "iama-v1": "IAMA (versie 1)", "dpia": "DPIA (Rijksmodel)",
    "prescan": "Pre-scan DPIA", "aiact": "AI-verordening", "profiling": "Profilering",
    "ds-ethics": "Ethiek data science", "local": "Eigen punten van de zaak",
}
PURPOSE_NL = render.PURPOSE_NL
INLINE_TEXT = (".json", ".md", ".txt", ".csv", ".yaml", ".yml")
IMAGES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
INLINE_MAX = 32 * 1024  # bytes of a text evidence file shown on the page; the link has all


@dataclass
class ItemRow:
    item: ChecklistItem
    answer: Answer | None
    value: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Change:
    key: str
    title: str
    old_value: str
    new_value: str
    rationale: str
    old_hash: str
    new_hash: str
    evidence: list[dict[str, str]]


@dataclass
class Review:
    case_id: str
    title: str
    zaaknummer: str
    inspectorates: str
    purpose: str
    status: str
    view: render.View
    groups: list[tuple[str, list[tuple[str, list[ItemRow]]]]]
    required: list[dict[str, str]]
    signatures: list[dict[str, Any]]
    changes: list[Change]
    datasets: list[dict[str, str]]
    since: str  # what the changes are compared with
    in_review: bool


def evidence_entry(case: CaseFile, path: str, sha256: str) -> dict[str, Any]:
    ext = Path(path).suffix.lower()
    entry: dict[str, Any] = {"path": path, "sha256": sha256, "image": ext in IMAGES, "text": None}
    if ext in INLINE_TEXT:
        file = inside(case, path)
        if file is not None:
            with open(file, "rb") as fh:
                raw = fh.read(INLINE_MAX + 1)
            entry["text"] = raw[:INLINE_MAX].decode("utf-8", "replace")
            entry["cut"] = len(raw) > INLINE_MAX
    return entry


def inside(case: CaseFile, path: str) -> Path | None:
    """``path`` as a regular file inside the case folder, following no link out of it; else None."""
    root = Path(case.root).resolve()
    target = (root / path).resolve()
    if root not in target.parents or not target.is_file():
        return None
    return target


def _groups(case: CaseFile, items, answers: dict[str, Answer], inline: bool):
    out: dict[str, dict[str, list[ItemRow]]] = {}
    seen: dict[tuple[str, str], dict[str, Any]] = {}  # one file is often evidence of many items

    def entry(path: str, sha256: str) -> dict[str, Any]:
        if (path, sha256) in seen:  # shown inline once, at its first item; later ones link to it
            return {**seen[path, sha256], "text": None, "image": False, "first": False}
        seen[path, sha256] = evidence_entry(case, path, sha256) if inline else {"path": path, "sha256": sha256}
        seen[path, sha256]["first"] = True
        return seen[path, sha256]

    for item in items:
        answer = answers.get(item.key)
        evidence = [entry(e.path, e.sha256) for e in (answer.evidence if answer else ())]
        row = ItemRow(item, answer, render._value(answer), evidence)
        label = INSTRUMENT_NL.get(item.instrument, item.instrument)
        out.setdefault(label, {}).setdefault(item.section or "Overig", []).append(row)
    return [(inst, list(sections.items())) for inst, sections in out.items()]


def _last_values(case_id: str, log_path: Path | None, before: str | None) -> dict[str, Any]:
    """key -> the answer the log recorded last before ``before`` (an ISO time), from the
    service's log (hub identities); empty without a log."""
    values: dict[str, Any] = {}
    if log_path is None or before is None:
        return values
    for e in audit.entries(path=log_path):
        if e.get("case_id") == case_id and e.get("event") == "answered" and str(e.get("ts", "")) <= before:
            values.update((e.get("data") or {}).get("answers") or {})
    return values


def _changes(v: render.View, case: CaseFile, log_path: Path | None):
    st = v.st
    definition, answers, _, _ = st.loaded()
    approvals_ = [x for x in st.verdicts if x.ok and x.decision.decision == "approve"]
    last = approvals_[-1].payload if approvals_ else None
    now_items = checklist.item_hashes(definition, answers)
    old_items = (last or {}).get("items", {})
    old_evidence = (last or {}).get("evidence", {})
    old_values = _last_values(case.id, log_path, (last or {}).get("at"))
    rows = []
    for item in definition.items:
        if last is not None and old_items.get(item.key) == now_items[item.key]:
            continue
        a = answers.answers.get(item.key)
        ev = [{"path": e.path, "old": old_evidence.get(e.path, "—"), "new": e.sha256} for e in (a.evidence if a else ())]
        old = old_values.get(item.key)
        rows.append(Change(item.key, item.title, "—" if old is None else str(old), render._value(a),
                           a.rationale if a else "", old_items.get(item.key, "—"), now_items[item.key], ev))
    official = [d.name for d in case.spec.datasets if d.official]
    # only the data versions: the full bindings (code tree, environment) are the payload's
    now_data = {name: _bindings.dvc_md5(case, name) for name in official}
    old_data = ((last or {}).get("bindings") or {}).get("data") or {}
    datasets = [{"name": n, "old": str(old_data.get(n, "—")), "new": str(now_data.get(n, "—")),
                 "changed": "ja" if old_data.get(n) != now_data.get(n) else "nee"}
                for n in sorted(set(old_data) | set(now_data))]
    since = (f"de goedkeuring {approvals_[-1].decision.id} door {last['reviewer']} van {str(last['at'])[:10]}"
             if last else "de indiening (er is nog geen goedkeuring: alles is nieuw)")
    return rows, datasets, since


def review(case: CaseFile, config: Any, log_path: Path | None = None, *, inline: bool = True) -> Review:
    """The page of one checklist (for the purpose it was submitted for)."""
    v = render.view(case, config=config)
    st = v.st
    definition, answers, _, _ = st.loaded()
    required = [{"role": role_label(r), "id": r, "by": st.signed_roles.get(r, "")} for r in definition.signoff_roles]
    changes, datasets, since = _changes(v, case, log_path)
    sub = st.submission
    return Review(
        case_id=case.id, title=case.spec.title, zaaknummer=case.spec.zaaknummer,
        inspectorates=", ".join(case.spec.inspectorates),
        purpose=PURPOSE_NL.get(sub.purpose, sub.purpose) if sub else "—",
        status=render.STATUS_NL.get(st.status, st.status), view=v,
        groups=_groups(case, definition.items, dict(answers.answers), inline),
        required=required, signatures=render._signatures(v), changes=changes, datasets=datasets, since=since,
        in_review=bool(sub and sub.content_sha256 == st.content_sha256),
    )


def queue_entry(case: CaseFile, config: Any, my_roles: list[str], user: str) -> dict[str, Any] | None:
    """One line of "Te beoordelen": a submitted checklist that needs one of ``my_roles``."""
    if not checklist.has_checklist(case):
        return None
    from legal_ethics import state

    st = state.evaluate(case, config=config)
    sub = st.submission
    if st.status != "in_review" or sub is None or st.definition is None:
        return None
    open_roles = [r for r in st.definition.signoff_roles if r in my_roles and r not in st.signed_roles]
    if not open_roles or user in st.signed_roles.values():
        return None
    return {"case_id": case.id, "title": case.spec.title, "inspectorates": ", ".join(case.spec.inspectorates),
            "purpose": sub.purpose, "purpose_nl": PURPOSE_NL.get(sub.purpose, sub.purpose),
            "since": sub.at.isoformat(timespec="minutes").replace("T", " "),
            "roles": ", ".join(role_label(r) for r in open_roles)}


# The library's reasons are English sentences for the CLI; the page says the common ones in
# Dutch (pattern -> template) and shows any other one as the library wrote it.
_DUTCH = [
    (re.compile(r"^role (?P<role>.+?) has not signed \(reviewers with this role: (?P<who>.*)\); "
                r"a different person must sign each role$"),
     "De rol {role} heeft nog niet ondertekend (beoordelaars met deze rol: {who}); elke rol tekent een andere persoon."),
    (re.compile(r"^rejected by (?P<who>\S+) \((?P<role>.+?)\) on (?P<at>\S+): (?P<why>.*)$", re.S),
     "Afgewezen door {who} ({role}) op {at}: {why}"),
    (re.compile(r"^the approval was revoked by (?P<who>\S+) on (?P<at>\S+): (?P<why>.*)$", re.S),
     "De goedkeuring is ingetrokken door {who} op {at}: {why}"),
    (re.compile(r"^the checklist has not been submitted for review"),
     "De checklist is nog niet ingediend ter beoordeling."),
    (re.compile(r"^the checklist changed after submission (?P<sub>\S+) by (?P<who>\S+)"),
     "De checklist is veranderd na indiening {sub} door {who}."),
    (re.compile(r"^submit again \(`idsp ethics submit`\) and have it re-approved$"),
     "Dien opnieuw in en laat opnieuw goedkeuren."),
    (re.compile(r"^approval (?P<id>\S+) by (?P<who>\S+) \((?P<role>.+?)\) does not count: .* answered items of this "
                r"checklist"), "Goedkeuring {id} door {who} ({role}) telt niet: {who} heeft punten beantwoord (vier-ogen)."),
    (re.compile(r"^approval (?P<id>\S+) by (?P<who>\S+) \((?P<role>.+?)\) expired on (?P<at>\S+);"),
     "Goedkeuring {id} door {who} ({role}) is verlopen op {at}; opnieuw beoordelen en goedkeuren."),
    (re.compile(r"^dataset (?P<name>\S+) changed since (?P<what>.+?): DVC md5 (?P<old>\S+) -> (?P<new>\S+)$"),
     "Dataset {name} is veranderd sinds de {what}: md5 {old} → {new}."),
    (re.compile(r"^the checklist status is (?P<status>\S+)$"), "De checklist is {status}."),
]


def dutch(reason: str) -> str:
    for pattern, template in _DUTCH:
        m = pattern.search(reason)
        if m:
            groups = {k: (render.STATUS_NL.get(v, v) if k == "status" else v) for k, v in m.groupdict().items()}
            groups["what"] = groups.get("what", "").replace("approval", "goedkeuring")
            return template.format(**groups)
    return reason
