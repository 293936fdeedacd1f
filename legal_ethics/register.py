"""An Algoritmeregister entry (publication standard 1.0) filled from case.yaml and the answers.

Rule: field names, required flags, maximum lengths and permitted values are those of the
publication standard 1.0 (``FIELDS`` below); an entry that breaks any of them is refused
with every broken field named, never cut short silently. Text comes from the case
(title, purpose, legal basis, datasets) and from the answers of the IAMA, DPIA and
risk-profiling items; nothing is invented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idsp.errors import UserError

from legal_ethics import checklist
from legal_ethics.profiles import prescan

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile

# field -> (maximum length or None, required)
FIELDS: dict[str, tuple[int | None, bool]] = {
    "name": (100, True),
    "description_short": (400, True),
    "organization": (100, True),
    "category": (None, False),
    "status": (None, True),
    "begin_date": (7, False),
    "end_date": (7, False),
    "contact_email": (500, True),
    "website": (500, False),
    "publication_category": (None, True),
    "url": (500, False),
    "goal": (2500, False),
    "proportionality": (2500, False),
    "human_intervention": (2500, False),
    "risks": (2500, False),
    "lawful_basis": (2500, False),
    "lawful_basis_grouping": (None, False),
    "process_index_url": (500, False),
    "impacttoetsen_grouping": (None, False),
    "impacttoetsen": (2500, False),
    "source_data": (2500, False),
    "source_data_grouping": (None, False),
    "methods_and_models": (5000, False),
    "provider": (200, False),
    "publiccode": (500, False),
    "lang": (None, True),
    "standard_version": (None, False),
    "source_id": (100, False),
    "tags": (2500, False),
}
GROUPING_LIMITS: dict[str, dict[str, int | None]] = {
    "lawful_basis_grouping": {"title": 100, "link": 500},
    "impacttoetsen_grouping": {"title": None, "link": 500},
    "source_data_grouping": {"title": 500, "link": 500},
}
PERMITTED = {
    "status": ("In ontwikkeling", "In gebruik", "Buiten gebruik"),
    "publication_category": ("Hoog-risico AI-systeem", "Impactvolle algoritmes", "Overige algoritmes"),
    "lang": ("nld",),
    "standard_version": ("1.0",),
    "category": (
        "Organisatie en bedrijfsvoering", "Cultuur en recreatie", "Economie", "Overheidsfinanciën", "Wonen",
        "Internationaal", "Migratie en integratie", "Natuur en milieu", "Onderwijs en wetenschap",
        "Openbare orde en veiligheid", "Recht", "Ruimte en infrastructuur", "Sociale zekerheid", "Verkeer",
        "Werk", "Zorg en gezondheid",
    ),
}
ORGANISATIONS = {
    "ILT": "Inspectie Leefomgeving en Transport",
    "NVWA": "Nederlandse Voedsel- en Warenautoriteit",
    "NLA": "Nederlandse Arbeidsinspectie",
    "IGJ": "Inspectie Gezondheidszorg en Jeugd",
    "RDI": "Rijksinspectie Digitale Infrastructuur",
}
# register field -> answers to draw from, first answered wins
FROM_ANSWERS = {
    "goal": ("iama.1.1.2", "ak.mtr.pba-05"),
    "proportionality": ("iama.4.5.4", "profiling.justification", "ak.avg-04", "dpia.14"),
    "human_intervention": ("iama.3.2.1", "profiling.human-review", "ak.avg-10", "ak.mtr.imp-03"),
    "risks": ("iama.3.5.2", "dpia.16", "profiling.bias-analysis"),
    "methods_and_models": ("iama.2.1.2", "ak.mtr.owp-11"),
}


def _answer_text(answers, key: str) -> str | None:
    a = answers.answers.get(key)
    if a is None:
        return None
    parts = [str(a.value)] if isinstance(a.value, str) and a.value not in ("voldaan", "deels", "nvt", "niet_voldaan") else []
    if a.rationale:
        parts.append(a.rationale)
    return " ".join(parts).strip() or None


def publication_category(profile) -> str:
    if profile.ai_act_risk == "high":
        return "Hoog-risico AI-systeem"
    if profile.risk_profiling != "none" or profile.automated_decision:
        return "Impactvolle algoritmes"
    return "Overige algoritmes"


def build_entry(
    case: CaseFile, *, status: str = "In ontwikkeling", contact_email: str | None = None, categories: tuple[str, ...] = (),
    website: str | None = None,
) -> dict[str, Any]:
    spec = case.spec
    answers = checklist.load_answers(case)
    outcome = prescan(spec)
    contact = contact_email or next((p.email for p in (*spec.owners, *spec.members) if p.email), None)
    entry: dict[str, Any] = {
        "name": spec.title,
        "description_short": spec.purpose,
        "organization": ", ".join(ORGANISATIONS.get(i, i) for i in spec.inspectorates),
        "category": list(categories),
        "status": status,
        "contact_email": contact or "",
        "publication_category": publication_category(spec.profile),
        "lawful_basis": "; ".join(f"{lb.act} art. {lb.article}" for lb in spec.legal_basis),
        "lawful_basis_grouping": [
            {"title": f"{lb.act} art. {lb.article}", "link": lb.url} for lb in spec.legal_basis if lb.url
        ],
        "source_data": "; ".join(f"{d.name}: {d.description}".rstrip(": ") for d in spec.datasets),
        "lang": "nld",
        "standard_version": "1.0",
        "source_id": f"{spec.zaaknummer}/{spec.id}"[:100],
    }
    if website:
        entry["website"] = website
    for fieldname, keys in FROM_ANSWERS.items():
        text = next((t for t in (_answer_text(answers, k) for k in keys) if t), None)
        if text:
            entry[fieldname] = text
    entry.setdefault("goal", spec.purpose)
    tests = []
    if spec.profile.personal_data:
        tests.append({"title": "Pre-scan DPIA"})
    if outcome.dpia in ("verplicht", "aanbevolen") and any(k.startswith("dpia.") for k in answers.answers):
        tests.append({"title": "Data Protection Impact Assessment (DPIA)"})
    if any(k.startswith("iama.") for k in answers.answers):
        tests.append({"title": "Impact Assessment Mensenrechten en Algoritmes (IAMA)"})
    if tests:
        entry["impacttoetsen_grouping"] = tests
        entry["impacttoetsen"] = "; ".join(outcome.because)
    problems = validate(entry)
    if problems:
        raise UserError(
            "the Algoritmeregister entry breaks the publication standard 1.0: " + "; ".join(problems),
            where=str(case.root / "case.yaml"),
            fix="Fill the missing fields in case.yaml (title, purpose, owners[].email) or pass them as options",
        )
    return entry


def validate(entry: dict[str, Any]) -> list[str]:
    """Every required field present, every text within its maximum, every enum permitted."""
    problems = []
    for name in entry:
        if name not in FIELDS:
            problems.append(f"`{name}` is not a field of the standard")
    for name, (max_len, required) in FIELDS.items():
        value = entry.get(name)
        if required and (value is None or value == "" or value == []):
            problems.append(f"`{name}` is required")
            continue
        if isinstance(value, str) and max_len is not None and len(value) > max_len:
            problems.append(f"`{name}` is {len(value)} characters, at most {max_len} allowed")
        if name in PERMITTED and value not in (None, ""):
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if v not in PERMITTED[name]]
            if bad:
                problems.append(f"`{name}` = {bad} is not permitted (allowed: {', '.join(PERMITTED[name])})")
        if name in GROUPING_LIMITS and isinstance(value, list):
            for i, row in enumerate(value):
                for sub, limit in GROUPING_LIMITS[name].items():
                    text = row.get(sub)
                    if limit is not None and isinstance(text, str) and len(text) > limit:
                        problems.append(f"`{name}[{i}].{sub}` is {len(text)} characters, at most {limit} allowed")
    for name in ("begin_date", "end_date"):
        v = entry.get(name)
        if v and not (len(v) == 7 and v[4] == "-" and v[:4].isdigit() and v[5:].isdigit()):
            problems.append(f"`{name}` = {v!r} must be YYYY-MM")
    return problems
