"""The checklist items a CE-marking case adds to its legal/ethical checklist.

Rule: the items are data (``legal_ethics.schema.ChecklistItem``), built the same way for
every ``ce_markering`` case; the thresholds here are policy (reference e.3: "thresholds
are policy, not law"), chosen with stakeholders and changed only by rebuilding the
checklist, which voids earlier approvals. Metric checks read the JSON reports the
pipeline writes (``reports/features.json``, ``reports/fairness.json``); a fairness review
trigger does not block by itself but demands a justification entry
(``ce.rechtvaardigingstoets``) before the gate lets a run on real data start. The items on
the fairness report are of phase "use": on real data the report comes from runs under an
approval for development, and the approval for use is judged on it.
"""

from __future__ import annotations

from typing import Any

FEATURES_REPORT = "reports/features.json"
FAIRNESS_REPORT = "reports/fairness.json"
JUSTIFICATION = "ce.rechtvaardigingstoets"
WHY = "case type ce_markering: risk-based selection for market surveillance (reference e.3)"
SOURCE = "https://github.com/MinBZK/Algoritmekader"  # AK ver-03, imp-02, imp-03, org-15
DIMENSIONS = {
    "operator_legal_form": "legal form (sole traders against larger firms, AK ver-03)",
    "operator_size_class": "size class",
    "operator_country_region": "operator country (NL, other EU, CN/HK, other non-EU)",
}


def _item(key: str, title: str, text: str, **kw: Any):
    from legal_ethics.schema import ChecklistItem

    defaults: dict[str, Any] = {
        "instrument": "local", "instrument_version": "ce_markering/1", "kind": "measure",
        "section": "CE-marking risk selection", "why": WHY, "source_url": SOURCE,
        "responsible_role": "data-scientist", "reviewer_roles": ("jurist", "ethicus"),
    }  # fmt: skip
    defaults.update(kw)
    return ChecklistItem(key=key, title=title, text=text, **defaults)


def _metric(key, title, text, artifact, path, op, threshold, *, blocking=True, justify=False, explanation=""):
    from legal_ethics.schema import MetricCheck

    # The fairness report comes from runs on the case's data: on real data these need an
    # approval for development first, so its checks are of phase "use".
    return _item(
        key, title, text, answer_type="metric_check", blocking=blocking,
        phase="use" if artifact == FAIRNESS_REPORT else "development",
        metric=MetricCheck(
            artifact=artifact, path=path, op=op, threshold=threshold, explanation=explanation,
            justify_with=JUSTIFICATION if justify else None,
        ),
    )  # fmt: skip


def items(spec: Any = None) -> list:
    """The CE-marking items, in the order a reviewer reads them."""
    from legal_ethics.schema import COMPLIANCE_OPTIONS

    out = [
        _metric("ce.features.rationale", "Every feature has a written risk rationale",
                "The pipeline lists each model feature with why it indicates product risk (AK dat-02).",
                FEATURES_REPORT, "checks.features_without_rationale", "==", 0),
        _metric("ce.features.protected", "No protected ground and no fairness group among the features",
                "No feature is or names religion, belief, political opinion, race, sex, nationality, sexual "
                "orientation or civil status (AK ver-03 step 1, grw-02), nor a group the fairness checks compare.",
                FEATURES_REPORT, "checks.protected_or_group_features", "==", 0),
        _metric("ce.features.leakage", "No feature is known only after the inspection",
                "Outcome and post-selection columns (data specification columns 35-37 and 42-52) are not features.",
                FEATURES_REPORT, "checks.leaking_features", "==", 0),
        _item("ce.proxy-review", "Proxy review of the features is documented",
              "Each feature that can stand in for a group (for example incomplete listings for sole traders, "
              "country of origin for natural persons) is named, measured within product category, and kept "
              "or dropped with a reason (reference e.3).",
              answer_type="choice", options=COMPLIANCE_OPTIONS, blocking=True, pass_values=("voldaan",),
              required_evidence=("proxy-review",)),
        _metric("ce.random-arm.share", "A random arm takes at least 10 % of inspection capacity",
                "A random sample keeps labels unbiased and breaks the feedback loop (AK imp-02).",
                FAIRNESS_REPORT, "random_arm.share_of_inspections", ">=", 0.10),
        _metric("ce.random-arm.size", "The random arm of the test period has at least 100 inspections",
                "Error and hit rates are read only on the random arm; below this size no conclusion is drawn.",
                FAIRNESS_REPORT, "random_arm.n", ">=", 100),
        _metric("ce.fairness.triggers", "Fairness review triggers",
                "Selection-rate ratio below 0.8 or difference above 0.1 within product category, hit-rate "
                "ratio below 0.8 or error-rate difference above 0.1 on the random arm: each hit needs a "
                "justification test before a run on real data.",
                FAIRNESS_REPORT, "triggers.count", "==", 0, justify=True,
                explanation="a hit is allowed only with a justification entry in ce.rechtvaardigingstoets"),
        _item(JUSTIFICATION, "Justification test (rechtvaardigingstoets) for every trigger hit",
              "For each trigger hit in reports/fairness.json (by its id): the legitimate aim, whether the "
              "selection is suitable and necessary, whether a less intrusive alternative exists, and whether "
              "it is proportionate (AK ver-03 step 2). If it is not justified, the feature or process goes.",
              answer_type="choice", options=("gerechtvaardigd", "niet_gerechtvaardigd", "nvt"),
              pass_values=("gerechtvaardigd",), justification_required_for=("gerechtvaardigd", "niet_gerechtvaardigd", "nvt"),
              required_evidence=("rechtvaardigingstoets",), responsible_role="projectleider", phase="use",
              reviewer_roles=("jurist", "ethicus", "gemandateerd-verantwoordelijke")),
        _item("ce.human-review", "An inspector decides on every selected case",
              "The model output is a priority list, not a decision; the inspector sees the reasons per case and "
              "does not learn whether a case was risk-selected or random (AK imp-03, imp-02; AP advice on art. 22).",
              answer_type="yes_no", expected=True, blocking=True, responsible_role="projectleider"),
    ]  # fmt: skip
    for dim, label in DIMENSIONS.items():
        out.append(_metric(
            f"ce.fairness.selection.{dim}", f"Selection rate by {label}, within product category",
            "Ratio of the lowest to the highest group selection rate of the model at capacity, averaged "
            "over product categories (weighted by cases).",
            FAIRNESS_REPORT, f"selection.model.{dim}.within_category_ratio", ">=", 0.8, blocking=False,
        ))  # fmt: skip
        out.append(_metric(
            f"ce.fairness.hit-rate.{dim}", f"Hit rate on the random arm by {label}",
            "Ratio of the lowest to the highest hit rate (precision) of the model's selection on the random "
            "arm: a group selected more often with fewer findings is over-selected (outcome test).",
            FAIRNESS_REPORT, f"random_arm.{dim}.hit_rate_ratio", ">=", 0.8, blocking=False,
        ))  # fmt: skip
    out.append(_metric(
        "ce.calibration", "Scores are calibrated on the random arm",
        "Expected calibration error of the risk score against random-arm outcomes (AK owk-11, ver-02).",
        FAIRNESS_REPORT, "calibration.ece", "<=", 0.05, blocking=False,
    ))  # fmt: skip
    return out
