"""From a case profile to its checklist: the DPIA pre-scan rules and the selection rules.

Rule: which items a case must answer, which block a run and who signs follow only from
``case.yaml`` (``profile``, ``case_type``, ``policy``) through the functions below; the
result is written once to ``ethics/checklist.yaml`` and then approved as content. The same
profile always gives the same checklist. A case type (e.g. ``ce_markering``) adds its own
items and roles through its kit in ``casuistiek.KITS`` (or ``register_case_type``); a case
type without a kit is refused, never given a checklist without its items.

The pre-scan follows the routing rules of the Pre-scan DPIA (``urn:nl:prescan`` 2.0):
DPIA *verplicht* if new legislation, a risk score above 4, at least one item of the AP list
or at least two EDPB criteria; *aanbevolen* with exactly one EDPB criterion. DTIA verplicht
for transfers outside the EEA on SCCs or another mechanism; IAMA aanbevolen for high-risk
AI or an impactful algorithm; KIA aanbevolen for a digital service aimed at minors. Answers
the profile implies (profiling natural persons is an AP-list item, automated decisions and
special categories are EDPB criteria, ...) are filled in and reported as implied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from idsp.case_file import CASE_FILE, CaseSpec
from idsp.defaults import APPROVAL_VALID_DAYS, GENERIC_CASE_TYPE
from idsp.errors import CaseError

from casuistiek import KITS
from legal_ethics import catalogue
from legal_ethics.schema import (
    COMPLIANCE_OPTIONS,
    CatalogueItem,
    ChecklistDefinition,
    ChecklistItem,
)

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile

# Pre-scan keys accepted in case.yaml `profile.dpia_prescan`, with the pre-scan question.
PRESCAN_GENERAL = {
    "nieuwe_wetgeving": "0.1 — the scope is new legislation or regulation",
    "risicoscore_boven_4": "1-7 — the pre-scan risk score (sum of the scored answers) is above 4",
    "internationale_doorgifte_buiten_eer": "2.1 — data are stored or supported outside the EEA",
    "doorgifte_scc_of_overig": "2.1.6 — the transfer relies on SCCs or another mechanism",
    "hoog_risico_ai": "6.1.2 — a high-risk AI system is used",
    "impactvol_algoritme": "6.1.3 — an impactful algorithm is used",
    "digitale_dienst": "7.1.1 — a digital service is offered",
    "minderjarigen": "7.1.2 — the service is aimed at people under 18",
}
PRESCAN_AP = {  # 3.1: the AP list of processing that always needs a DPIA
    f"ap_{k}": f"3.1 AP list — {v}" for k, v in {
        "biometrie": "biometric data", "cameratoezicht": "camera surveillance",
        "communicatiegegevens": "communication data", "controle_werknemers": "monitoring employees",
        "creditscores": "credit scores", "financiele_situatie": "financial situation",
        "flexibel_cameratoezicht": "flexible camera surveillance", "fraudebestrijding": "fraud detection",
        "genetische_gegevens": "genetic data", "gezondheidsgegevens": "health data",
        "heimelijk_onderzoek": "covert investigation", "internet_of_things": "internet of things",
        "profilering": "profiling", "gedragsbeinvloeding": "observing and influencing behaviour",
        "locatiegegevens": "location data", "samenwerkingsverbanden": "joint ventures sharing data",
        "zwarte_lijsten": "blacklists",
    }.items()
}
PRESCAN_EDPB = {  # 4.1: the EDPB criteria
    f"edpb_{k}": f"4.1 EDPB — {v}" for k, v in {
        "bijzondere_gegevens": "special or highly sensitive data",
        "blokkering": "blocking a service, right or contract",
        "geautomatiseerde_besluitvorming": "automated decision-making",
        "nieuwe_technologie": "innovative technology",
        "grootschalig": "large-scale processing",
        "koppelen_datasets": "matching or combining datasets",
        "evaluatie_scoring": "evaluation or scoring of people",
        "stelselmatige_monitoring": "systematic monitoring",
        "kwetsbare_groepen": "vulnerable data subjects",
    }.items()
}
PRESCAN_KEYS = {**PRESCAN_GENERAL, **PRESCAN_AP, **PRESCAN_EDPB}


@dataclass(frozen=True)
class PrescanOutcome:
    dpia: str  # verplicht | aanbevolen | niet_nodig | niet_van_toepassing
    dtia: str  # verplicht | niet_nodig
    iama: str  # aanbevolen | niet_nodig
    kia: str  # aanbevolen | niet_nodig
    because: tuple[str, ...] = ()
    answers: dict[str, bool] = field(default_factory=dict)
    implied: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "dpia": self.dpia, "dtia": self.dtia, "iama": self.iama, "kia": self.kia,
            "because": list(self.because), "answers": dict(sorted(self.answers.items())),
            "implied": list(self.implied),
        }


def prescan(spec) -> PrescanOutcome:
    """Run the pre-scan routing rules on the profile of a ``CaseSpec``."""
    profile = spec.profile
    unknown = sorted(set(profile.dpia_prescan) - set(PRESCAN_KEYS))
    if unknown:
        raise CaseError(
            f"unknown DPIA pre-scan answer(s) {', '.join(unknown)} in profile.dpia_prescan",
            where="case.yaml", fix=f"Use these keys: {', '.join(PRESCAN_KEYS)}",
        )
    answers = dict(profile.dpia_prescan)
    implied: list[str] = []

    def imply(key: str, why: str) -> None:
        if key not in answers:
            answers[key] = True
            implied.append(f"{key} (volgt uit {why})")

    if profile.risk_profiling == "natural_persons":
        imply("ap_profilering", "profile.risk_profiling = natural_persons")
        imply("edpb_evaluatie_scoring", "profile.risk_profiling = natural_persons")
    if profile.automated_decision:
        imply("edpb_geautomatiseerde_besluitvorming", "profile.automated_decision")
    if profile.special_categories:
        imply("edpb_bijzondere_gegevens", "profile.special_categories")
    if profile.ai_act_risk == "high":
        imply("hoog_risico_ai", "profile.ai_act_risk = high")
    if profile.risk_profiling != "none" or profile.automated_decision:
        imply("impactvol_algoritme", "risicoprofilering of geautomatiseerde besluiten")

    because: list[str] = []
    ap = [k for k in PRESCAN_AP if answers.get(k)]
    edpb = [k for k in PRESCAN_EDPB if answers.get(k)]
    if not profile.personal_data:
        dpia = "niet_van_toepassing"
        because.append("DPIA niet van toepassing: geen persoonsgegevens (profile.personal_data = false)")
    else:
        hits = []
        if answers.get("nieuwe_wetgeving"):
            hits.append("nieuwe wet- of regelgeving")
        if answers.get("risicoscore_boven_4"):
            hits.append("risicoscore hoger dan 4")
        if ap:
            hits.append(f"AP-lijst: {', '.join(k[3:] for k in ap)}")
        if len(edpb) >= 2:
            hits.append(f"{len(edpb)} EDPB-criteria: {', '.join(k[5:] for k in edpb)}")
        if hits:
            dpia = "verplicht"
            because.append("DPIA verplicht: " + "; ".join(hits))
        elif len(edpb) == 1:
            dpia = "aanbevolen"
            because.append(f"DPIA aanbevolen: precies één EDPB-criterium ({edpb[0][5:]})")
        else:
            dpia = "niet_nodig"
            because.append("DPIA niet nodig: geen criterium van de pre-scan is van toepassing")
    dtia = "verplicht" if answers.get("internationale_doorgifte_buiten_eer") and answers.get("doorgifte_scc_of_overig") else "niet_nodig"
    if dtia == "verplicht":
        because.append("DTIA verplicht: doorgifte buiten de EER op SCC's of een ander mechanisme")
    iama = "aanbevolen" if answers.get("hoog_risico_ai") or answers.get("impactvol_algoritme") else "niet_nodig"
    if iama == "aanbevolen":
        because.append("IAMA aanbevolen: hoog-risico-AI-systeem of impactvol algoritme")
    kia = "aanbevolen" if answers.get("digitale_dienst") and answers.get("minderjarigen") else "niet_nodig"
    if kia == "aanbevolen":
        because.append("KIA aanbevolen: digitale dienst gericht op minderjarigen")
    return PrescanOutcome(dpia, dtia, iama, kia, tuple(because), answers, tuple(implied))


# --- case types ----------------------------------------------------------------------

CaseTypeContributor = Callable[[Any], list[ChecklistItem]]
# The kits of this distribution (``casuistiek.KITS``); ``register_case_type`` adds or
# replaces one, for a kit that lives elsewhere.
_CASE_TYPES: dict[str, tuple[CaseTypeContributor, tuple[str, ...]]] = {
    name: (kit.checklist_items, kit.signoff_roles) for name, kit in KITS.items()
}


def register_case_type(case_type: str, items: CaseTypeContributor, *, signoff_roles: tuple[str, ...] = ()) -> None:
    """Let a case kit add items (and sign-off roles) to every checklist of its case type.

    ``items(spec)`` returns ``ChecklistItem`` objects, e.g. a ``metric_check`` on the
    case's fairness report. The kits in ``casuistiek`` are registered through
    ``casuistiek.KITS``; this is for a kit that lives elsewhere, or a test.
    """
    _CASE_TYPES[case_type] = (items, tuple(signoff_roles))


def _case_type_contribution(spec: CaseSpec) -> tuple[list[ChecklistItem], tuple[str, ...]]:
    if spec.case_type == GENERIC_CASE_TYPE:
        return [], ()
    if spec.case_type not in _CASE_TYPES:
        known = ", ".join(sorted([GENERIC_CASE_TYPE, *_CASE_TYPES]))
        raise CaseError(
            f"case type {spec.case_type!r} has no case kit, so its checklist items are unknown (known: {known})",
            where=f"{CASE_FILE} case_type",
            fix="Use one of the known case types, or add the kit to casuistiek.KITS",
        )
    fn, roles = _CASE_TYPES[spec.case_type]
    return list(fn(spec)), roles


# --- selection -----------------------------------------------------------------------

_AK_ROLE = {"jurist": "jurist", "projectleider": "projectleider", "ontwikkelaar": "data-scientist",
            "beleid-en-advies": "projectleider"}
_RISK_LABEL = {
    "prohibited": "verboden-ai", "high": "hoog-risico-ai-systeem", "limited": "geen-hoog-risico-ai-systeem",
    "minimal": "geen-hoog-risico-ai-systeem",
}


def _reviewers_for(item: CatalogueItem) -> tuple[str, ...]:
    topics = set(item.tags.topic)
    roles = ["jurist"]
    if "privacy-en-gegevensbescherming" in topics or item.instrument in ("dpia", "prescan"):
        roles.insert(0, "privacy-officer")
    if topics & {"bias-en-non-discriminatie", "fundamentele-rechten"} or item.instrument in ("profiling", "ds-ethics"):
        roles.append("ethicus")
    return tuple(roles)


def to_item(cat: CatalogueItem, *, why: str, blocking: bool = False, **over: Any) -> ChecklistItem:
    """A checklist line from a catalogue item with the defaults of its kind."""
    answer_type = over.pop("answer_type", None) or cat.answer_type or "choice"
    options = over.pop("options", None) or cat.options or (COMPLIANCE_OPTIONS if answer_type == "choice" else ())
    responsible = over.pop("responsible_role", None) or next(
        (_AK_ROLE[r] for r in cat.tags.roles if r in _AK_ROLE), "projectleider"
    )
    pass_values = over.pop("pass_values", None)
    if pass_values is None:
        pass_values = ("voldaan", "nvt") if blocking and answer_type == "choice" and "voldaan" in options else ()
    return ChecklistItem(
        key=cat.key, official_id=cat.official_id, instrument=cat.instrument,
        instrument_version=cat.instrument_version, kind=cat.kind, section=cat.section, title=cat.title,
        text=cat.text, legal_refs=cat.legal_refs, source_url=cat.source_url, links=cat.links, why=why,
        blocking=blocking, answer_type=answer_type, options=tuple(options), pass_values=tuple(pass_values),
        responsible_role=responsible, reviewer_roles=over.pop("reviewer_roles", None) or _reviewers_for(cat),
        **over,
    )


# AK requirements that block a run on official data whenever they apply.
_BLOCKING_AK = {"ak.aia-00", "ak.grw-01", "ak.grw-02", "ak.avg-01", "ak.avg-03", "ak.avg-08", "ak.avg-10",
                "ak.avg-12", "ak.avg-13", "ak.awb-01", "ak.aia-27", "ak.bio-01"}
# Measures about data and models, selected for every case that uses data.
_DATA_MEASURES = ("ak.mtr.owp-11", "ak.mtr.dat-01", "ak.mtr.dat-07", "ak.mtr.dat-09", "ak.mtr.dat-11",
                  "ak.mtr.dat-12", "ak.mtr.owk-04", "ak.mtr.owk-07", "ak.mtr.ver-01", "ak.mtr.ver-02",
                  "ak.mtr.ver-04", "ak.mtr.ver-06", "ak.mtr.mon-05", "ak.mtr.mon-07")
_PERSONAL_MEASURES = ("ak.mtr.owp-03", "ak.mtr.dat-03", "ak.mtr.dat-04", "ak.mtr.owk-03")
_PROFILING_MEASURES = ("ak.mtr.owk-08", "ak.mtr.owp-08")
# Blocking settings of the risk-profiling steps (thresholds are policy, see
# docs/decisions/ethics-profiles.md; a case kit may replace an item with a stricter one).
_PROFILING_OVERRIDES: dict[str, dict[str, Any]] = {
    "profiling.features": {"expected": True},
    "profiling.random-sample": {"minimum": 0.05, "maximum": 1.0},
    # Measured on what the model selects, so judged on runs under an approval for development.
    "profiling.bias-analysis": {"required_evidence": ("biasanalyse-rapport",), "phase": "use"},
    "profiling.justification": {"required_evidence": ("rechtvaardigingstoets",), "phase": "use"},
    "profiling.protocol": {"required_evidence": ("discriminatieprotocol",)},
}
_BLOCKING_DPIA = {"dpia.11", "dpia.13", "dpia.14", "dpia.16", "dpia.17", "dpia.19", "dpia.20"}


def _ak_requirement_applies(item: CatalogueItem, spec, outcome: PrescanOutcome) -> str | None:
    """Why an AK requirement applies to this case, or None."""
    p = spec.profile
    name = item.key.removeprefix("ak.")
    if name.startswith("avg-"):
        if not p.personal_data:
            return None
        if name == "avg-08" and not p.special_categories:
            return None
        if name == "avg-10" and not p.automated_decision and p.risk_profiling != "natural_persons":
            return None
        if name == "avg-13" and outcome.dpia not in ("verplicht", "aanbevolen"):
            return None
        return "er worden persoonsgegevens verwerkt"
    if name.startswith("aia-"):
        if p.ai_act_risk == "not_ai":
            return None
        if name == "aia-00":
            return "elk algoritme wordt getoetst aan de verboden praktijken van de AI-verordening"
        if name == "aia-01":
            return "AI-geletterdheid geldt voor elk AI-systeem"
        label = _RISK_LABEL.get(p.ai_act_risk)
        groups = set(item.tags.ai_act)
        if p.ai_act_risk == "unknown":
            return None  # the classification item asks for the risk group first
        if label and label in groups:
            return f"risicogroep AI-verordening: {label}"
        if name == "aia-28" and p.ai_act_risk in ("limited", "high"):
            return "transparantieverplichtingen AI-verordening"
        return None
    if name == "bzk-01" and outcome.iama == "niet_nodig" and p.ai_act_risk != "high":
        return None
    return "geldt voor elk algoritme voor een publieke taak"


def build_definition(case: CaseFile, *, today: date | None = None) -> ChecklistDefinition:
    spec = case.spec
    p = spec.profile
    outcome = prescan(spec)
    chosen: list[ChecklistItem] = []
    all_items = catalogue.items()

    def add(key: str, why: str, blocking: bool = False, **over: Any) -> None:
        if any(i.key == key for i in chosen):
            return
        chosen.append(to_item(all_items[key], why=why, blocking=blocking, **over))

    # AI Act classification first: everything else depends on it.
    add("aiact.classification", "de risicogroep bepaalt welke vereisten van de AI-verordening gelden", blocking=True,
        pass_values=tuple(o for o in all_items["aiact.classification"].options if o != "verboden"))
    for key, cat in all_items.items():
        if cat.instrument == "ak" and cat.kind == "requirement":
            why = _ak_requirement_applies(cat, spec, outcome)
            if why:
                add(key, why, blocking=key in _BLOCKING_AK)
    for key in _DATA_MEASURES:
        add(key, "maatregel voor data en modellen, voor elke zaak")
    if p.personal_data:
        for key in _PERSONAL_MEASURES:
            add(key, "er worden persoonsgegevens verwerkt", blocking=key == "ak.mtr.dat-04")
    if p.risk_profiling != "none":
        who = "natuurlijke personen" if p.risk_profiling == "natural_persons" else \
            "bedrijven (eenmanszaken zijn natuurlijke personen, dus dezelfde stappen gelden)"
        for key, cat in all_items.items():
            if cat.instrument == "profiling":
                add(key, f"risicoprofilering van {who}", blocking=True, **_PROFILING_OVERRIDES.get(key, {}))
        for key in _PROFILING_MEASURES:
            add(key, f"risicoprofilering van {who}")
    if p.personal_data and outcome.dpia in ("verplicht", "aanbevolen"):
        for key, cat in all_items.items():
            if cat.instrument == "dpia":
                add(key, f"pre-scan: DPIA {outcome.dpia}", blocking=outcome.dpia == "verplicht" and key in _BLOCKING_DPIA,
                    required_evidence=("DPIA-document",) if key in ("dpia.19", "dpia.20") else ())
    if outcome.iama == "aanbevolen":
        for key, cat in all_items.items():
            if cat.instrument == "iama":
                blocking = key == "iama.1.3.1"
                add(key, "pre-scan: IAMA aanbevolen (hoog-risico-AI of impactvol algoritme)", blocking=blocking,
                    expected=False if blocking else None)
    for key, cat in all_items.items():
        if cat.instrument == "ds-ethics":
            add(key, "data-science-ethiek, voor elke zaak")

    extra, extra_roles = _case_type_contribution(spec)
    for item in extra:
        if not any(i.key == item.key for i in chosen):
            chosen.append(item)

    roles = ["jurist", "gemandateerd-verantwoordelijke"]
    if p.personal_data:
        roles.insert(0, "privacy-officer")
    if p.risk_profiling == "natural_persons" or p.ai_act_risk == "high" or p.special_categories:
        roles.append("ethicus")
    for r in extra_roles:
        if r not in roles:
            roles.append(r)

    return ChecklistDefinition(
        id=f"{spec.id}-ethics",
        case_id=spec.id,
        case_type=spec.case_type,
        title=f"Juridisch-ethische toets: {spec.title}",
        version="1",
        created=today or date.today(),
        profile=p.model_dump(mode="json"),
        prescan=outcome.as_dict(),
        catalogues=catalogue.versions(),
        signoff_roles=tuple(roles),
        validity_days=APPROVAL_VALID_DAYS,
        items=tuple(chosen),
    )


def definition_problems(case: CaseFile, defn: ChecklistDefinition) -> list[str]:
    """Why ``defn`` is weaker than the checklist the platform builds from case.yaml's
    profile and the catalogues: items left out or made non-blocking, sign-off roles left
    out, a longer validity, a profile other than case.yaml's, or a profile that says no
    personal data beside a dataset declared personal. Empty when it is at least as strict.
    Checked at submission and by the gate, so a hand-edited checklist cannot lower the bar."""
    spec = case.spec
    problems: list[str] = []
    personal = [d.name for d in spec.datasets if d.personal_data]
    if personal and not spec.profile.personal_data:
        problems.append(
            f"case.yaml's profile says personal_data: false, but dataset(s) {', '.join(personal)} are declared "
            "personal: set profile.personal_data: true (the privacy officer then signs), and rebuild the "
            "checklist with `idsp ethics init --force`"
        )
    if defn.profile != spec.profile.model_dump(mode="json") or defn.case_type != spec.case_type:
        problems.append(
            "ethics/checklist.yaml was built from another profile or case type than case.yaml has now: rebuild "
            "it with `idsp ethics init --force` and submit it again"
        )
    try:
        expected = build_definition(case, today=defn.created)
    except CaseError as exc:
        return [*problems, f"the checklist cannot be rebuilt from case.yaml to compare: {exc.message}"]
    have = {i.key: i for i in defn.items}
    missing = [i.key for i in expected.items if i.key not in have]
    if missing:
        problems.append(
            f"ethics/checklist.yaml lacks item(s) {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''} that "
            "the case profile requires; rebuild it with `idsp ethics init --force`"
        )
    softened = [i.key for i in expected.items if i.key in have and i.blocking and not have[i.key].blocking]
    if softened:
        problems.append(f"ethics/checklist.yaml makes blocking item(s) {', '.join(softened[:10])} non-blocking; "
                        "rebuild it with `idsp ethics init --force`")
    roles = [r for r in expected.signoff_roles if r not in defn.signoff_roles]
    if roles:
        problems.append(f"ethics/checklist.yaml lacks sign-off role(s) {', '.join(roles)} that the case profile "
                        "requires; rebuild it with `idsp ethics init --force`")
    if defn.validity_days > expected.validity_days:
        problems.append(f"ethics/checklist.yaml lets an approval last {defn.validity_days} days, more than the "
                        f"{expected.validity_days} the platform allows")
    return problems
